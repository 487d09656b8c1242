"""A sweep's runs as Ray tasks, each one ``mfgsolve solve`` (:func:`mfgsolve.cli.main`) in a worker.

One run is made one way: a task calls the command line's own ``main`` with the cell's arguments, so a sweep's run
directory holds what ``mfgsolve solve`` with those arguments writes, history included. Ray schedules the tasks:
a local Ray started here (``workers`` runs at once, each with ``threads`` torch threads and as many Ray CPUs), or a
running cluster joined by ``address``.

Where a run is written. A task on the driver's node writes ``DIR/runs/<id>`` in place (a SIGKILL of the sweep
leaves its checkpoint, and the next sweep resumes it). A task on another node runs in a directory of its own,
with the run's partial directory shipped to it when there is one to resume, and returns the finished directory as
tar bytes, which the driver unpacks under ``DIR/runs/<id>``: the driver's disk gets every run whether or not the
workers share it (a run interrupted on such a node starts again from what the driver had).

Re-running. A run whose ``summary.json`` is there and whose arguments ``DIR/sweep.json`` records as finished is
skipped; a run with a ``config.json`` is resumed (``--resume``: the run directory's fingerprint refuses another
run's directory, naming the setting); any other is started (``--out --force``: a directory without a
``config.json`` holds no run). A failed run is reported with its error and the others go on.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfgsolve.errors import SpecError
from mfgsolve.sweeps.spec import Cell, Sweep

__all__ = ["RunTask", "RunOutcome", "execute", "run_sweep", "INSTALL_HINT"]

#: The one line printed when Ray is not installed.
INSTALL_HINT = 'mfgsolve sweep needs Ray: pip install -e ".[sweep]" (or pip install "ray>=2.9")'
#: What the driver records of each run (its arguments, whether it finished, its error).
MANIFEST = "sweep.json"
#: Exit code of a sweep in which some run failed (the others ran; rerun the command to retry the failed ones).
RUN_FAILED = 1


@dataclass(frozen=True)
class RunTask:
    """What a worker needs to make one run.

    Attributes
    ----------
    id : str
        The run's id (its directory's name).
    argv : tuple of str
        ``mfgsolve solve`` arguments without the run directory.
    directory : str
        ``DIR/runs/<id>`` on the driver's disk (written in place when the task runs on the driver's node).
    resume : bool
        Continue the run recorded in the directory (``--resume``) instead of starting it (``--out --force``).
    driver_node : str
        The Ray node id of the driver.
    payload : bytes or None
        The directory as tar bytes, to resume from on another node.
    spec : bytes or None
        The problem's spec file, when the problem is one, for a node without the driver's disk.
    """

    id: str
    argv: tuple[str, ...]
    directory: str
    resume: bool
    driver_node: str
    payload: bytes | None = field(default=None, repr=False)
    spec: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RunOutcome:
    """What a worker returns: the command's exit code, its error line, and the run directory from another node."""

    id: str
    code: int
    error: str | None
    seconds: float
    payload: bytes | None = field(default=None, repr=False)


# ------------------------------------------------------------------------------------------------- worker
def execute(task: RunTask) -> RunOutcome:
    """Make one run: ``mfgsolve solve`` with the task's arguments, in place on the driver's node, else in a
    directory of its own whose files are returned as tar bytes (the body of the Ray task)."""
    import ray

    start = time.perf_counter()
    local = ray.get_runtime_context().get_node_id() == task.driver_node
    with tempfile.TemporaryDirectory(prefix="mfgsolve-sweep-") as tmp:
        argv = list(task.argv)
        directory = Path(task.directory)
        if not local:
            directory = Path(tmp) / task.id
            if task.payload is not None:
                _unpack(task.payload, directory)
            if task.spec is not None:  # the same content under a path of this node (the fingerprint reads content)
                spec = Path(tmp) / Path(argv[0]).name
                spec.write_bytes(task.spec)
                argv[0] = str(spec)
        where = ["--resume", str(directory)] if task.resume else ["--out", str(directory), "--force"]
        code, error = _solve(["solve", *argv, *where])
        payload = _pack(directory) if not local and directory.is_dir() else None
    return RunOutcome(id=task.id, code=code, error=error, seconds=time.perf_counter() - start, payload=payload)


def _solve(argv: list[str]) -> tuple[int, str | None]:
    """``mfgsolve.cli.main(argv)``, its output kept from the worker's log; the exit code and the error line."""
    from mfgsolve.cli import main

    err = io.StringIO()
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            code = main(argv)
    except Exception as exc:  # a bug, not bad input: reported with the run, the other runs go on
        return 1, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    return code, (lines[-1].removeprefix("mfgsolve: error: ") if lines else f"exit code {code}") if code else None


def _pack(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(directory.iterdir()):
            if path.name != ".mfgsolve.lock":
                tar.add(path, arcname=path.name)
    return buf.getvalue()


def _unpack(payload: bytes, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
        tar.extractall(directory, filter="data")


def _place(payload: bytes, target: Path) -> None:
    """Unpack a run directory returned by another node as ``target`` (unpacked beside it, then renamed)."""
    incoming = target.with_name(f".{target.name}.incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    _unpack(payload, incoming)
    shutil.rmtree(target, ignore_errors=True)
    incoming.rename(target)


# ------------------------------------------------------------------------------------------------- driver
def run_sweep(sweep: Sweep, out: Path, *, workers: int | None = None, threads: int = 1, address: str | None = None,
              gpus: float = 0.0, progress: bool = True) -> int:
    """Run the sweep's cells on Ray into ``out`` and aggregate them; the command's exit code.

    Parameters
    ----------
    sweep : Sweep
        A checked sweep file (:func:`mfgsolve.sweeps.load_sweep`).
    out : Path
        The sweep directory: ``sweep.toml`` (a copy of the file), ``sweep.json``, ``runs/<id>/``, ``runs.csv``,
        ``table.csv``, ``table.md``.
    workers : int, optional
        Runs at once on the local Ray started here (default: CPU cores // ``threads``). A Ray already initialised
        in this process is used as it is.
    threads : int
        torch threads of each run, and the Ray CPUs each task holds.
    address : str, optional
        A running Ray cluster to join (``"auto"`` or ``host:port``) instead of starting a local one.
    gpus : float
        The fraction of a GPU each run holds (Ray's ``num_gpus``; e.g. 0.25 runs four at once on one GPU). The runs
        use it when their ``device`` is ``cuda`` or ``auto``; 0 (the default) asks for none.
    progress : bool
        One progress bar over the runs (tqdm, on stderr).

    Returns
    -------
    int
        0 when every run finished, 2 for bad input (no Ray, an unwritable ``out``, no cluster at ``address``),
        :data:`RUN_FAILED` when some run failed (each reported on stderr, the others finished).
    """
    from mfgsolve.rundir import check_writable
    from mfgsolve.results import atomic_write
    from mfgsolve.sweeps.aggregate import aggregate

    try:
        import ray
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    check_writable(out, "--out")
    runs = out / "runs"
    runs.mkdir(exist_ok=True)
    atomic_write(out / "sweep.toml", sweep.text.encode("utf-8"))
    manifest = _read_manifest(out)
    todo = [c for c in sweep.cells if not _finished(c, runs / c.id, manifest)]

    failed: dict[str, str] = {}
    if todo:
        owned = _start_ray(ray, workers=workers, threads=threads, address=address)
        try:
            failed = _execute(ray, todo, runs, manifest, out, threads=threads, gpus=gpus, total=len(sweep.cells),
                              progress=progress)
        finally:
            if owned:
                ray.shutdown()
    table = aggregate(sweep, out)
    done = len(sweep.cells) - len(failed)
    print(f"sweep: {len(sweep.cells)} runs, {len(sweep.cells) - len(todo)} already finished, "
          f"{len(todo) - len(failed)} run now, {len(failed)} failed; {done} in {out / 'runs.csv'} and {table}")
    for run_id, error in failed.items():
        print(f"mfgsolve: error: run {run_id} failed: {error}", file=sys.stderr)
    return RUN_FAILED if failed else 0


def _finished(cell: Cell, directory: Path, manifest: dict[str, Any]) -> bool:
    record = manifest.get(cell.id, {})
    return ((directory / "summary.json").is_file() and record.get("status") == "done"
            and record.get("argv") == list(cell.argv))


def _read_manifest(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("runs", {}) if isinstance(data, dict) and isinstance(data.get("runs"), dict) else {}


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    from mfgsolve.results import write_json

    write_json(out / MANIFEST, {"runs": manifest})


def _start_ray(ray: Any, *, workers: int | None, threads: int, address: str | None) -> bool:
    """Connect to Ray; ``True`` when this call started it (and so shuts it down)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network from CI and clusters without it
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
    if address is not None:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SpecError("--address", f"cannot join a Ray cluster at {address!r} "
                                         f"({str(exc).splitlines()[0][:120]})") from None
        return True
    import mfgsolve

    workers = workers or max(1, (os.cpu_count() or 1) // threads)
    source = str(Path(mfgsolve.__file__).resolve().parents[1])  # workers import this mfgsolve, not another one
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=workers * threads, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
             **quiet)
    return True


def _execute(ray: Any, cells: list[Cell], runs: Path, manifest: dict[str, Any], out: Path, *, threads: int,
             gpus: float, total: int, progress: bool) -> dict[str, str]:
    """Submit a task per cell, collect them as they end (unpacking runs from other nodes); the failed runs' errors."""
    from tqdm.auto import tqdm

    node = ray.get_runtime_context().get_node_id()
    remote = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(execute)
    pending = {}
    for cell in cells:
        directory = runs / cell.id
        resume = (directory / "config.json").is_file()
        spec = Path(cell.argv[0]).read_bytes() if Path(cell.argv[0]).is_file() else None
        task = RunTask(id=cell.id, argv=(*cell.argv, "--threads", str(threads)), directory=str(directory.resolve()),
                       resume=resume, driver_node=node, payload=_pack(directory) if resume else None, spec=spec)
        pending[remote.remote(task)] = cell
    failed: dict[str, str] = {}
    with tqdm(total=total, initial=total - len(cells), desc="sweep", unit="run", disable=not progress) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                outcome: RunOutcome = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # the worker died (out of memory, killed)
                outcome = RunOutcome(id=cell.id, code=1, error=f"the Ray task failed: {str(exc).splitlines()[0][:200]}",
                                     seconds=0.0)
            if outcome.payload is not None:
                _place(outcome.payload, runs / cell.id)
            manifest[cell.id] = {"argv": list(cell.argv), "status": "done" if outcome.code == 0 else "failed",
                                 "error": outcome.error, "seconds": round(outcome.seconds, 3)}
            _write_manifest(out, manifest)
            if outcome.code != 0:
                failed[cell.id] = outcome.error or f"exit code {outcome.code}"
                if progress:  # as it happens; all failures are listed again at the end
                    bar.write(f"run {cell.id} failed: {failed[cell.id]}", file=sys.stderr)
            bar.update(1)
    return failed
