"""`mfgsolve sweep`: bad sweep files refused before anything starts, runs on Ray identical to `mfgsolve solve`,
re-runs that skip finished runs and resume interrupted ones, and the tables over seeds."""

from __future__ import annotations

import builtins
import csv
import math
import shutil

import pytest

from mfgsolve.cli import main

TIMING = {"br_seconds", "seconds"}
#: The exact oracle on particles: seconds per run, and the seed matters (the particles are drawn from it).
FIXED = '''
[fixed]
oracle = "exact"
iterations = 3
flow = "particles"
particles = 2000
'''
SWEEP = FIXED + '''
[grid]
problem = ["lq-1d"]
scheme = ["fp", "damped"]
seed = [0, 1]
'''
IDS = ["lq-1d__exact__fp__seed0", "lq-1d__exact__fp__seed1", "lq-1d__exact__damped__seed0",
       "lq-1d__exact__damped__seed1"]


def _solve_args(scheme: str, seed: int, iterations: int = 3) -> list[str]:
    return ["solve", "lq-1d", "--oracle", "exact", "--scheme", scheme, "--iterations", str(iterations), "--flow",
            "particles", "--particles", "2000", "--seed", str(seed), "--quiet"]


def _rows(path, timing: bool = False):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if timing or k not in TIMING} for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the module: starting Ray takes 10-20 s on the shared machines; the sweeps of
    this module use it as it is (a Ray already initialised in the process)."""
    ray = pytest.importorskip("ray")  # the validation tests run without it
    from mfgsolve.sweeps.execute import _start_ray

    assert _start_ray(ray, workers=2, threads=1, address=None)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def swept(tmp_path_factory, local_ray):
    """The sweep of lq-1d x {fp, damped} x seeds {0, 1}, run once for the module."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "sweep.toml").write_text(SWEEP)
    assert main(["sweep", str(d / "sweep.toml"), "--out", str(d / "out"), "--workers", "2", "--quiet"]) == 0
    return d


# ------------------------------------------------------------------------------------------- validation
BAD = {
    "unknown key": (FIXED + "bogus = 1\n[grid]\nseed = [0]\nproblem = ['lq-1d']\n", "[fixed] bogus: unknown key"),
    "unknown table": ("[fixd]\n[grid]\nseed = [0]\n", "fixd: unknown key"),
    "empty grid": (FIXED + "problem = 'lq-1d'\n[grid]\n", "[grid]: empty"),
    "empty list": (FIXED + "problem = 'lq-1d'\n[grid]\nseed = []\n", "[grid] seed: an empty list"),
    "no runs": (FIXED + "problem = 'lq-1d'\n", "no runs"),
    "unknown problem": (FIXED + "[grid]\nproblem = ['lq-1d', 'no-such-game']\n",
                        "grid cell (problem = \"no-such-game\"): PROBLEM: unknown problem 'no-such-game'"),
    "bad value in one cell": (FIXED + "problem = 'lq-1d'\n[grid]\nscheme = ['damped']\nalpha = [0.5, 1.5]\n",
                              "grid cell (scheme = \"damped\", alpha = 1.5): --alpha: must be a number in (0, 1]"),
    "bad override": (FIXED + "problem = 'lq-1d'\n[grid]\nseed = [0]\n[[runs]]\nproblem = 'lq-1d'\nset = {T = -1}\n",
                     "runs[0]: T:"),
    "option of the sweep": (FIXED + "threads = 2\nproblem = 'lq-1d'\n[grid]\nseed = [0]\n",
                            "[fixed] threads: is an option of `mfgsolve sweep`"),
    "list outside the grid": (FIXED + "problem = 'lq-1d'\nseed = [0, 1]\n[grid]\nscheme = ['fp']\n",
                              "[fixed] seed: one value expected"),
    "unknown device": (FIXED + "problem = 'lq-1d'\n[grid]\ndevice = ['cpu', 'tpu']\n",
                       "grid cell (device = \"tpu\"): --device: unknown device 'tpu'"),
    "the same run twice": (FIXED + "problem = 'lq-1d'\n[grid]\nseed = [0]\n[[runs]]\nseed = 0\n", "the same run twice"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sweep_file_is_one_line_and_nothing_is_written(tmp_path, capsys, case):
    text, expected = BAD[case]
    (tmp_path / "s.toml").write_text(text)
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("share", ["-0.5", "1.5", "half"])
def test_a_bad_share_of_a_gpu_is_refused(tmp_path, capsys, share):
    (tmp_path / "s.toml").write_text(SWEEP)
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--gpus-per-run", share]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--gpus-per-run" in err
    assert not (tmp_path / "out").exists()


def test_without_ray_one_line_says_how_to_install(tmp_path, capsys, monkeypatch):
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    (tmp_path / "s.toml").write_text(SWEEP)
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[sweep]"' in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- execution
def test_each_run_is_what_solve_writes(swept, tmp_path):
    runs = swept / "out" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == sorted(IDS)
    for scheme, seed in [("fp", 1), ("damped", 0)]:
        direct = tmp_path / f"{scheme}{seed}"
        assert main(_solve_args(scheme, seed) + ["--out", str(direct)]) == 0
        run = runs / f"lq-1d__exact__{scheme}__seed{seed}"
        assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in direct.iterdir())
        assert _rows(run / "history.csv") == _rows(direct / "history.csv")  # repr'd floats: bit for bit
        assert len(_rows(run / "history.csv")) == 3


def test_rerun_skips_finished_runs(swept, capsys):
    before = {p: p.stat().st_mtime_ns for p in (swept / "out" / "runs").glob("*/history.csv")}
    assert main(["sweep", str(swept / "sweep.toml"), "--out", str(swept / "out"), "--quiet"]) == 0
    assert "4 already finished, 0 run now" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, local_ray):
    (tmp_path / "s.toml").write_text(FIXED + "[grid]\nproblem = ['lq-1d']\nscheme = ['damped']\nseed = [3]\n")
    run = tmp_path / "out" / "runs" / "lq-1d__exact__damped__seed3"
    # an interrupted run: its config, one iteration's history and checkpoint, no summary (as SIGKILL leaves it)
    assert main(_solve_args("damped", 3, iterations=1) + ["--out", str(run)]) == 0
    (run / "summary.json").unlink()
    (run / "flow.npz").unlink()
    first = _rows(run / "history.csv", timing=True)
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    full = tmp_path / "full"
    assert main(_solve_args("damped", 3) + ["--out", str(full)]) == 0
    assert _rows(run / "history.csv") == _rows(full / "history.csv")
    assert _rows(run / "history.csv", timing=True)[0] == first[0]  # iteration 1 kept, timings too: resumed


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path, local_ray, capsys):
    (tmp_path / "s.toml").write_text(FIXED + "[grid]\nproblem = ['lq-1d']\nscheme = ['damped']\nseed = [0, 1]\n")
    taken = tmp_path / "out" / "runs" / "lq-1d__exact__damped__seed1"
    assert main(_solve_args("damped", 7, iterations=1) + ["--out", str(taken)]) == 0  # another run's directory
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "run lq-1d__exact__damped__seed1 failed" in captured.err and "seed differs" in captured.err
    rows = {r["id"]: r for r in csv.DictReader(open(tmp_path / "out" / "runs.csv"))}
    assert rows["lq-1d__exact__damped__seed0"]["status"] == "done"
    assert rows["lq-1d__exact__damped__seed1"]["status"] == "failed"


# ------------------------------------------------------------------------------------------- tables
def test_table_is_mean_sd_and_student_t_interval_over_seeds(swept):
    from scipy import stats

    runs = list(csv.DictReader(open(swept / "out" / "runs.csv")))
    assert [r["status"] for r in runs] == ["done"] * 4
    table = {r["group"]: r for r in csv.DictReader(open(swept / "out" / "table.csv"))}
    assert set(table) == {"lq-1d__exact__fp", "lq-1d__exact__damped"}
    for group, row in table.items():
        for figure in ("mean_error", "relative_exploitability", "wall_seconds"):
            v = [float(r[figure]) for r in runs if r["group"] == group]
            mean = (v[0] + v[1]) / 2
            sd = math.sqrt(((v[0] - mean) ** 2 + (v[1] - mean) ** 2) / 1)
            half = stats.t.ppf(0.975, df=1) * sd / math.sqrt(2)  # 12.706 * sd / sqrt(2)
            assert float(row[f"{figure}_mean"]) == pytest.approx(mean, rel=1e-12)
            assert float(row[f"{figure}_sd"]) == pytest.approx(sd, rel=1e-12)
            assert float(row[f"{figure}_ci_low"]) == pytest.approx(mean - half, rel=1e-12)
            assert float(row[f"{figure}_ci_high"]) == pytest.approx(mean + half, rel=1e-12)
        assert float(row["iterations_done_mean"]) == 3 and float(row["iterations_done_sd"]) == 0
    md = (swept / "out" / "table.md").read_text()
    assert "mean error (%)" in md and "lq-1d__exact__fp" in md


def test_estimate_of_one_value_has_no_spread():
    from mfgsolve.sweeps import estimate

    e = estimate([0.5, None, float("nan")])
    assert e.n == 1 and e.mean == 0.5 and math.isnan(e.sd) and math.isnan(e.low)


def test_plot_of_a_sweep_draws_the_groups(swept, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(swept / "out", out)
    assert main(["plot", str(out)]) == 0
    for ext in ("png", "pdf"):
        assert (out / f"sweep.{ext}").stat().st_size > 1000


def test_a_run_on_another_node_travels_as_tar_bytes(tmp_path, local_ray):
    """The path of a worker without the driver's disk, taken in this process (a node id that is not this one): the
    partial run goes out as bytes, is resumed in the worker's own directory and comes back whole."""
    from mfgsolve.sweeps.execute import RunTask, _pack, _place, execute

    partial = tmp_path / "partial"
    assert main(_solve_args("fp", 2, iterations=1) + ["--out", str(partial)]) == 0
    (partial / "summary.json").unlink()
    task = RunTask(id="r", argv=tuple(_solve_args("fp", 2)[1:]), directory=str(tmp_path / "never-written"),
                   resume=True, driver_node="another-node", payload=_pack(partial))
    outcome = execute(task)
    assert outcome.code == 0 and outcome.payload is not None
    assert not (tmp_path / "never-written").exists()
    _place(outcome.payload, tmp_path / "back")
    full = tmp_path / "full"
    assert main(_solve_args("fp", 2) + ["--out", str(full)]) == 0
    assert _rows(tmp_path / "back" / "history.csv") == _rows(full / "history.csv")
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == sorted(p.name for p in full.iterdir())
