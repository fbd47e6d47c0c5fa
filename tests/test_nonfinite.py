"""Non-finite state: the trainer stops on an inf BatchNorm buffer while the losses are finite, never writes
such a checkpoint, and every loader refuses one; a growing loss is warned about once."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import bench.training.trainer as trainer
from bench.api import load_weights
from bench.checkpoint_io import all_finite, first_non_finite, load_checkpoint, save_checkpoint
from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
from bench.datasets.transforms import Preprocess
from bench.errors import BenchError, CheckpointError, NonFiniteLossError, NonFiniteStateError
from bench.training.trainer import LossWatch, train
from methods.checkpoints import load_official
from methods.spade import SPADEConfig, SPADEMethod

# tests/test_training.py's tiny SPADE (BatchNorm as param-free norm, so it has running stats)
CFG = SPADEConfig(
    preprocess_mode="resize_and_crop", load_size=36, crop_size=32, ngf=4, spade_hidden=8, ndf=4, n_layers_D=2,
    param_free_norm="batch", no_instance=False, no_vgg_loss=True, batch_size=2, niter=0, max_iters=6,
    checkpoint_every=2,
)
LOG = "bench.training.trainer"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=8, n_val=4, seed=3, workers=1)


@pytest.fixture(scope="module")
def good_checkpoint(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finite checkpoint after 2 iterations at the default lr."""
    out = tmp_path_factory.mktemp("good")
    train(SPADEMethod(CFG, SYNTHETIC_SPEC), _train_set(tiny_data), out, seed=0, progress=False, stop_at=2)
    return out / "latest.pth"


def _train_set(root: Path, cfg: SPADEConfig = CFG):  # noqa: ANN202
    pre = Preprocess(preprocess_mode=cfg.preprocess_mode, load_size=cfg.load_size, crop_size=cfg.crop_size)
    return open_split(SYNTHETIC_SPEC, root, "train", pre)


def _state(method: SPADEMethod) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v.clone() for n, net in method.nets.items() for k, v in net.state_dict().items()}


# --- the building blocks --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_all_finite_finds_every_kind_of_non_finite(dtype: torch.dtype) -> None:
    big = torch.finfo(dtype).max
    fine = [torch.randn(7, 3).to(dtype), torch.full((5,), big, dtype=dtype), torch.tensor(-big, dtype=dtype),
            torch.zeros(0, dtype=dtype), torch.arange(4)]  # the largest finite value, empty and integer tensors
    assert all_finite(fine) and first_non_finite([("a", t) for t in fine]) is None
    for bad, what in ((float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), "nan")):
        t = torch.ones(8, dtype=dtype)
        t[5] = bad
        assert not all_finite([*fine, t])
        assert first_non_finite([("ok", fine[0]), ("x.running_var", t)]) == ("x.running_var", f"{what} in 1 of 8 values")
        assert first_non_finite([("w", t.fill_(bad))]) == ("w", what)
    mixed = torch.tensor([float("inf"), float("nan")], dtype=dtype)
    assert first_non_finite([("m", mixed)]) == ("m", "nan")


@pytest.mark.gpu
def test_all_finite_on_cuda(cuda: torch.device) -> None:
    """The fused multi-tensor path (``_foreach_norm`` on CUDA) propagates inf and NaN like the CPU one."""
    ts = [torch.randn(1000, device=cuda, dtype=dt) for dt in (torch.float32, torch.float16, torch.bfloat16)]
    ts.append(torch.full((3,), torch.finfo(torch.float32).max, device=cuda))
    assert all_finite(ts)
    for i in range(len(ts)):
        for bad in (float("inf"), float("nan")):
            poisoned = [t.clone() for t in ts]
            poisoned[i][-1] = bad
            assert not all_finite(poisoned), (i, bad)
            assert first_non_finite([(str(j), t) for j, t in enumerate(poisoned)])[0] == str(i)


def test_loss_watch_bounds(caplog: pytest.LogCaptureFixture) -> None:
    watch = LossWatch()
    with caplog.at_level(logging.WARNING, logger=LOG):
        for it in range(30):
            watch.update({"GAN": 1.0 + 0.1 * (it % 3), "D_real": 0.02, "KLD": 0.5}, it)
        watch.update({"GAN": 99.0, "D_real": 9.0, "KLD": 0.5}, 30)  # 99x and 450x, the latter under the floor
        assert not caplog.records
        watch.update({"GAN": 140.0, "D_real": 0.02, "KLD": 0.5}, 31)
        watch.update({"GAN": 1e6, "D_real": 0.02, "KLD": -2e4}, 32)  # GAN has warned already; |KLD| > 1e4
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all(r.levelno == logging.WARNING for r in caplog.records)
    assert messages[0].startswith("loss GAN = 140 at iteration 31 (more than 100x its median 1.1 over the last 31")
    assert messages[1].startswith("loss KLD = -2e+04 at iteration 32 (|loss| > 10000)")
    assert "lower lr" in messages[0]


# --- training ---------------------------------------------------------------------------------------------
def test_the_issue_case_stops_without_writing_a_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    """``--set lr=1e8 --set max_iters=12 --set checkpoint_every=2``: BatchNorm running_var overflows at once."""
    cfg = replace(CFG, lr=1e8, max_iters=12)
    with pytest.raises(NonFiniteStateError) as e:
        train(SPADEMethod(cfg, SYNTHETIC_SPEC), _train_set(tiny_data, cfg), tmp_path, seed=0, progress=False)
    msg = str(e.value)
    assert isinstance(e.value, NonFiniteLossError) and isinstance(e.value, BenchError) and "\n" not in msg
    assert re.match(r"netG\.\S+\.param_free_norm\.running_var is inf( in \d+ of 8 values)? at iteration 0 \(the losses "
                    r"were still finite\); stopped, no checkpoint was written; ", msg), msg
    assert msg.endswith("try a lower lr (e.g. --set lr=1e+07)")
    assert not (tmp_path / "latest.pth").exists()


def test_the_last_finite_checkpoint_is_kept(tiny_data: Path, good_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "latest.pth").write_bytes(good_checkpoint.read_bytes())
    cfg = replace(CFG, lr=1e8)  # the same run, resumed with a diverging lr
    with pytest.raises(NonFiniteStateError, match=rf"^netG\.\S+\.running_var is inf.* at iteration 2 \(the losses were "
                                                  rf"still finite\); stopped, the last good checkpoint is "
                                                  rf"{out / 'latest.pth'} \(iteration 2\); try a lower lr"):
        train(SPADEMethod(cfg, SYNTHETIC_SPEC), _train_set(tiny_data, cfg), out, seed=0, progress=False)
    assert (out / "latest.pth").read_bytes() == good_checkpoint.read_bytes()
    ckpt = load_checkpoint(out / "latest.pth")
    assert ckpt["iteration"] == 2 and all_finite(t for sd in ckpt["nets"].values() for t in sd.values())


def test_the_guards_only_read(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              caplog: pytest.LogCaptureFixture) -> None:
    """Weights after 6 iterations are bit-identical with and without the guards; a normal run warns nothing."""
    with caplog.at_level(logging.WARNING, logger=LOG):
        guarded = SPADEMethod(CFG, SYNTHETIC_SPEC)
        train(guarded, _train_set(tiny_data), tmp_path / "a", seed=5, progress=False)
    assert not [r for r in caplog.records if r.name == LOG]
    monkeypatch.setattr(trainer, "all_finite", lambda tensors: True)
    monkeypatch.setattr(LossWatch, "update", lambda self, losses, iteration: None)
    unguarded = SPADEMethod(CFG, SYNTHETIC_SPEC)
    train(unguarded, _train_set(tiny_data), tmp_path / "b", seed=5, progress=False)
    a, b = _state(guarded), _state(unguarded)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_growing_loss_is_warned_once(tiny_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    method = SPADEMethod(CFG, SYNTHETIC_SPEC)
    original = method.generator_loss

    def offset(data):  # noqa: ANN001, ANN202
        losses = original(data)
        losses["GAN"] = losses["GAN"] + 1e5  # a constant: the gradients, hence training, are unchanged
        return losses

    method.generator_loss = offset  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger=LOG):
        train(method, _train_set(tiny_data), tmp_path, seed=0, progress=False, stop_at=4)
    warned = [r.getMessage() for r in caplog.records if r.name == LOG]
    assert len(warned) == 1 and warned[0].startswith("loss GAN = 1e+05 at iteration 0 (|loss| > 10000)")


# --- loading --------------------------------------------------------------------------------------------
def _poisoned(good_checkpoint: Path, tmp_path: Path, where: str) -> tuple[Path, str]:
    ckpt = load_checkpoint(good_checkpoint)
    if where == "nets":
        key = next(k for k in ckpt["nets"]["netG"] if k.endswith("running_var"))
        ckpt["nets"]["netG"][key][0] = float("inf")
        name = f"netG.{key}"
    else:
        ckpt["optimizers"]["D"]["state"][0]["exp_avg_sq"].fill_(float("nan"))
        name = "optimizers.D.state.0.exp_avg_sq"
    path = tmp_path / where / "latest.pth"
    save_checkpoint(path, ckpt)
    return path, name


def test_resume_refuses_a_non_finite_checkpoint(tiny_data: Path, good_checkpoint: Path, tmp_path: Path) -> None:
    for where, what in (("nets", r"is inf in 1 of \d+ values"), ("optimizers", "is nan")):
        path, name = _poisoned(good_checkpoint, tmp_path, where)
        with pytest.raises(CheckpointError, match=rf"^{path}: {name} {what}; refused to load a non-finite state: "
                                                  r"training had diverged .*lower lr$"):
            train(SPADEMethod(CFG, SYNTHETIC_SPEC), _train_set(tiny_data), path.parent, seed=0, progress=False)


def test_load_weights_and_load_official_refuse_non_finite_files(good_checkpoint: Path, tmp_path: Path) -> None:
    path, name = _poisoned(good_checkpoint, tmp_path, "nets")
    for load in (load_weights, load_official):
        method = SPADEMethod(CFG, SYNTHETIC_SPEC)
        before = _state(method)
        with pytest.raises(CheckpointError, match=rf"^{path}: {name} is inf in 1 of \d+ values; refused"):
            load(method, path)
        after = _state(method)
        assert all(torch.equal(before[k], after[k]) for k in before)  # nothing was loaded
    # an official-format file: the bare generator state_dict, as latest_net_G.pth
    sd = OrderedDict(load_checkpoint(good_checkpoint)["nets"]["netG"])
    key = next(k for k in sd if k.endswith("weight_orig"))
    sd[key] = sd[key].clone()
    sd[key].view(-1)[3] = float("nan")
    official = tmp_path / "ade20k_pretrained" / "latest_net_G.pth"
    official.parent.mkdir()
    torch.save(sd, official)
    with pytest.raises(CheckpointError, match=rf"^{official}: netG\.{key} is nan in 1 of \d+ values; refused to load a "
                                              r"non-finite state: the file is corrupt"):
        load_official(SPADEMethod(CFG, SYNTHETIC_SPEC), official)
    sd[key].view(-1)[3] = 0.0
    torch.save(sd, official)
    assert load_official(SPADEMethod(CFG, SYNTHETIC_SPEC), official)["nets"] == ["netG"]
