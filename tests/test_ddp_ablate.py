"""``bench ablate --launcher local|slurm``: each uncached cell its own submitit job, cached cells skipped, the
sbatch script Slurm would get, and the Slurm job function run through submitit's mocked Slurm."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import api
from bench.cli import cli
from bench.datasets import write_synthetic
from bench.errors import BenchError, ConfigError
from bench.launchers import Launcher, collect, executor, parse_slurm_args, parse_time_limit, submit_slurm

TINY = {"ngf": "4", "ndf": "4", "spade_hidden": "8", "n_layers_D": "2", "max_iters": "1", "batch_size": "2"}
GRID = {"gan_mode": ["hinge", "ls"], "lambda_feat": ["10.0", "5.0"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=64, n_train=4, n_val=4, seed=3, workers=1)


def test_time_limits_and_slurm_args_parse_or_fail_in_one_line() -> None:
    assert [parse_time_limit(t) for t in ("90", "1:30:00", "2-00:00:00", "45:30")] == [90, 90, 2880, 46]
    assert parse_slurm_args(["account=lab", "--qos=high", "constraint=a100|h100"]) == {
        "account": "lab", "qos": "high", "constraint": "a100|h100"}
    for bad, msg in [("soon", "use minutes"), ("0", "under a minute")]:
        with pytest.raises(ConfigError, match=msg):
            parse_time_limit(bad)
    with pytest.raises(ConfigError, match="expects KEY=VALUE"):
        parse_slurm_args(["account"])
    with pytest.raises(ConfigError, match="names 'qos' twice"):
        parse_slurm_args(["qos=a", "qos=b"])


def test_launcher_options_without_a_launcher_are_refused(data: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["ablate", "--method", "spade", "--dataset", "synthetic", "--data-root", str(data),
                                   "--grid", "ngf=4,8", "--jobs", "2", "--results", str(tmp_path)])
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        "Error: --jobs, --partition and --slurm-arg go with --launcher local|slurm"]


def test_the_sbatch_script_slurm_would_get(tmp_path: Path) -> None:
    from submitit.slurm.test_slurm import mocked_slurm

    launcher = Launcher("slurm", tmp_path / "submitit", jobs=3, partition="gpu", gpus_per_job=2,
                        time_min=parse_time_limit("1:30:00"), cpus_per_task=8,
                        slurm_args=parse_slurm_args(["account=lab", "qos=high"]))
    with mocked_slurm():
        jobs = submit_slurm(executor(launcher), [{"method": "spade", "dataset": "synthetic", "seed": s}
                                                 for s in range(4)])
    assert [j.job_id for j in jobs] == [f"12_{i}" for i in range(4)]  # one array, a task per cell
    script = Path(jobs[0].paths.submission_file).read_text()
    sbatch = {line.split()[1] for line in script.splitlines() if line.startswith("#SBATCH ")}
    for want in ("--partition=gpu", "--gpus-per-node=2", "--ntasks-per-node=2", "--time=90", "--cpus-per-task=8",
                 "--account=lab", "--qos=high", "--array=0-3%3", "--job-name=sisbench", "--nodes=1"):
        assert want in sbatch, (want, sorted(sbatch))
    assert "srun" in script and "submitit.core._submit" in script


@pytest.mark.slow
def test_a_slurm_cell_runs_and_lands_in_the_run_store(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    """The job function of a Slurm array task, run by submitit as Slurm would (mocked sbatch/sacct). ~20 s."""
    from submitit.core import submission
    from submitit.slurm.test_slurm import mocked_slurm

    launcher = Launcher("slurm", tmp_path / "submitit", gpus_per_job=0, time_min=30)
    call = {"method": "spade", "dataset": "synthetic", "data_root": data, "overrides": TINY, "seed": 0,
            "results": tmp_path / "results", "device": "cpu", "fid_layer": "64"}
    with mocked_slurm() as mock:  # sbatch answers with job ids
        jobs = submit_slurm(executor(launcher), [call, {**call, "overrides": {**TINY, "ngf": "x"}}])
    for job in jobs:  # what the array's tasks do on the nodes (with Slurm's job id in the environment)
        with mock.job_context(job.job_id):
            submission.process_job(job.paths.folder)
    with pytest.raises(BenchError) as err:  # the results are there: no sacct needed
        collect(jobs, ["good", "bad"])
    assert str(err.value) == "cell bad: --set ngf='x': expected int"
    (rec,) = collect(jobs[:1], ["good"])
    assert rec.run_id == api.cached_run(**call).run_id  # it is in the store, under the id bench run computes
    assert json.loads((tmp_path / "results" / "runs" / f"{rec.run_id}.json").read_text())["metrics"] == rec.metrics


@pytest.mark.slow
def test_local_launcher_runs_a_two_by_two_grid_two_at_a_time_and_skips_cached_cells(
        data: Path, tmp_path: Path, bench_cache: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """4 cells, each a submitit local job (a fresh Python process), 2 at a time; then again: all cached. ~90 s."""
    monkeypatch.setattr(api, "ablate", functools.partial(api.ablate, fid_layer="64"))
    args = ["ablate", "--method", "spade", "--dataset", "synthetic", "--data-root", str(data), "--device", "cpu",
            "--results", str(tmp_path / "results"), "--launcher", "local", "--jobs", "2",
            *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")],
            *[a for k, vs in GRID.items() for a in ("--grid", f"{k}={','.join(vs)}")]]
    with caplog.at_level(logging.INFO, logger="bench"):
        first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "0 cell(s) cached, 4 to run with the local launcher" in caplog.text
    logs = sorted((tmp_path / "results" / "submitit").glob("*_log.out"))
    assert len(logs) == 4  # one job per cell
    manifest = json.loads(next((tmp_path / "results" / "ablations").glob("*.json")).read_text())
    ids = [c["run_id"] for c in manifest["cells"]]
    assert len(set(ids)) == 4 and all((tmp_path / "results" / "runs" / f"{i}.json").is_file() for i in ids)
    assert [c["set"] for c in manifest["cells"]] == [
        {"gan_mode": g, "lambda_feat": f} for g in GRID["gan_mode"] for f in GRID["lambda_feat"]]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bench"):
        again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "4 cell(s) cached, 0 to run" in caplog.text
    assert len(list((tmp_path / "results" / "submitit").glob("*_log.out"))) == 4  # no new job
    assert again.output == first.output
