"""``--device`` / ``device=``: one resolution, CPU runs unchanged by it, recorded in config.json, resumed on the same
kind of device. The comparisons on a GPU run only where torch sees CUDA (skipped elsewhere)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import mfgsolve as mfg
from mfgsolve import rundir
from mfgsolve.cli import main
from mfgsolve.devices import resolve_device
from mfgsolve.errors import RunDirError, SpecError
from mfgsolve.oracles.ddpg import DDPGOracle
from mfgsolve.oracles.mfrl import MFACOracle, MFQOracle
from mfgsolve.oracles.pathwise import PathwiseOracle

TIMING = {"br_seconds", "seconds"}
#: A DDPG response of a few updates on a handful of agents (as in tests/test_ddpg.py).
TINY_DDPG = dict(updates=6, n_agents=8, batch_size=16, eval_every=3, eval_agents=16, hidden=16, encoder_dim=4,
                 particles=8, hist_bins=4, progress=False)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def no_cuda(monkeypatch):
    """torch as it is on a machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _history(result: mfg.SolveResult) -> list[dict]:
    return [{k: v for k, v in vars(h).items() if k not in TIMING} for h in result.history]


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(fh)]


# ------------------------------------------------------------------------------------------------ resolution
@pytest.mark.parametrize("spec", ["cpu", " cpu ", "cpu:0", None, torch.device("cpu")])
def test_cpu_specs_resolve_to_the_cpu(spec):
    assert resolve_device(spec) == torch.device("cpu")


def test_auto_is_the_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda_is_refused_naming_device(no_cuda, spec):
    with pytest.raises(SpecError, match="no CUDA device") as info:
        resolve_device(spec)
    assert info.value.field == "device"


@pytest.mark.parametrize("spec", ["tpu", "", "gpu", "mps", "meta", 3])
def test_other_devices_are_refused_naming_device(spec):
    with pytest.raises(SpecError) as info:
        resolve_device(spec)
    assert info.value.field == "device" and "\n" not in str(info.value)


def test_solve_and_br_check_refuse_a_bad_device_before_any_work(tmp_path):
    pb = mfg.load_problem("lq-1d")
    with pytest.raises(SpecError, match="device"):
        mfg.solve(pb, mfg.ExactLQOracle(), device="tpu", run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(SpecError, match="device"):
        mfg.br_check(pb, DDPGOracle(**TINY_DDPG), device="tpu")


@pytest.mark.parametrize("command", [["solve", "lq-1d", "--oracle", "exact"], ["br-check", "lq-1d", "--updates", "5"]])
@pytest.mark.parametrize("device", ["cuda", "tpu"])
def test_cli_refuses_a_device_it_cannot_use_with_one_line_and_code_2(no_cuda, tmp_path, capsys, command, device):
    out = tmp_path / "run"
    assert main([*command, "--device", device, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mfgsolve: error: --device:")
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ CPU unchanged
def test_device_cpu_gives_the_history_of_no_device_exact_particles():
    pb = mfg.load_problem("lq-1d")
    run = dict(scheme=mfg.FictitiousPlay(), flow=mfg.Particles(2048), stop=mfg.Stop(iterations=3), seed=4,
               evaluation=mfg.Evaluation(particles=256, final_particles=512))
    plain = mfg.solve(pb, mfg.ExactLQOracle(), **run)
    on_cpu = mfg.solve(pb, mfg.ExactLQOracle(), device=torch.device("cpu"), **run)
    assert _history(on_cpu) == _history(plain)
    assert torch.equal(on_cpu.flow.x, plain.flow.x)


def test_device_cpu_gives_the_history_of_no_device_learned(one_thread):
    pb = mfg.load_problem("lq-1d")
    run = dict(flow=mfg.Particles(512), stop=mfg.Stop(iterations=2), seed=0,
               evaluation=mfg.Evaluation(particles=256, final_particles=512))
    plain = mfg.solve(pb, DDPGOracle(**TINY_DDPG), **run)
    on_cpu = mfg.solve(pb, DDPGOracle(**TINY_DDPG), device="cpu", **run)
    assert _history(on_cpu) == _history(plain)


def test_cli_device_cpu_writes_the_history_and_config_of_no_flag(tmp_path):
    args = ["solve", "lq-1d", "--oracle", "exact", "--flow", "particles", "--particles", "1024", "--iterations", "3",
            "--quiet", "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--device", "cpu", "--out", str(tmp_path / "cpu")]) == 0
    assert _rows(tmp_path / "cpu" / "history.csv") == _rows(tmp_path / "plain" / "history.csv")
    config = json.loads((tmp_path / "cpu" / "config.json").read_text())
    plain = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert config["device"] == plain["device"] == "cpu" and config["environment"]["device"] == "cpu"
    assert config["fingerprint"] == plain["fingerprint"]


def test_a_cpu_run_keeps_the_fingerprint_it_had_before_runs_recorded_a_device():
    config = {"problem": {"name": "x", "T": 2}, "oracle": {"name": "exact"}, "seed": 0, "device": "cpu"}
    before = {k: v for k, v in config.items() if k != "device"}  # config.json of an older mfgsolve
    assert rundir.run_settings(before)["device"] == "cpu"
    assert rundir.fingerprint(rundir.run_settings(config)) == rundir.fingerprint(rundir.run_settings(before))
    on_gpu = rundir.run_settings({**config, "device": "cuda:1"})
    assert on_gpu["device"] == "cuda"  # the kind, not which GPU
    assert rundir.fingerprint(on_gpu) != rundir.fingerprint(rundir.run_settings(config))
    assert rundir.fingerprint(on_gpu) == rundir.fingerprint(rundir.run_settings({**config, "device": "cuda:0"}))


def test_resume_on_another_kind_of_device_is_refused_naming_device(tmp_path):
    """A run recorded on CUDA (its config.json edited here, as no GPU is needed to refuse it) is not resumed on
    the CPU: its random streams and generator states belong to CUDA."""
    pb = mfg.load_problem("lq-1d")
    run = dict(flow=mfg.Particles(256), stop=mfg.Stop(iterations=1), seed=0,
               evaluation=mfg.Evaluation(particles=0, final_particles=0))
    mfg.solve(pb, mfg.ExactLQOracle(), run_dir=tmp_path, **run)
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    config["device"] = "cuda:0"
    config["fingerprint"] = rundir.fingerprint(rundir.run_settings(config))
    path.write_text(json.dumps(config))
    with pytest.raises(RunDirError, match=r'device differs \(recorded "cuda", this run "cpu"\)'):
        mfg.solve(pb, mfg.ExactLQOracle(), run_dir=mfg.RunDir(tmp_path, resume=True),
                  **{**run, "stop": mfg.Stop(iterations=2)})


@pytest.mark.parametrize("make", [DDPGOracle, PathwiseOracle, MFQOracle, MFACOracle])
def test_for_run_sets_the_device_outside_the_oracle_settings(make):
    oracle = make(seed=1, updates=5)
    assert oracle.device == torch.device("cpu")
    assert oracle.for_run(seed=0, updates=9, device=torch.device("cpu")) is oracle
    assert "device" not in oracle.config()  # the run's, recorded once in config.json


def test_br_check_records_its_device(one_thread):
    result = mfg.br_check(mfg.load_problem("lq-1d"), DDPGOracle(**TINY_DDPG), min_agents=256, max_agents=256)
    assert result.device == "cpu" and result.to_json()["device"] == "cpu"


# ------------------------------------------------------------------------------------------------ CUDA only
@cuda
def test_cuda_exact_particle_run_lives_on_the_gpu_and_agrees_with_the_reference(tmp_path):
    pb = mfg.load_problem("lq-1d")
    run = dict(flow=mfg.Particles(32768), stop=mfg.Stop(iterations=30), seed=0)
    gpu = mfg.solve(pb, mfg.ExactLQOracle(), device="cuda", run_dir=tmp_path / "gpu", **run)
    cpu = mfg.solve(pb, mfg.ExactLQOracle(), device="cpu", **run)
    assert gpu.flow.x.device.type == "cuda"
    assert json.loads((tmp_path / "gpu" / "config.json").read_text())["device"].startswith("cuda")
    # other random numbers than the CPU run: both within the sampling error of 32768 particles (0.47%, README)
    assert gpu.summary.mean_error < 0.01 and cpu.summary.mean_error < 0.01


@cuda
@pytest.mark.parametrize("make", [lambda: DDPGOracle(**TINY_DDPG),
                                  lambda: PathwiseOracle(updates=5, batch=32, eval_every=5, eval_agents=64,
                                                         hidden=16, encoder_dim=4, progress=False),
                                  lambda: MFQOracle(updates=5), lambda: MFACOracle(updates=3)])
def test_cuda_learned_runs_train_on_the_gpu_and_resume(tmp_path, make):
    pb = mfg.load_problem("lq-1d")
    run = dict(flow=mfg.Particles(1024), seed=0, evaluation=mfg.Evaluation(particles=256, final_particles=512),
               device="cuda")
    first = mfg.solve(pb, make(), stop=mfg.Stop(iterations=1), run_dir=tmp_path, **run)
    assert first.flow.x.device.type == "cuda"
    again = mfg.solve(pb, make(), stop=mfg.Stop(iterations=2), run_dir=mfg.RunDir(tmp_path, resume=True), **run)
    assert len(again.history) == 2 and all(h.residual == h.residual for h in again.history)  # finite, no NaN


@cuda
def test_cuda_br_check_trains_and_evaluates_on_the_gpu():
    result = mfg.br_check(mfg.load_problem("lq-1d"), DDPGOracle(**TINY_DDPG), device="cuda",
                          min_agents=256, max_agents=256)
    assert result.device.startswith("cuda") and result.gap == result.gap
