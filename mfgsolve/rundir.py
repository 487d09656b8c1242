"""A run directory belongs to one run: its fingerprint, its lock, and what may be written into it.

A run is determined by its problem (the full spec: content, not the path of a file), oracle, scheme, flow kind,
particles, seed, metric, evaluation sizes, initial flow and the kind of device (CPU or CUDA: their random streams
differ, and a generator's state belongs to one kind; which GPU does not matter). Their hash, the *fingerprint*, is recorded in
``config.json`` and in every ``checkpoint.pt``; a run resumes only a directory and a checkpoint with its own
fingerprint, and says which setting differs otherwise. The iteration budget and the tolerance are not part of
it: they say when to stop, not what each iteration computes, so a run may be resumed with a larger budget.

A new run takes only an empty directory (or one it is told to replace, ``overwrite``), and removes a replaced
run's checkpoint before it writes anything, so a crash before its first iteration can never leave another run's
checkpoint to be resumed. While a run writes, ``.mfgsolve.lock`` holds its pid and host under an exclusive
``flock``: a second process is refused and told who holds the directory; the kernel drops the lock of a process
that died, and the next run takes it over.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mfgsolve.errors import RunDirError

__all__ = ["RunClaim", "run_settings", "fingerprint", "claim", "check_writable", "fingerprint_of", "release_all", "LOCK", "RUN_FILES"]

LOCK = ".mfgsolve.lock"
CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
#: The files a run writes (the checkpoint first: removing it first is what keeps a stale one from being resumed).
RUN_FILES = (CHECKPOINT, "summary.json", "flow.npz", "history.csv", CONFIG,
             "convergence.png", "convergence.pdf", "flow.png", "flow.pdf")
#: The settings that determine a run, in ``config.json`` under these names.
FINGERPRINTED = ("problem", "oracle", "scheme", "flow", "particles", "seed", "metric", "eval_particles",
                 "final_eval_particles", "initial_flow", "device")


def _plain(value: Any) -> Any:
    """The JSON value ``config.json`` records for ``value`` (so a recorded setting compares equal to a new one)."""
    from mfgsolve.results import _clean

    return json.loads(json.dumps(_clean(value)))


def run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprinted settings of a run's ``config`` (the problem without its display name)."""
    out = {}
    for key in FINGERPRINTED:
        try:
            out[key] = _plain(config.get(key))
        except (TypeError, ValueError) as exc:  # e.g. a user problem whose config() holds an object
            raise RunDirError(key, f"cannot be recorded in config.json ({str(exc).splitlines()[0][:80]}): "
                                   "its config() must return JSON values (numbers, strings, lists, dicts)") from None
    if isinstance(out["problem"], dict):
        out["problem"] = {k: v for k, v in out["problem"].items() if k != "name"}
    out["device"] = str(out["device"] or "cpu").split(":")[0]  # recorded before runs had a device: the CPU
    return out


def fingerprint(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the settings as canonical JSON (a CPU run's without its device: the fingerprint it had before
    runs recorded one, so that those directories still resume)."""
    if settings.get("device") == "cpu":
        settings = {k: v for k, v in settings.items() if k != "device"}
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def flow_digest(flow: Any) -> str | None:
    """A digest of an initial flow's arrays (``None`` when the run starts from the default flow)."""
    if flow is None:
        return None
    import numpy as np

    h = hashlib.sha256()
    for key, array in sorted(flow.arrays().items()):
        a = np.ascontiguousarray(np.asarray(array))
        h.update(f"{key}:{a.dtype}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _first_difference(old: Any, new: Any, path: str) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{path}.{key}")
    return f"{path} differs (recorded {_short(old)}, this run {_short(new)})"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def difference(recorded: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
    """One line naming the first setting that differs (``problem.spec.H differs ...``), or ``None``."""
    for key in FINGERPRINTED:
        if recorded.get(key) != settings.get(key):
            return _first_difference(recorded.get(key), settings.get(key), key)
    return None


def read_config(directory: Path) -> dict[str, Any]:
    """``config.json`` of a run directory as a dict, or one clear :class:`RunDirError`."""
    path = directory / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RunDirError("run_dir", f"{path} is damaged (not JSON: {str(exc)[:80]})") from None
    except OSError as exc:
        raise RunDirError("run_dir", f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(config, dict):
        raise RunDirError("run_dir", f"{path} is not a run's config (a JSON object)")
    return config


def check_writable(directory: Path, what: str = "run_dir", *, keep: bool = True) -> None:
    """Create ``directory`` and a file in it, or raise one line saying why not (before any work is done).

    ``keep=False`` removes again the directories it created (a check before the work that writes them).
    """
    directory = Path(directory)
    try:
        created = [p for p in [directory, *directory.parents] if not p.exists()]
    except OSError as exc:  # a name too long, a symlink loop
        raise RunDirError(what, f"cannot use {directory}: {exc.strerror or exc}") from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise RunDirError(what, f"cannot write to {directory}: {exc.strerror or exc}") from None
    finally:
        for p in created if not keep else ():
            try:
                p.rmdir()
            except OSError:
                pass


# ------------------------------------------------------------------------------------------------------- lock
#: Locks this process holds, by real path. One process runs one solve into a directory at a time, so a lock
#: found here when a new run of this process claims the directory is left over from a run that raised: taken over.
_HELD: dict[str, "RunClaim"] = {}


@dataclass
class RunClaim:
    """A run's hold on its directory: the lock and the fingerprint it writes into its checkpoints."""

    directory: Path
    fingerprint: str
    settings: dict[str, Any]
    has_checkpoint: bool = False
    _fd: int | None = field(default=None, repr=False)

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.directory / LOCK)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        _HELD.pop(os.path.realpath(self.directory), None)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {int(info['pid'])} on {str(info['host'])!r}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _lock(directory: Path, run: RunClaim) -> None:
    import fcntl

    key = os.path.realpath(directory)
    if key in _HELD:
        _HELD[key].release()
    path = directory / LOCK
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunDirError("run_dir", f"{directory} is in use by another run ({_holder(path)}); "
                                         "wait for it, or use another directory") from None
        try:  # the holder before us may have removed the file between our open and our lock: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:  # pragma: no cover - five races in a row
        raise RunDirError("run_dir", f"{directory}: could not take the lock")
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    run._fd = fd
    _HELD[key] = run


def fingerprint_of(directory: str | Path) -> str | None:
    """The fingerprint of the run writing ``directory``: the one this process holds it for, else the recorded one."""
    held = _HELD.get(os.path.realpath(directory))
    if held is not None:
        return held.fingerprint
    try:
        return read_config(Path(directory)).get("fingerprint")
    except RunDirError:
        return None


def release_all() -> None:
    """Release every run directory this process holds, removing its lock file (the CLI when a command ends, however
    it ends; and at interpreter exit, so that a run that raised leaves no stale ``.mfgsolve.lock``)."""
    for run in list(_HELD.values()):
        run.release()


atexit.register(release_all)


# ------------------------------------------------------------------------------------------------------ claim
def _contents(directory: Path) -> list[str]:
    try:
        return sorted(p.name for p in directory.iterdir() if p.name != LOCK)
    except FileNotFoundError:
        return []


def claim(directory: str | Path, settings: dict[str, Any], *, resume: bool, overwrite: bool) -> RunClaim:
    """Take ``directory`` for the run with ``settings`` (see the module docstring), before any work is done.

    New run (``resume=False``, or nothing to resume): the directory must be empty or absent unless
    ``overwrite``; a replaced run's files go, its checkpoint first. Resume: ``config.json`` must record this
    run's fingerprint; ``has_checkpoint`` says whether there is an iteration to continue from.

    Raises
    ------
    RunDirError
        One line: unwritable, locked (naming the holder), holding another run or other files, damaged.
    """
    if not str(directory).strip():
        raise RunDirError("run_dir", "an empty path (give a directory)")
    directory = Path(directory)
    check_writable(directory)
    run = RunClaim(directory=directory, fingerprint=fingerprint(settings), settings=settings)
    _lock(directory, run)
    try:
        _prepare(directory, run, resume=resume, overwrite=overwrite)
    except BaseException:
        run.release()
        raise
    return run


def _is_run(directory: Path) -> bool:
    try:
        config = read_config(directory)
    except RunDirError:
        return False
    return "problem" in config and "oracle" in config


def _prepare(directory: Path, run: RunClaim, *, resume: bool, overwrite: bool) -> None:
    names = _contents(directory)
    has_config, has_checkpoint = CONFIG in names, CHECKPOINT in names
    if resume and has_config:
        config = read_config(directory)
        recorded = config.get("fingerprint")
        if recorded is None:
            raise RunDirError("run_dir", f"{directory / CONFIG} records no run fingerprint (written by an older "
                                         "mfgsolve, or not a run): it cannot be resumed")
        if recorded != run.fingerprint:
            diff = difference(run_settings(config), run.settings) or "the recorded fingerprint differs"
            raise RunDirError("run_dir", f"{directory} holds another run: {diff}")
        run.has_checkpoint = has_checkpoint
        return
    if resume:  # nothing recorded: no run to continue (a checkpoint alone cannot say which run it is)
        has = f"a {CHECKPOINT} but no {CONFIG}" if has_checkpoint else f"no {CONFIG}"
        raise RunDirError("run_dir", f"{directory} holds no run to resume ({has})")
    if names and not overwrite:
        kind = "another run" if has_config and _is_run(directory) else "files that are not a run"
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise RunDirError("run_dir", f"{directory} already holds {kind} ({shown}); choose an empty directory, "
                                     "resume that run, or replace it (--force; overwrite=True from Python)")
    for name in RUN_FILES:  # the checkpoint first
        try:
            (directory / name).unlink()
        except FileNotFoundError:
            pass
    for name in RUN_FILES:  # temporary files a failed write of the replaced run left
        for tmp in directory.glob(f".{name}.*tmp"):
            tmp.unlink(missing_ok=True)
