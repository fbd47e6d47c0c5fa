"""The generic trainer: resume gives identical weights, NaN stops cleanly, checkpoints are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.checkpoint_io import load_checkpoint, save_checkpoint
from bench.config import apply_overrides
from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
from bench.datasets.transforms import Preprocess
from bench.errors import CheckpointError, NonFiniteLossError
from bench.training.trainer import batch_indices, train
from methods.spade import SPADEConfig, SPADEMethod

CFG = SPADEConfig(
    preprocess_mode="resize_and_crop", load_size=36, crop_size=32, ngf=4, spade_hidden=8, ndf=4, n_layers_D=2,
    param_free_norm="batch", no_instance=False, no_vgg_loss=True, batch_size=2, niter=0, max_iters=6,
    checkpoint_every=3,
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=8, n_val=4, seed=3, workers=1)


def _train_set(root: Path, cfg: SPADEConfig = CFG):
    pre = Preprocess(preprocess_mode=cfg.preprocess_mode, load_size=cfg.load_size, crop_size=cfg.crop_size)
    return open_split(SYNTHETIC_SPEC, root, "train", pre)


def _weights(method: SPADEMethod) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v.clone() for n, net in method.nets.items() for k, v in net.state_dict().items()}


def test_resume_gives_identical_weights(tiny_data: Path, tmp_path: Path) -> None:
    straight = SPADEMethod(CFG, SYNTHETIC_SPEC)
    train(straight, _train_set(tiny_data), tmp_path / "a", seed=5, progress=False)

    first = SPADEMethod(CFG, SYNTHETIC_SPEC)
    res = train(first, _train_set(tiny_data), tmp_path / "b", seed=5, progress=False, stop_at=3)
    assert res.iterations == 3 and load_checkpoint(res.checkpoint)["iteration"] == 3
    resumed = SPADEMethod(CFG, SYNTHETIC_SPEC)  # a new process would build a fresh model
    res = train(resumed, _train_set(tiny_data), tmp_path / "b", seed=5, progress=False)
    assert res.resumed_from == 3 and res.iterations == 6

    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and training did change the weights
    fresh = _weights(SPADEMethod(CFG, SYNTHETIC_SPEC))
    assert any(not torch.equal(fresh[k], a[k]) for k in a if k.endswith("weight_orig"))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    method = SPADEMethod(CFG, SYNTHETIC_SPEC)
    train(method, _train_set(tiny_data), tmp_path, seed=0, progress=False, stop_at=3)
    good = (tmp_path / "latest.pth").read_bytes()
    original = method.generator_loss

    def poisoned(data):  # noqa: ANN001, ANN202
        losses = original(data)
        losses["GAN"] = losses["GAN"] * float("nan")
        return losses

    method.generator_loss = poisoned  # type: ignore[method-assign]
    with pytest.raises(NonFiniteLossError, match=r"non-finite G loss at iteration 3 \(GAN=nan\).*latest.pth"):
        train(method, _train_set(tiny_data), tmp_path, seed=0, progress=False)
    assert (tmp_path / "latest.pth").read_bytes() == good


def test_batch_order_is_a_permutation_per_epoch() -> None:
    seen = sorted(i for it in range(4) for i in batch_indices(8, 2, it, seed=1))
    assert seen == list(range(8))
    assert batch_indices(8, 2, 0, seed=1) != batch_indices(8, 2, 4, seed=1) or batch_indices(8, 2, 1, seed=1) != batch_indices(8, 2, 5, seed=1)


def test_checkpoint_roundtrip_and_foreign_file(tmp_path: Path) -> None:
    p = save_checkpoint(tmp_path / "c.pth", {"iteration": 7, "nets": {}})
    assert load_checkpoint(p)["iteration"] == 7
    assert not list(tmp_path.glob("*.tmp"))
    torch.save({"netG": {}}, tmp_path / "official.pth")
    with pytest.raises(CheckpointError, match="not a sisbench checkpoint"):
        load_checkpoint(tmp_path / "official.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "junk.pth")


def test_overrides_are_type_checked() -> None:
    from bench.errors import ConfigError

    cfg = apply_overrides(CFG, {"ngf": "8", "no_vgg_loss": "off", "gan_mode": "ls", "max_iters": "none"})
    assert (cfg.ngf, cfg.no_vgg_loss, cfg.gan_mode, cfg.max_iters) == (8, False, "ls", None)
    for bad, msg in [({"ngff": "1"}, "did you mean ngf"), ({"ngf": "1.5"}, "expected int"),
                     ({"gan_mode": "x"}, "expected one of"), ({"no_flip": "maybe"}, "expected a boolean"),
                     ({"batch_size": "0"}, "batch_size must be >= 1")]:
        with pytest.raises(ConfigError, match=msg):
            apply_overrides(CFG, bad)


def test_rng_state_of_more_gpus_restores_on_fewer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint from an 8-GPU node resumes on a 1-GPU machine: device 0's state is set, the other 7 are
    dropped (set_rng_state_all would fail on device 1), and the CPU RNGs are restored as saved."""
    from bench.seeding import rng_state, set_rng_state

    state = rng_state()
    state["cuda"] = [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: calls.append((int(s[0]), device)))
    expected = torch.rand(3)
    set_rng_state(state)
    assert calls == [(0, 0)]
    assert torch.equal(torch.rand(3), expected)


def test_bf16_on_cpu_says_it_trains_in_float32(tiny_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """bf16 is a CUDA path: on CPU the run must say that it trains in float32, not pass silently."""
    from dataclasses import replace

    method = SPADEMethod(replace(CFG, bf16=True, max_iters=1, checkpoint_every=1), SYNTHETIC_SPEC)
    with caplog.at_level("WARNING", logger="bench.training.trainer"):
        train(method, _train_set(tiny_data), tmp_path, seed=0, progress=False)
    assert any("bf16=true applies on CUDA only" in r.getMessage() and "float32" in r.getMessage()
               for r in caplog.records)
