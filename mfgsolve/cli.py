"""The ``mfgsolve`` command line: ``solve``, ``reference``, ``br-check``, ``plot``, ``list``, ``sweep``.

Bad input (a bad spec, an unknown name, scheme or oracle, an option out of range, an ``--out`` that is a
file) prints one line on stderr naming what is wrong and exits with code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from mfgsolve.errors import NoEquilibriumError, ResponseFailedError, RunDirError, SpecError, UncertifiedReferenceError

__all__ = ["main", "check_solve", "CheckedSolve"]

from mfgsolve.presets import (BR_CHECK_UPDATES, EXACT, FINAL_RESPONSE_UPDATES, LEARNED, PATHWISE, RESPONSES,
                              default_threads)

#: The oracles of mfgsolve's own registry (``mfgsolve.oracles`` entry points), for the help text.
ORACLES = ("exact", "ddpg", "ddpg-nopop", "mf-q", "mf-ac", "pathwise", "sb3:SAC|TD3|DDPG|PPO")


DEVICE_HELP = (
    "where flows, networks, replay and rollouts live: cpu (default: a seed gives the same history on every CPU), "
    "cuda, cuda:N, or auto (cuda when torch sees one, else cpu). A CUDA run draws other random numbers than a CPU "
    "run of the same seed; the CUDA path is implemented but not yet measured on a GPU"
)

THREADS_HELP = (
    "torch CPU threads (default: 2 where two cores are free, else 1; one and two give the same history; "
    "several runs at once oversubscribe the cores, give each --threads 1)"
)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _integer(field: str, minimum: int, maximum: int = 2**63 - 1):
    kind = ("a positive integer" if minimum == 1 else f"an integer >= {minimum}") + f" up to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{field}: must be {kind}, got {text!r}")
        return value

    return parse


def _positive_int(field: str):
    return _integer(field, 1)


def _float_in(field: str, accept: Callable[[float], bool], what: str):
    """An argparse type: a float that ``accept`` admits, else one line naming ``field`` and saying ``what``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not accept(value):  # NaN is never admitted
            raise argparse.ArgumentTypeError(f"{field}: must be {what}, got {text!r}")
        return value

    return parse


def _positive_float(field: str):
    return _float_in(field, lambda v: 0 < v < float("inf"), "a positive number")


_alpha = _float_in("--alpha", lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
_recency = _float_in("--recency", lambda v: 1.0 <= v < float("inf"), "a finite number >= 1")


def _parse_sets(items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """``key=value`` pairs; values are TOML values (numbers, ``[[1, 0], [0, 1]]``, strings in quotes)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(flag, f"expected key=value, got {item!r}")
        if "\n" in value or "\r" in value:  # TOML would read a second line as another key, silently dropped
            raise SpecError(key, f"one value per {flag} (a line break in {value!r}; give each KEY=VALUE its own {flag})")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")
        except (tomllib.TOMLDecodeError, RecursionError):
            raise SpecError(key, f"cannot read value {value!r} (numbers, [lists] or \"strings\")") from None
        if set(parsed) != {"v"}:
            raise SpecError(key, f"cannot read value {value!r} (one number, [list] or \"string\")")
        out[key] = parsed["v"]
    return out


#: Oracle settings that have options of their own (budget, progress) or that the run sets (seed).
_OWN_OPTIONS = ("seed", "updates", "seconds", "progress")


def _br_settings(items: Sequence[str], oracle: str) -> dict[str, Any]:
    """``--br-set`` pairs checked against the learned oracle's settings (the budget has its own options)."""
    if not items:
        return {}
    from mfgsolve.oracles.registry import oracle_settings

    known = set(oracle_settings(oracle)) - set(_OWN_OPTIONS)
    if not known:
        raise SpecError("--br-set", f"{oracle} takes no settings")
    settings = _parse_sets(items, "--br-set")
    for key in settings:  # the values are checked by their type when the oracle is made (make_oracle)
        if key not in known:
            raise SpecError("--br-set", f"unknown setting {key!r} (known: {', '.join(sorted(known))})")
    return settings


def _oracle(args: argparse.Namespace, problem: Any, budget: dict[str, tuple[str, Any]]) -> Any:
    """The oracle named by ``--oracle`` (from the registry) with its budget (``{setting: (flag, value)}``), the
    ``--br-set`` settings and ``--quiet``; options of learned oracles given to an exact one are refused, each by
    its flag. The seed and a budget left out are the run's (:meth:`Oracle.for_run`)."""
    from mfgsolve.lq.problem import LQProblem
    from mfgsolve.oracles.registry import make_oracle, oracle_settings

    known = oracle_settings(args.oracle)  # refuses an unknown name
    if args.oracle == "exact" and not isinstance(problem, LQProblem):
        raise SpecError("--oracle", f"exact needs an LQ problem; {args.problem} is not one")
    items = getattr(args, "br_set", [])
    if not known:
        for flag, given in [*budget.values(), ("--br-set", items)]:
            if given:
                raise SpecError(flag, "applies only to learned oracles")
        return make_oracle(args.oracle)
    settings = _br_settings(items, args.oracle)
    settings.update({name: value for name, (_, value) in budget.items() if value is not None})
    if "progress" in known and args.quiet:
        settings["progress"] = False
    try:
        return make_oracle(args.oracle, **settings)
    except SpecError as exc:  # a --br-set value the oracle refuses, named
        raise SpecError("--br-set", str(exc)) from None


def _out_dir(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("DIR: an empty path (give a directory)")
    path = Path(text)
    try:
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"--out: {text} exists and is not a directory")
    except OSError as exc:  # a name too long, a symlink loop
        raise argparse.ArgumentTypeError(f"cannot use {_printable(text[:80])}: {exc.strerror or exc}") from None
    return path


def _parser() -> _Parser:
    from mfgsolve._version import __version__

    parser = _Parser(prog="mfgsolve", description="Mean field game equilibria by an explicit fixed-point search.",
                     epilog=f"exit codes: 0 done, 2 bad input or a run directory that cannot be used, "
                            f"{INTERRUPTED} interrupted (the run directory stays valid: --resume DIR)")
    parser.add_argument("--version", action="version", version=f"mfgsolve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = _Parser(add_help=False)
    common.add_argument("problem", metavar="PROBLEM", help="a registered name (see `mfgsolve list`) or a .toml spec")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a problem parameter (validated like a spec); repeatable")
    common.add_argument("--out", type=_out_dir, default=None, metavar="DIR", help="directory for the result files")
    # the options of the commands that compute (solve, br-check; a sweep passes them to each run)
    compute = _Parser(add_help=False)
    compute.add_argument("--device", default="cpu", metavar="DEVICE", help=DEVICE_HELP)

    s = sub.add_parser("solve", parents=[common, compute], help="search the equilibrium; writes a run directory")
    s.add_argument("--oracle", default="ddpg", help=f"best-response oracle: {', '.join(ORACLES)} or another "
                   "registered one (default ddpg)")
    s.add_argument("--scheme", default=None, help=f"picard | damped | fp (default {EXACT.default_scheme} exact, "
                   f"{LEARNED.default_scheme} learned, {PATHWISE.default_scheme} pathwise)")
    s.add_argument("--alpha", type=_alpha, default=None, help="damping weight in (0, 1] for --scheme damped "
                   f"(default {EXACT.alpha:g} exact, {LEARNED.alpha:g} learned, {PATHWISE.alpha:g} pathwise)")
    s.add_argument("--recency", type=_recency, default=None,
                   help="fictitious-play weights recency/(k+recency) for --scheme fp: 1 is classical FP, larger "
                        f"weighs recent best responses more (default {EXACT.recency:g} exact, "
                        f"{LEARNED.recency:g} learned, {PATHWISE.recency:g} pathwise: classical FP needs hundreds of iterations)")
    s.add_argument("--iterations", type=_positive_int("--iterations"), default=None,
                   help=f"outer iteration budget (default {EXACT.iterations} exact, {LEARNED.iterations} learned, "
                        f"{PATHWISE.iterations} pathwise)")
    s.add_argument("--tol", type=_positive_float("--tol"), default=None,
                   help=f"stop when the fixed-point gap is at most this (default {EXACT.tol:g} exact, "
                        f"{LEARNED.tol:g} learned: a learned oracle's noise floor lies above 1e-3)")
    s.add_argument("--seed", type=_integer("--seed", 0), default=0, help="seed of the run's generators (default 0)")
    s.add_argument("--flow", choices=("gaussian", "particles"), default=None,
                   help="flow representation (default: gaussian for LQ with the exact oracle, else particles)")
    s.add_argument("--particles", type=_positive_int("--particles"), default=None,
                   help="particles per flow (default: the problem's own, 131072 for LQ problems, else 4096)")
    s.add_argument("--metric", choices=("auto", "coupling", "moments", "exact", "sliced"), default="auto",
                   help="distance between successive particle flows (default auto: exact in 1-D, the coupling "
                   "bound of paired particles in several dimensions; moments: the Gelbrich lower bound; exact, "
                   "sliced: POT on subsamples or projections, with a sampling floor)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--resume", type=_out_dir, default=None, metavar="DIR",
                   help="continue the interrupted run in DIR (same arguments; instead of --out). Its checkpoint is "
                        "loaded as data only (nothing in it can run code)")
    s.add_argument("--force", action="store_true",
                   help="let --out replace what DIR holds (another run, other files); without it, --out takes only "
                        "an empty or new directory")
    s.add_argument("--threads", type=_integer("--threads", 1, 4096), default=None, help=THREADS_HELP)
    s.add_argument("--br-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the learned oracle (ddpg, ddpg-nopop: a DDPGConfig field, e.g. "
                   "actor_lr=1e-3, critic_lr=1e-3, reward_scale=0.1, grad_clip=1.0); repeatable")
    s.add_argument("--br-updates", type=_positive_int("--br-updates"), default=None,
                   help=f"gradient updates per learned best response (default {LEARNED.br_updates}, {PATHWISE.br_updates} pathwise; "
                        "an update budget keeps a seeded run reproducible)")
    s.add_argument("--final-response", choices=RESPONSES, default="auto",
                   help="a problem with no exact exploitability (not LQ, no grid DP) reports a lower bound by a best "
                        "response trained to the final flow: auto = pathwise where the callbacks pass gradients, "
                        "else ddpg; none = no bound (default auto)")
    s.add_argument("--final-response-updates", type=_positive_int("--final-response-updates"), default=None,
                   help=f"updates of that response (default {FINAL_RESPONSE_UPDATES['pathwise']} pathwise, "
                        f"{FINAL_RESPONSE_UPDATES['ddpg']} ddpg)")
    s.add_argument("--br-seconds", type=_positive_float("--br-seconds"), default=None,
                   help="wall seconds per learned best response (alone: instead of the update budget; with "
                        "--br-updates: whichever ends first; machine-dependent, so not bit-reproducible)")

    b = sub.add_parser("br-check", parents=[common, compute],
                       help="train an oracle against the exact equilibrium flow; writes DIR/br_check.json")
    b.add_argument("--oracle", default="ddpg", help=f"best-response oracle: {', '.join(ORACLES)} or another "
                   "registered one (default ddpg)")
    b.add_argument("--seconds", type=_positive_float("--seconds"), default=None, help="wall-clock budget of the best response")
    b.add_argument("--updates", type=_positive_int("--updates"), default=None,
                   help=f"update budget (default when --seconds is not given: {BR_CHECK_UPDATES}, "
                        f"{PATHWISE.br_check_updates} pathwise)")
    b.add_argument("--br-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the learned oracle, as for solve (e.g. lr=1e-2 for pathwise); repeatable")
    b.add_argument("--seed", type=_integer("--seed", 0), default=0, help="seed of the oracle and of the evaluation (default 0)")
    b.add_argument("--threads", type=_integer("--threads", 1, 4096), default=None, help=THREADS_HELP)
    b.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("reference", parents=[common], help="write the exact equilibrium to DIR/reference.json")
    p = sub.add_parser("plot", help="convergence and flow figures (PNG and PDF) of a run directory, written into "
                                    "it; of a sweep directory: each group's curves with seed bands")
    p.add_argument("run", type=Path, metavar="DIR", help="a run directory written by `mfgsolve solve`, or a sweep "
                   "directory written by `mfgsolve sweep`")
    _sweep_parser(sub)
    sub.add_parser("list", help="list the registered problems")
    return parser


#: The command line's option for each argument of the Python API that refuses a value.
_FLAGS = {"oracle": "--oracle", "scheme": "--scheme", "alpha": "--alpha", "recency": "--recency",
          "iterations": "--iterations", "tol": "--tol", "particles": "--particles", "metric": "--metric",
          "flow": "--flow", "seed": "--seed", "device": "--device"}

#: Exit code of a run stopped by Ctrl-C (SIGINT), the shell's 128 + 2.
INTERRUPTED = 130
#: Exit code of a run stopped by a failed best response (its directory holds the history so far and a summary).
RESPONSE_FAILED = 3


def _printable(text: str) -> str:
    """``text`` with control characters (terminal escapes from a spec's name, say) shown escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _fail(message: str) -> int:
    print(f"mfgsolve: error: {_printable(message)}", file=sys.stderr)
    return 2


def _run_dir(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The option naming the run directory of this command and its value (``("--out", None)`` when none)."""
    if getattr(args, "resume", None) is not None:
        return "--resume", args.resume
    return "--out", getattr(args, "out", None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mfgsolve`` console script; returns the exit code (see ``mfgsolve --help``)."""
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    option, directory = _run_dir(args)
    try:
        return _main(args, option, directory)
    finally:  # a run that failed (any exception) leaves no lock file behind
        from mfgsolve.rundir import release_all

        release_all()


def _main(args: argparse.Namespace, option: str, directory: Path | None) -> int:
    try:
        return _run(args)
    except RunDirError as exc:
        return _fail(f"{option}: {exc.message}")
    except SpecError as exc:  # a field of the Python API is named by the option that set it
        return _fail(f"{_FLAGS.get(exc.field, exc.field)}: {exc.message}")
    except (NoEquilibriumError, UncertifiedReferenceError) as exc:
        return _fail(f"{args.problem}: {exc}")
    except ResponseFailedError as exc:  # the run directory holds the history so far and a summary saying why
        from mfgsolve.rundir import release_all

        release_all()
        print(f"mfgsolve: error: {_printable(str(exc))}", file=sys.stderr)
        return RESPONSE_FAILED
    except KeyboardInterrupt:
        from mfgsolve.rundir import release_all

        release_all()
        if args.command == "solve" and directory is not None and (directory / "config.json").is_file():
            print(f"mfgsolve: interrupted; the files in {directory} are valid up to the last finished iteration: "
                  f"continue with the same arguments and --resume {directory}", file=sys.stderr)
        else:
            print("mfgsolve: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # stdout closed by its reader (`| head`): not a failure to write the results
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes it
        where = f"; the results are in {directory}" if directory is not None else ""
        print(f"mfgsolve: standard output was closed (broken pipe){where}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a directory made read-only during the run
        where = exc.filename or directory
        hint = ""
        if args.command == "solve" and directory is not None and (directory / "checkpoint.pt").is_file():
            hint = f"; the last checkpoint is intact: free the cause and --resume {directory}"
        return _fail(f"cannot write {where}: {exc.strerror or exc}{hint}")


def _run(args: argparse.Namespace) -> int:
    from mfgsolve.registry import available_problems, load_problem

    if args.command == "list":
        for name, ep in sorted(available_problems().items()):
            print(f"{name}\t{ep.value}")
        return 0
    if args.command == "plot":
        return _plot(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "solve" and (args.out is None) == (args.resume is None):
        raise SpecError("--out", "give exactly one of --out DIR (a new run) and --resume DIR (continue one)")
    if args.command in ("reference", "br-check") and args.out is None:
        written = "reference.json" if args.command == "reference" else "br_check.json"
        raise SpecError("--out", f"required (the directory for {written})")
    if getattr(args, "device", None) is not None:  # refused before the problem is built or anything is written
        from mfgsolve.devices import resolve_device

        resolve_device(args.device)
    args.overrides = _parse_sets(args.set)
    problem = load_problem(args.problem, args.overrides)
    if args.command in ("reference", "br-check"):  # refused before any work, not after the training
        from mfgsolve.rundir import check_writable

        check_writable(args.out, "--out", keep=False)
    if args.command == "reference":
        return _reference(problem, args)
    if args.command == "br-check":
        return _br_check(problem, args)
    return _solve(problem, args)


def _reference(problem: Any, args: argparse.Namespace) -> int:
    from mfgsolve.results import save_npz, write_json

    ref = problem.reference() if hasattr(problem, "reference") else None  # refuses an uncertified one
    if ref is None:
        raise SpecError("PROBLEM", f"{args.problem} has no exact reference (it is solved only by a learned oracle)")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "reference.json", ref.to_json())
    print(f"reference written to {args.out / 'reference.json'}")
    arrays = getattr(ref, "arrays", None)
    if callable(arrays):  # references with large arrays (densities...) add a reference.npz beside the JSON
        save_npz(args.out / "reference.npz", arrays())
        print(f"arrays written to {args.out / 'reference.npz'}")
    return 0


def _solve_setup(problem: Any, args: argparse.Namespace) -> tuple[Any, Any, Any, Any, Any]:
    """The oracle, scheme, stop, flow and evaluation of ``mfgsolve solve``'s arguments, every one checked (cheap:
    nothing is trained or solved): the one place :func:`_solve` and :func:`check_solve` make them."""
    from mfgsolve.lq.problem import LQProblem
    from mfgsolve.options import Evaluation, Gaussian, Particles, Stop
    from mfgsolve.presets import preset_for

    oracle = _oracle(args, problem, {"updates": ("--br-updates", args.br_updates),
                                     "seconds": ("--br-seconds", args.br_seconds)})
    if args.flow == "gaussian" and not isinstance(problem, LQProblem):
        raise SpecError("--flow", "gaussian flows need an LQ problem")
    scheme = preset_for(oracle).scheme(args.scheme, alpha=args.alpha, recency=args.recency)
    if args.flow == "gaussian":
        if args.particles is not None:
            raise SpecError("--particles", "applies to particle flows, not --flow gaussian")
        if args.metric not in ("auto", "moments"):
            raise SpecError("--metric", f"{args.metric!r} applies to particle flows; Gaussian flows use the closed form")
        flow: Any = Gaussian()
    elif args.flow == "particles" or args.particles is not None or args.metric != "auto":
        flow = Particles(args.particles, args.metric)
    else:
        flow = None  # the default of solve(): Gaussian for LQ with the exact oracle, else particles
    evaluation = Evaluation(response=args.final_response, response_updates=args.final_response_updates)
    return oracle, scheme, Stop(args.iterations, args.tol), flow, evaluation


def _solve(problem: Any, args: argparse.Namespace) -> int:
    import torch

    from mfgsolve.options import RunDir
    from mfgsolve.solve import solve

    oracle, scheme, stop, flow, evaluation = _solve_setup(problem, args)
    torch.set_num_threads(args.threads or default_threads())
    run_dir = args.resume if args.resume is not None else args.out
    result = solve(problem, oracle, scheme=scheme, stop=stop, flow=flow, seed=args.seed,
                   run_dir=RunDir(run_dir, resume=args.resume is not None, overwrite=args.force),
                   progress=False if args.quiet else None, device=args.device, evaluation=evaluation)
    s = result.summary
    fmt = lambda v: "n/a" if v is None else f"{v:.4g}"  # noqa: E731
    print(
        f"{_printable(s.problem)}: {s.diagnosis} after {s.iterations} iterations (converged={s.converged}); "
        f"gap {fmt(result.history[-1].gap)}, residual {fmt(s.residuals[-1])}, rate {fmt(s.contraction_rate)}, mean_error {fmt(s.mean_error)}, "
        f"relative_exploitability {fmt(s.relative_exploitability)}"
    )
    if s.exploitability_bound is not None:
        b = s.exploitability_bound
        print(f"the exploitability is a lower bound: the gap to a {b['oracle']} best response of {b['updates']} "
              f"updates (seed {b['seed']}) to the final flow")
    if s.advice:
        print(f"advice: {s.advice}")
    print(f"run written to {run_dir}")
    return 0


def _br_check(problem: Any, args: argparse.Namespace) -> int:
    import torch

    from mfgsolve.brcheck import br_check
    from mfgsolve.results import write_json

    from mfgsolve.lq.problem import LQProblem

    if not isinstance(problem, LQProblem):  # refused before its (possibly long) reference is computed
        raise SpecError("PROBLEM", f"{args.problem} is not an LQ problem: br-check measures a best response against "
                                   "the exact affine equilibrium policy of an LQ problem")
    oracle = _oracle(args, problem, {"updates": ("--updates", args.updates), "seconds": ("--seconds", args.seconds)})
    if getattr(problem, "reference", lambda: None)() is None:
        raise SpecError("PROBLEM", f"{args.problem} has no exact equilibrium to check a best response against")
    torch.set_num_threads(args.threads or default_threads())
    result = br_check(problem, oracle, seed=args.seed, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "br_check.json", result.to_json())
    print(
        f"{result.problem} / {result.oracle}: relative_gap {result.relative_gap:.4%} "
        f"(gap {result.gap:.4g} +- {result.gap_se:.2g}, J_policy {result.J_policy:.6g}, J_best {result.J_best:.6g}) "
        f"in {result.seconds:.1f} s"
    )
    print(f"written to {args.out / 'br_check.json'}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from mfgsolve.plotting import plot_run

    import zipfile

    from mfgsolve.results import load_run

    if (args.run / "sweep.toml").is_file():  # a sweep directory: its groups with seed bands
        from mfgsolve.sweeps.plot import plot_sweep

        for path in plot_sweep(args.run):
            print(f"wrote {path}")
        return 0
    need = ("config.json", "history.csv", "summary.json", "flow.npz")
    missing = [name for name in need if not (args.run / name).is_file()]
    if missing:
        raise SpecError("DIR", f"{args.run} is not a finished run directory (no {', '.join(missing)})")
    try:
        run = load_run(args.run)
    except RunDirError as exc:  # a missing or damaged file, named
        raise SpecError("DIR", exc.message) from None
    except (ValueError, KeyError, EOFError, OSError, zipfile.BadZipFile) as exc:  # a damaged file: not JSON, not a CSV of numbers, not npz
        raise SpecError("DIR", f"{args.run} is damaged ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})") from None
    if not run.history or "residual" not in run.history[0] or "mean" not in run.flow:
        raise SpecError("DIR", f"{args.run}: history.csv has no iterations to plot, or flow.npz no mean flow")
    if not isinstance(run.summary, dict) or not isinstance(run.config, dict) or not all(
            key in run.summary for key in ("problem", "oracle", "scheme", "diagnosis")):
        raise SpecError("DIR", f"{args.run} is damaged (config.json / summary.json are not JSON objects)")
    if not all(isinstance(run.summary[key], str) for key in ("problem", "oracle", "scheme", "diagnosis")):
        raise SpecError("DIR", f"{args.run} is damaged (summary.json: problem, oracle, scheme, diagnosis are not text)")
    problem = _flow_problem(run.flow)
    if problem:
        raise SpecError("DIR", f"{args.run} is damaged (flow.npz: {problem})")
    for path in plot_run(args.run):
        print(f"wrote {path}")
    return 0


def _flow_problem(flow: Any) -> str | None:
    """What is wrong with the arrays of a run's ``flow.npz`` for plotting (``None``: nothing)."""
    import numpy as np

    mean = flow["mean"]
    if not isinstance(mean, np.ndarray) or mean.dtype.kind not in "fiu" or mean.ndim != 2 or 0 in mean.shape:
        return f"mean is not a (T+1, n) array of numbers (shape {getattr(mean, 'shape', None)})"
    T1, n = mean.shape
    shapes = {"cov": (T1, n, n), "particles": (T1, None, n), "weights": (T1, None)}
    for key, shape in shapes.items():
        if key not in flow:
            continue
        a = flow[key]
        if (not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu" or a.ndim != len(shape)
                or any(want is not None and got != want for got, want in zip(a.shape, shape)) or 0 in a.shape):
            return f"{key} has shape {getattr(a, 'shape', None)}, not {tuple('N' if w is None else w for w in shape)}"
    if "particles" in flow and ("weights" not in flow or flow["weights"].shape != flow["particles"].shape[:2]):
        return "particles without weights of the same size"
    return None


# ------------------------------------------------------------------------------------------------------ sweep
def _sweep_parser(sub: Any) -> None:
    w = sub.add_parser("sweep", help="a grid of `solve` runs executed on Ray; writes DIR/runs/<id>/, runs.csv, "
                                     "table.csv, table.md")
    w.add_argument("sweep_file", type=Path, metavar="SWEEP.toml",
                   help="[fixed] settings, a [grid] of lists (their product) and [[runs]] tables; keys are "
                        "`mfgsolve solve` options with underscores (set, br_set: tables)")
    w.add_argument("--out", type=_out_dir, required=True, metavar="DIR",
                   help="the sweep directory; the same command again skips finished runs and resumes the others")
    w.add_argument("--workers", type=_integer("--workers", 1, 4096), default=None,
                   help="runs at once on the local Ray this command starts (default: the CPU cores / --threads)")
    w.add_argument("--threads", type=_integer("--threads", 1, 4096), default=1,
                   help="torch threads (and Ray CPUs) of each run (default 1)")
    w.add_argument("--address", default=None, metavar="ADDRESS",
                   help="join a running Ray cluster (`ray start --head`; 'auto' or host:port) instead of starting one")
    w.add_argument("--gpus-per-run", type=_fraction_of_gpus, default=0.0, metavar="FRACTION",
                   help="the share of a GPU each run holds on Ray (e.g. 0.25: four runs per GPU; default 0). Give "
                        "the runs device = \"cuda\" in the sweep file")
    w.add_argument("--quiet", action="store_true", help="no progress bar")


def _fraction_of_gpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 <= value <= 64) or (value > 1 and value != int(value)):
        raise argparse.ArgumentTypeError(f"--gpus-per-run: a fraction in [0, 1] or a whole number of GPUs, got {text!r}")
    return value


def _sweep(args: argparse.Namespace) -> int:
    from mfgsolve.sweeps import load_sweep, run_sweep

    if args.address is not None and args.workers is not None:
        raise SpecError("--workers", "applies to the local Ray this command starts; a cluster (--address) runs as "
                                     "many runs at once as it has CPUs")
    sweep = load_sweep(args.sweep_file)  # every cell checked before anything starts
    return run_sweep(sweep, args.out, workers=args.workers, threads=args.threads, address=args.address,
                     gpus=args.gpus_per_run, progress=not args.quiet)


@dataclass(frozen=True)
class CheckedSolve:
    """The arguments of one ``mfgsolve solve`` that :func:`check_solve` accepted, with what they resolve to."""

    args: argparse.Namespace
    problem: str
    """The problem's name (a spec file: its stem)."""
    oracle: str
    scheme: str
    """The scheme's name, the oracle's preset default when none is given."""


def check_solve(argv: Sequence[str]) -> CheckedSolve:
    """Check the arguments of ``mfgsolve solve`` (without ``--out``) as the command does before its run starts.

    It parses ``argv`` with the command's parser and makes the problem, oracle and scheme (cheap: nothing is
    trained or solved) as :func:`_solve` does, so that a sweep refuses a bad cell before any run starts.

    Raises
    ------
    SpecError
        One line naming the option and what is wrong with its value.
    """
    from mfgsolve.devices import parse_device
    from mfgsolve.registry import load_problem

    try:
        args = _parser().parse_args(["solve", *argv, "--out", "unused"])
    except _UsageError as exc:  # "argument --alpha: --alpha: must be ..." -> --alpha, "must be ..."
        option, sep, message = str(exc).removeprefix("argument ").partition(": ")
        if not sep or " " in option:
            option, message = "argument", str(exc)
        raise SpecError(option, message.removeprefix(f"{option}: ")) from None
    try:
        problem = load_problem(args.problem, _parse_sets(args.set))
        _, scheme, *_ = _solve_setup(problem, args)
    except SpecError as exc:
        raise SpecError(_FLAGS.get(exc.field, exc.field), exc.message) from None
    try:  # by name only: the run resolves it where it runs (a cluster's node may have the GPU this one lacks)
        parse_device(args.device)
    except SpecError as exc:
        raise SpecError("--device", exc.message) from None
    name = Path(args.problem).stem if args.problem.endswith(".toml") else args.problem
    return CheckedSolve(args=args, problem=name, oracle=args.oracle, scheme=scheme.name)


def console() -> NoReturn:
    """The ``mfgsolve`` console script (and ``python -m mfgsolve.cli``): :func:`main`'s code as the exit status.

    An interrupted run ends with 130 however the interpreter saw the Ctrl-C: CPython turns its exit status into a
    SIGINT death when a KeyboardInterrupt once passed through code a C extension evaluated (measured: 1 run in 6 of
    ``python -m mfgsolve.cli`` interrupted 1 s into its first best response exited -2 although :func:`main` had
    handled it and returned 130). The run's files and lock are settled by then, so the process ends at once.
    """
    import os

    code = main()
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
