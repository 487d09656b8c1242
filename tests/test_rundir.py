"""A run directory belongs to one run (issue 18): fingerprint, lock, no stale checkpoint, data-only checkpoints,
clean errors on damaged or unwritable directories, interrupts."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import mfgsolve as mfg
from mfgsolve import rundir
from mfgsolve.cli import INTERRUPTED, main
from mfgsolve.errors import RunDirError

TIMING = {"br_seconds", "seconds"}
FAST = ["--oracle", "exact", "--flow", "particles", "--particles", "500", "--seed", "3", "--quiet"]


def _rows(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(fh)]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


class _Died(Exception):
    pass


def _die_at_save(monkeypatch, at: int = 1, exc: BaseException | type = _Died) -> None:
    """Make the run die when it saves its ``at``-th checkpoint (history of that iteration written, checkpoint not)."""
    module = sys.modules["mfgsolve.solve"]
    original = module._save_checkpoint
    calls = {"n": 0}

    def save(run_dir, state, oracle):
        calls["n"] += 1
        if calls["n"] == at:
            raise exc
        original(run_dir, state, oracle)

    monkeypatch.setattr(module, "_save_checkpoint", save)


# ------------------------------------------------------------------------------------ stale checkpoint (D1)
def test_a_new_run_never_leaves_another_runs_checkpoint_to_resume(tmp_path, monkeypatch, capsys):
    d, ref = tmp_path / "d", tmp_path / "ref"
    old = ["solve", "lq-1d", *FAST, "--iterations", "4"]
    new = ["solve", "lq-1d", "--set", "H=0.9", *FAST, "--iterations", "3"]
    assert main(old + ["--out", str(d)]) == 0
    capsys.readouterr()
    assert main(new + ["--out", str(d)]) == 2  # a finished run is not replaced without --force
    assert "already holds another run" in _one_line(capsys.readouterr().err)
    with monkeypatch.context() as mp:  # the new run dies before its first checkpoint
        _die_at_save(mp, at=1)
        with pytest.raises(_Died):
            main(new + ["--force", "--out", str(d)])
    assert not (d / "checkpoint.pt").exists() and not (d / "summary.json").exists()
    assert main(new + ["--resume", str(d)]) == 0
    assert main(new + ["--out", str(ref)]) == 0
    assert _rows(d / "history.csv") == _rows(ref / "history.csv")  # the H=0.9 run's history, not the old one's
    assert json.loads((d / "config.json").read_text())["problem"]["spec"]["H"] == 0.9


def test_a_checkpoint_of_another_run_is_refused(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["solve", "lq-1d", *FAST, "--iterations", "2", "--out", str(a)]) == 0
    assert main(["solve", "lq-1d", "--set", "H=0.9", *FAST, "--iterations", "2", "--out", str(b)]) == 0
    (b / "checkpoint.pt").write_bytes((a / "checkpoint.pt").read_bytes())  # an old directory's leftover
    capsys.readouterr()
    assert main(["solve", "lq-1d", "--set", "H=0.9", *FAST, "--iterations", "3", "--resume", str(b)]) == 2
    assert "belongs to another run" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------ changed settings on resume
def test_resume_after_the_spec_file_changed_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "g.toml"
    spec.write_text('family = "lq"\nT = 5\nA = 1.0\nB = 0.1\nR = 0.1\nQbar = 1.0\nH = 0.5\nmu0 = 1.0\nSigma0 = 0.25\n')
    assert main(["solve", "specs/g.toml", *FAST, "--iterations", "2", "--out", "run"]) == 0
    # the same content under another spelling of the path is the same run
    assert main(["solve", "./specs/g.toml", *FAST, "--iterations", "3", "--resume", "run"]) == 0
    spec.write_text(spec.read_text().replace("H = 0.5", "H = 0.7"))
    capsys.readouterr()
    assert main(["solve", "specs/g.toml", *FAST, "--iterations", "5", "--resume", "run"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("mfgsolve: error: --resume:") and "problem.spec.H differs" in line
    assert len(_rows(tmp_path / "run" / "history.csv")) == 3  # nothing spliced


def test_python_resume_with_another_problem_is_refused(tmp_path):
    d = tmp_path / "run"
    kw = dict(stop=mfg.Stop(iterations=2), flow=mfg.Particles(500), progress=False)
    mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), run_dir=d, **kw)
    with pytest.raises(RunDirError, match="problem"):
        mfg.solve(mfg.load_problem("systemic-risk"), mfg.ExactLQOracle(), run_dir=mfg.RunDir(d, resume=True), **kw)
    with pytest.raises(RunDirError, match="seed differs"):
        mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), run_dir=mfg.RunDir(d, resume=True), seed=1, **kw)
    assert len(_rows(d / "history.csv")) == 2
    # same run, larger budget: accepted
    res = mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), run_dir=mfg.RunDir(d, resume=True), **{**kw, "stop": mfg.Stop(iterations=3)})
    assert len(res.history) == 3


# -------------------------------------------------------------------------------- --out into a used directory
def test_out_into_a_directory_with_other_files_is_refused_without_force(tmp_path, capsys):
    d = tmp_path / "userproj"
    d.mkdir()
    (d / "config.json").write_text('{"mine": 1}')
    (d / "history.csv").write_text("my,data\n")
    args = ["solve", "lq-1d", *FAST, "--iterations", "2", "--out", str(d)]
    assert main(args) == 2
    assert "not a run" in _one_line(capsys.readouterr().err)
    assert (d / "config.json").read_text() == '{"mine": 1}' and (d / "history.csv").read_text() == "my,data\n"
    assert main(args + ["--force"]) == 0
    assert len(_rows(d / "history.csv")) == 2
    with pytest.raises(RunDirError, match="already holds another run"):
        mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), stop=mfg.Stop(iterations=1), run_dir=d, progress=False)
    mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), stop=mfg.Stop(iterations=1), run_dir=mfg.RunDir(d, overwrite=True), progress=False)
    assert len(_rows(d / "history.csv")) == 1


def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["solve", "lq-1d", *FAST, "--out", ""]) == 2
    assert "empty path" in _one_line(capsys.readouterr().err)
    with pytest.raises(RunDirError, match="empty path"):
        mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), stop=mfg.Stop(iterations=1), run_dir="", progress=False)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------------ lock
HOLDER = """
import sys, time
from mfgsolve import rundir
rundir.claim(sys.argv[1], {"x": 1}, resume=False, overwrite=False)
print("held", flush=True)
time.sleep(60)
"""


def test_a_directory_in_use_is_refused_naming_its_holder(tmp_path, capsys):
    d = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["solve", "lq-1d", *FAST, "--iterations", "1", "--out", str(d)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert "in use by another run" in line and f"pid {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock is taken over
    assert main(["solve", "lq-1d", *FAST, "--iterations", "1", "--out", str(d)]) == 0
    assert not (d / rundir.LOCK).exists()  # released at the end


# ------------------------------------------------------------------------------------- crafted checkpoints
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_checkpoint_is_not_executed(tmp_path, capsys):
    d = tmp_path / "evil"
    args = ["solve", "lq-1d", *FAST, "--iterations", "3"]
    assert main(args[:-1] + ["2", "--out", str(d)]) == 0
    fp = json.loads((d / "config.json").read_text())["fingerprint"]
    marker = tmp_path / "PWNED_by_checkpoint"
    torch.save({"fingerprint": fp, "state": _Payload(marker), "oracle": None}, d / "checkpoint.pt")
    capsys.readouterr()
    assert main(args + ["--resume", str(d)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "refused" in line and "system" in line
    with pytest.raises(RunDirError, match="nothing in it was run"):
        mfg.solve(mfg.load_problem("lq-1d"), mfg.ExactLQOracle(), stop=mfg.Stop(iterations=3), flow=mfg.Particles(500), run_dir=mfg.RunDir(d, resume=True), seed=3, progress=False)
    assert not marker.exists()


def _tiny_oracle(name):
    from mfgsolve.oracles.mfrl import MFACOracle, MFQOracle
    from mfgsolve.oracles.nopop import NoPopDDPGOracle

    tiny = dict(updates=6, n_agents=8, batch_size=16, eval_every=3, eval_agents=16, hidden=16, progress=False)
    if name == "ddpg":
        return mfg.DDPGOracle(seed=2, encoder_dim=4, particles=8, hist_bins=4, **tiny)
    if name == "ddpg-nopop":
        return NoPopDDPGOracle(seed=2, **tiny)
    if name == "mf-q":
        return MFQOracle(seed=2, updates=10, n_agents=16, batch_size=32, eval_agents=64)
    return MFACOracle(seed=2, updates=3, n_agents=16, eval_agents=64)


# (all four oracles under both schemes pass; these two cover DDPG networks in fictitious play's mixtures and the
# baselines' pickled optimisers, whose defaultdict state needs mfgsolve.checkpoint's rebuild)
@pytest.mark.parametrize("oracle, scheme", [("ddpg", mfg.FictitiousPlay()), ("mf-ac", mfg.Picard())],
                         ids=["ddpg-fp", "mf-ac-picard"])
def test_learned_oracles_checkpoints_load_as_data_and_resume_exactly(tmp_path, oracle, scheme):
    """Networks, optimisers, replay, mixtures pass the allow-list, and the resumed run is the uninterrupted one."""
    pb = mfg.load_problem("lq-1d")
    kw = dict(scheme=scheme, flow=mfg.Particles(128), evaluation=mfg.Evaluation(particles=64, final_particles=128),
              progress=False)
    full = mfg.solve(pb, _tiny_oracle(oracle), stop=mfg.Stop(iterations=2), run_dir=tmp_path / "full", **kw)
    mfg.solve(pb, _tiny_oracle(oracle), stop=mfg.Stop(iterations=1), run_dir=tmp_path / "cut", **kw)
    resumed = mfg.solve(pb, _tiny_oracle(oracle), stop=mfg.Stop(iterations=2), run_dir=mfg.RunDir(tmp_path / "cut", resume=True), **kw)
    assert _rows(tmp_path / "cut" / "history.csv") == _rows(tmp_path / "full" / "history.csv")
    assert resumed.summary.residuals == full.summary.residuals


# --------------------------------------------------------------------------------------------- damaged files
DAMAGE = {
    "truncated checkpoint": ("checkpoint.pt", lambda b: b[:1000]),
    "garbage checkpoint": ("checkpoint.pt", lambda b: os.urandom(3000)),
    "truncated config": ("config.json", lambda b: b[:40]),
    "config a list": ("config.json", lambda b: b"[1, 2]"),
    "config empty object": ("config.json", lambda b: b"{}"),
    "config not utf-8": ("config.json", lambda b: b"\xff\xfe\x00garbage"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_run_directory_is_one_clean_error(tmp_path, capsys, case):
    d = tmp_path / "run"
    args = ["solve", "lq-1d", *FAST, "--iterations", "2"]
    assert main(args + ["--out", str(d)]) == 0
    name, damage = DAMAGE[case]
    (d / name).write_bytes(damage((d / name).read_bytes()))
    capsys.readouterr()
    assert main(args + ["--resume", str(d)]) == 2
    assert _one_line(capsys.readouterr().err).startswith("mfgsolve: error: --resume:")


def test_resume_with_a_checkpoint_but_no_config(tmp_path, capsys):
    d = tmp_path / "run"
    args = ["solve", "lq-1d", *FAST, "--iterations", "2"]
    assert main(args + ["--out", str(d)]) == 0
    (d / "config.json").unlink()
    capsys.readouterr()
    assert main(args + ["--resume", str(d)]) == 2
    assert "checkpoint.pt but no config.json" in _one_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------------- failed writes, full disk
def test_a_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    from mfgsolve import results

    target = tmp_path / "history.csv"
    target.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", full)
    with pytest.raises(OSError):
        results.atomic_write(target, b"new\n" * 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]
    assert target.read_text() == "old\n"


def test_a_full_disk_during_a_run_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    from mfgsolve import results

    d = tmp_path / "run"
    real = results.os.fsync
    calls = {"n": 0}

    def fsync(fd):  # config.json, then history + checkpoint per iteration: fail in the third iteration
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(results.os, "fsync", fsync)
    args = ["solve", "lq-1d", *FAST, "--iterations", "4"]
    assert main(args + ["--out", str(d)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "--resume" in line
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(results.os, "fsync", real)
    assert main(args + ["--resume", str(d)]) == 0
    assert len(_rows(d / "history.csv")) == 4


# ------------------------------------------------------------------------------------------------ interrupts
def test_sigint_ends_with_a_resume_hint_and_valid_files(tmp_path, monkeypatch, capsys):
    d, full = tmp_path / "cut", tmp_path / "full"
    args = ["solve", "lq-1d", *FAST, "--iterations", "5"]
    with monkeypatch.context() as mp:
        _die_at_save(mp, at=3, exc=KeyboardInterrupt)
        assert main(args + ["--out", str(d)]) == INTERRUPTED == 130
    line = _one_line(capsys.readouterr().err)
    assert "interrupted" in line and f"--resume {d}" in line
    assert not (d / rundir.LOCK).exists()
    assert main(args + ["--resume", str(d)]) == 0
    assert main(args + ["--out", str(full)]) == 0
    assert _rows(d / "history.csv") == _rows(full / "history.csv")


def test_sigint_in_a_real_process(tmp_path):
    d = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "mfgsolve.cli", "solve", "lq-1d", "--oracle", "ddpg",
                             "--br-updates", "100000", "--particles", "300", "--quiet", "--out", str(d)],
                            stderr=subprocess.PIPE, text=True,
                            # a shell's background job ignores SIGINT, and its children inherit that: restore it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (d / "config.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert _one_line(err).endswith(f"--resume {d}")


# ------------------------------------------------------------------------------------ unwritable, version
@pytest.mark.parametrize("command", ["solve", "br-check", "reference"])
def test_an_unwritable_out_is_refused_before_any_work(tmp_path, monkeypatch, capsys, command):
    import mfgsolve.brcheck

    def no_training(*a, **k):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(mfgsolve.brcheck, "br_check", no_training)
    monkeypatch.setattr(sys.modules["mfgsolve.solve"], "propagate", no_training)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    extra = {"solve": ["--oracle", "exact"], "br-check": ["--oracle", "ddpg", "--updates", "50"], "reference": []}
    for out in (blocker / "sub", "/proc/mfgsolve-test"):
        assert main([command, "lq-1d", *extra[command], "--out", str(out)]) == 2
        assert "cannot write to" in _one_line(capsys.readouterr().err)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mfgsolve {mfg.__version__}"


# -------------------------------------------------------------------------------------------------- plot
PLOT_DAMAGE = {
    "no flow.npz": lambda d: (d / "flow.npz").unlink(),
    "no config.json": lambda d: (d / "config.json").unlink(),
    "summary not json": lambda d: (d / "summary.json").write_text("{not json"),
    "history garbage": lambda d: (d / "history.csv").write_text("garbage"),
    "history header only": lambda d: (d / "history.csv").write_text((d / "history.csv").read_text().splitlines()[0]),
    "flow garbage": lambda d: (d / "flow.npz").write_bytes(b"PK\x03\x04garbage"),
}


@pytest.mark.parametrize("case", PLOT_DAMAGE)
def test_plot_of_a_damaged_run_is_one_clean_error(tmp_path, capsys, case):
    d = tmp_path / "run"
    assert main(["solve", "lq-1d", *FAST, "--iterations", "2", "--out", str(d)]) == 0
    PLOT_DAMAGE[case](d)
    capsys.readouterr()
    assert main(["plot", str(d)]) == 2
    _one_line(capsys.readouterr().err)
    assert not (d / "convergence.png").exists()
