"""Checkpoints that hold data only: nothing in a ``checkpoint.pt`` can run code when it is loaded.

A checkpoint is written with ``torch.save`` and read with ``torch.load(weights_only=True)``, whose unpickler
builds tensors, plain Python values and only the classes named here: mfgsolve's own data (flows, policies,
networks, the loop state), torch's layers and optimisers, numpy arrays. Any other global in the file (``os.system``
behind a crafted ``__reduce__``, say) stops the load before anything is called, with one line naming it; so does
a truncated or garbled file. Sharing a run directory is then sharing data, not a program.
"""

from __future__ import annotations

import collections
import importlib
import io
import pickle
import types
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from mfgsolve.errors import RunDirError

__all__ = ["SAFE_CLASSES", "save_checkpoint", "load_checkpoint"]

#: mfgsolve's classes a checkpoint may hold (``module:name``): the loop state's flows, policies and records, the
#: networks and encoders inside learned policies, the baselines' state. A class missing here fails the load with
#: its name (add it when it is data: building it runs no code beyond setting attributes).
SAFE_CLASSES = (
    "mfgsolve.flows:GaussianFlow",
    "mfgsolve.flows:ParticleFlow",
    "mfgsolve.policies:_Bound",
    "mfgsolve.policies:AffinePolicy",
    "mfgsolve.policies:MixturePolicy",
    "mfgsolve.policies:_AssignedMixture",
    "mfgsolve.results:IterationRecord",
    "mfgsolve.learn.encoders:MomentEncoder",
    "mfgsolve.learn.encoders:HistogramEncoder",
    "mfgsolve.learn.encoders:DeepSetsEncoder",
    "mfgsolve.learn.encoders:AttentionEncoder",
    "mfgsolve.learn.networks:Actor",
    "mfgsolve.learn.networks:Critic",
    "mfgsolve.learn.actions:ActionMap",
    "mfgsolve.oracles.ddpg:DDPGPolicy",
    "mfgsolve.oracles.ddpg:MarkovDDPGPolicy",
    "mfgsolve.oracles.ddpg:NoPopPolicy",
    "mfgsolve.oracles.ddpg:FlowContext",
    "mfgsolve.oracles.mfrl:MFNetPolicy",
    "mfgsolve.oracles.mfrl:_MFNet",
    "mfgsolve.oracles.mfrl:_Inputs",
    "mfgsolve.oracles.sb3:SB3Policy",
)


def _torch_classes() -> list[type]:
    """torch's own layers and optimisers (their ``__setstate__`` only sets attributes)."""
    layers = [c for c in vars(torch.nn).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)]
    optims = [c for c in vars(torch.optim).values() if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)]
    return layers + optims


def _numpy_globals() -> list[Any]:
    """What a pickled ``np.ndarray`` names: the reconstructor, ``ndarray``, ``dtype`` and the dtype classes."""
    core = getattr(np, "_core", None) or np.core
    dtypes = [c for c in vars(np.dtypes).values() if isinstance(c, type)] if hasattr(np, "dtypes") else []
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def _defaultdict(factory: Any, items: dict[Any, Any]) -> collections.defaultdict:
    """A ``defaultdict`` rebuilt from plain data (the weights-only unpickler cannot fill one item by item)."""
    out: collections.defaultdict = collections.defaultdict(factory)
    out.update(items)
    return out


class _Pickler(pickle.Pickler):
    """``pickle.Pickler`` that writes a ``defaultdict`` (an optimiser's ``state``) as :func:`_defaultdict`."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is collections.defaultdict:
            return _defaultdict, (obj.default_factory, dict(obj))
        return NotImplemented


#: ``torch.save``'s ``pickle_module``: the standard one with the pickler above.
_PICKLE = types.SimpleNamespace(**{k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")},
                                __name__="pickle", __version__=getattr(pickle, "format_version", "4.0"))
_PICKLE.Pickler = _Pickler


def _allowed(extra: Iterable[type]) -> list[Any]:
    out: list[Any] = [_defaultdict, collections.OrderedDict, dict, *_torch_classes(), *_numpy_globals()]
    for entry in SAFE_CLASSES:
        module, name = entry.split(":")
        try:
            out.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):  # a class renamed or removed: a checkpoint holding it fails by name
            continue
    return out + list(extra)


def save_checkpoint(blob: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint of ``blob`` (write them with :func:`mfgsolve.results.atomic_write`)."""
    buf = io.BytesIO()
    torch.save(blob, buf, pickle_module=_PICKLE)
    return buf.getvalue()


def load_checkpoint(path: str | Path, *, extra: Iterable[type] = (), device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running code from it; ``extra``: the caller's own data classes.

    Its tensors are put on ``device`` (the run's: ``torch.load``'s ``map_location``), wherever they were saved from;
    generator states among them must be moved back to the CPU before ``set_state``.

    Raises
    ------
    RunDirError
        One line: the file is not a checkpoint, is damaged, or names a global outside the allow-list (and
        nothing of it was executed).
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_allowed(extra)):
            blob = torch.load(path, weights_only=True, map_location=torch.device(device))
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first if "GLOBAL" in line or "Unsupported" in line), "")
        raise RunDirError("run_dir", f"{path} is refused: it holds something other than data "
                                     f"({detail or 'not a checkpoint'}); nothing in it was run") from None
    except OSError as exc:
        raise RunDirError("run_dir", f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # truncated zip, random bytes, ...: torch raises many kinds
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError("run_dir", f"{path} is damaged ({type(exc).__name__}: {msg[:120]})") from None
    if not isinstance(blob, dict) or "state" not in blob:
        raise RunDirError("run_dir", f"{path} is not an mfgsolve checkpoint")
    return blob
