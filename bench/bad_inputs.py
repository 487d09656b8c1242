"""A sweep of bad inputs, faults and misuse of the CLI and the Python API, classified automatically.

These are cases *beyond* the audit of ``evidence/bad-inputs-2026-11-29/cases.md`` (issue 18). Every case runs in
its own process, in its own scratch directory, under a timeout, and ends as one of

* ``OK``    exit 2 with exactly one stderr line naming a field or option (``mfgsolve: error: FIELD: ...``), or a
  documented code: 0 for valid input (no warnings), 3 a failed best response, 130 interrupted;
* ``TB``    a Python traceback;
* ``HANG``  the timeout (or resident memory above the limit);
* ``CHECK`` anything else (exit 1, several stderr lines, warnings, an input accepted that should be refused).

To keep two loaded cores usable, the runner imports mfgsolve (and torch) once and forks a fresh child per case:
the child is a separate process (its own pid, files, limits; killed on a timeout) but skips the 10 s import.
``--isolated`` runs each case as a real ``python -c`` subprocess instead.

API cases run a snippet; an exception of mfgsolve's own (``SpecError``, ``RunDirError``) ends as exit 2 with its
one line, ``NoEquilibriumError`` / ``UncertifiedReferenceError`` as exit 2, ``ResponseFailedError`` as exit 3,
anything else as a traceback (exit 1).

Usage (from the repository root)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bad_inputs.py [--timeout 40] [--only REGEX] [--out bench/bad_inputs.md]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
LEARN = ["--br-updates", "20", "--iterations", "1", "--particles", "256", "--quiet"]
EXACT = ["--oracle", "exact", "--quiet"]
RSS_LIMIT_GB = 4.0


@dataclass
class Case:
    area: str
    text: str                       # shown in the table
    argv: list[str] | None = None   # a CLI case
    code: str | None = None         # an API case (a snippet run with ``import mfgsolve as mfg``)
    setup: str = ""                 # a snippet run first in the scratch directory (Python)
    expect: str = "any"             # "error": exit 0 is a CHECK (an input that should have been refused)
    cleanup: str = ""


CASES: list[Case] = []


def cli(area: str, argv: list[str], *, setup: str = "", expect: str = "any", text: str | None = None,
        cleanup: str = "") -> None:
    CASES.append(Case(area, text or " ".join(_quote(a) for a in argv), argv=argv, setup=setup, expect=expect,
                      cleanup=cleanup))


def api(area: str, code: str, *, setup: str = "", expect: str = "any", text: str | None = None) -> None:
    code = textwrap.dedent(code).strip()
    CASES.append(Case(area, text or code.replace("\n", "; "), code=code, setup=textwrap.dedent(setup).strip(),
                      expect=expect))


def _quote(a: str) -> str:
    if a and re.fullmatch(r"[\w./=:,+-]+", a):
        return a
    return repr(a)


# ------------------------------------------------------------------------------------------------ setups
# Run in the case's scratch directory before the case; ``run(argv)`` runs the CLI quietly (a good run to damage).
GOOD_RUN = "run(['solve', 'lq-1d', '--oracle', 'exact', '--iterations', '3', '--quiet', '--out', 'r'])"


def _holder(path: str) -> str:
    """A setup that forks a live process holding the run directory's lock."""
    return (f"import fcntl, json\nos.makedirs({path!r}, exist_ok=True)\npid = os.fork()\n"
            f"if pid == 0:\n    fd = os.open({path!r} + '/.mfgsolve.lock', os.O_RDWR | os.O_CREAT)\n"
            f"    fcntl.flock(fd, fcntl.LOCK_EX)\n    os.write(fd, json.dumps({{'pid': os.getpid(), 'host': 'h'}}).encode())\n"
            f"    time.sleep(60)\n    os._exit(0)\nHOLDERS.append(pid)\ntime.sleep(0.3)")


def build_cases() -> None:
    S = ["solve"]
    # ------------------------------------------------------------------ top level / argparse
    cli("cli", [], expect="error")
    cli("cli", ["bogus"], expect="error")
    cli("cli", ["--version"])
    cli("cli", ["solve"], expect="error")
    cli("cli", ["solve", "--help"])
    cli("cli", ["list", "extra"], expect="error")
    cli("cli", ["list"])
    cli("cli", ["plot"], expect="error")
    cli("cli", ["reference"], expect="error")
    cli("cli", ["br-check"], expect="error")
    cli("cli", ["solve", "lq-1d", "--out", "a", "--out", "b", *EXACT, "--iterations", "2"])
    cli("cli", ["solve", "lq-1d", "--out", "r", "--oracle"], expect="error")
    cli("cli", ["solve", "lq-1d", "--out=", *EXACT], expect="error")
    cli("cli", ["solve", "", "--out", "r", *EXACT], expect="error")
    cli("cli", ["solve", "lq-1d", "--ou", "r", *EXACT, "--iterations", "2"], text="abbreviated --ou r")
    cli("cli", ["solve", "lq-1d", "--out", "r", "--oracle", "EXACT"], expect="error")
    cli("cli", ["solve", "lq\x1b[31m-1d", "--out", "r", *EXACT], expect="error", text="problem name with an ANSI escape")
    cli("cli", ["solve", "lq-1d", "--out", "r", "--oracle", "exact", "--unknown-flag"], expect="error")
    # ------------------------------------------------------------------ solve options
    opt = lambda *a, expect="error": cli("solve options", [*S, "lq-1d", "--out", "r", *EXACT, *a], expect=expect)  # noqa: E731
    opt("--iterations", "0")
    opt("--iterations", "-3")
    opt("--iterations", "1.5")
    opt("--iterations", "1e3")
    opt("--iterations", "99999999999999999999999")
    opt("--iterations", " 2", expect="any")
    opt("--tol", "0")
    opt("--tol", "-1e-3")
    opt("--tol", "nan")
    opt("--tol", "inf")
    opt("--tol", "1e-400")
    opt("--tol", "abc")
    opt("--seed", "-1")
    opt("--seed", "2.0")
    opt("--seed", "18446744073709551616")
    opt("--seed", "9223372036854775807", "--iterations", "2", expect="any")
    opt("--alpha", "0")
    opt("--alpha", "1.5")
    opt("--alpha", "nan")
    opt("--alpha", "0.5")  # without --scheme damped
    opt("--scheme", "fp", "--alpha", "0.5")
    opt("--scheme", "picard", "--recency", "3")
    opt("--scheme", "damped", "--recency", "3")
    opt("--recency", "0.5")
    opt("--recency", "inf")
    opt("--scheme", "newton")
    opt("--scheme", "")
    opt("--scheme", "DAMPED", "--iterations", "2", expect="any")
    opt("--flow", "delta")
    opt("--flow", "gaussian", "--particles", "100")
    opt("--flow", "gaussian", "--metric", "exact")
    opt("--flow", "gaussian", "--metric", "moments", "--iterations", "2", expect="any")
    opt("--particles", "1")
    opt("--particles", "0")
    opt("--particles", "1e6")
    opt("--particles", "100000000000", "--iterations", "1")
    opt("--metric", "w1")
    opt("--metric", "sliced", "--particles", "64", "--iterations", "2", expect="any")
    opt("--threads", "0")
    opt("--threads", "5000")
    opt("--threads", "two")
    opt("--br-updates", "10")
    opt("--br-seconds", "1")
    opt("--br-set", "batch_size=64")
    opt("--quiet", "--quiet", "--iterations", "2", expect="any")
    cli("solve options", [*S, "lq-1d", "--out", "r", "--resume", "r", *EXACT], expect="error")
    cli("solve options", [*S, "lq-1d", *EXACT], expect="error")
    cli("solve options", [*S, "lq-1d", "--resume", "r", "--force", *EXACT], expect="error")
    cli("solve options", [*S, "lq-1d", "--out", "r", "--oracle", "mf-q", *LEARN, "--flow", "gaussian"],
        expect="error")
    cli("solve options", [*S, "crowd-navigation", "--out", "r", *EXACT], expect="error")
    cli("solve options", [*S, "crowd-navigation", "--out", "r", "--flow", "gaussian", *LEARN], expect="error")
    cli("solve options", [*S, "lq-1d", "--out", "r", "--oracle", "ddpg", *LEARN, "--br-seconds", "0"],
        expect="error")
    cli("solve options", [*S, "lq-1d", "--out", "r", "--oracle", "ddpg", *LEARN, "--br-seconds", "nan"],
        expect="error")
    cli("solve options", [*S, "lq-1d", "--out", "r", "--oracle", "ddpg", *LEARN, "--br-updates", "0"],
        expect="error")
    cli("solve options", [*S, "lq-1d", "--out", "r", "--oracle", "ddpg", *LEARN, "--scheme", "damped",
                          "--alpha", "1"])
    # ------------------------------------------------------------------ --br-set (learned oracles' settings)
    for oracle, item in [("ddpg", "batch_size=2.5"), ("ddpg", "hidden=64.0"), ("ddpg", "batch_size=1e20"),
                         ("ddpg", "batch_size=100000000000000"), ("ddpg", "batch_size=0"), ("ddpg", "batch_size=-4"),
                         ("ddpg", 'batch_size="64"'), ("ddpg", "batch_size=true"), ("ddpg", "actor_lr=nan"),
                         ("ddpg", "actor_lr=-1"), ("ddpg", "actor_lr=inf"), ("ddpg", "critic_lr=[1, 2]"),
                         ("ddpg", "reward_scale=0"), ("ddpg", "grad_clip=-1"), ("ddpg", "hidden=0"),
                         ("ddpg", "hidden=1e9"), ("ddpg", "hidden=[64, 64]"), ("ddpg", "seed=3"),
                         ("ddpg", "updates=5"), ("ddpg", "nonsense=1"), ("ddpg", "batch_size"),
                         ("ddpg", "batch_size=64\nhidden=32"), ("ddpg-nopop", "batch_size=1.5"),
                         ("mf-q", "batch_size=2.5"), ("mf-ac", "batch_size=0"), ("mf-q", "nonsense=1")]:
        cli("--br-set", [*S, "lq-1d", "--out", "r", "--oracle", oracle, *LEARN, "--br-set", item], expect="error")
    cli("--br-set", [*S, "lq-1d", "--out", "r", *EXACT, "--br-set", "batch_size=8"], expect="error")
    # ------------------------------------------------------------------ --set on every registered problem
    SETS = {
        "lq-1d": ["T=1e9", "T=100000000", "T=-1", "A=1e200", "A=-1e308", "B=0", "R=0", "R=-1", "R=1e-300",
                  "Sigma0=0", "Sigma_w=1e300", "mu0=1e300", "A=[[1,2],[3,4]]", "A=[]", "A=[[]]", "H=[1, 2]",
                  'T="20"', "QT=-1e9", "T=5\nA=100", "Qbar=1e308", "N=inf", "c=[[1]]", "u=1", "U=[[1]]",
                  "A=[[1.0]]", "B=[[0.1, 0.2]]"],
        "systemic-risk": ["a=1e300", "q=-1e200", "dt=1e-300", "horizon=1e-9", "x0_var=1e300", "sigma=nan",
                          "dt=[0.05]", "eps=1e308"],
        "price-impact": ["c_alpha=0", "c_alpha=-1", "gamma=inf", "horizon=0", "dt=2", "x0_var=-0.1", "sigma=1e300",
                         "c_X=1e200", "horizon=1e7", 'gamma="x"'],
        "flocking": ["r=0", "v0_mean=[1]", "v0_mean=[1, 2, 3]", "v0_mean=[nan, 0]", "v0_var=-1", "dt=0",
                     "horizon=100000", "sigma=1e300", 'v0_mean="up"', "r=1e-300"],
        "crowd-aversion": ["points=1", "points=2.5", "points=400", "points=100000", "T=0", "T=100000", "dt=0",
                           "low=2", "high=-3", "sigma=0", "width=0", "x0_std=0", "x0_mean=1e9", "kappa=-1",
                           "points=[41]", "dt=1e300"],
        "crowd-navigation": ["goal=[3]", "goal=[inf, 0]", "x0_std=-1", "v_max=0", "T=0", "bandwidth=0",
                             "T=1000000000", "dt=nan"],
        "traffic-flow": ["rho_jam=0", "a_max=-1", "bandwidth=0", "T=2.5", "v0_std=nan", "length=0", "T=1000000000",
                         "v_free=1e308"],
    }
    for name, items in SETS.items():
        lq = name in ("lq-1d", "systemic-risk", "price-impact", "flocking")
        oracle = EXACT if lq else ["--oracle", "ddpg", *LEARN]
        for item in items:
            cli(f"--set {name}", [*S, name, "--out", "r", *oracle, "--iterations", "2", "--set", item])
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", "--oracle", "ddpg", *LEARN, "--set", "Sigma0=0"])
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", "--oracle", "ddpg", *LEARN, "--set", "Sigma0=0",
                        "--set", "Sigma_w=0"])
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", *EXACT, "--set", "=1"], expect="error")
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", *EXACT, "--set", "T=5", "--set", "T=6", "--iterations", "2"])
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", *EXACT, "--set", "T=5 # comment", "--iterations", "2"])
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", *EXACT, "--set", "T=[5]"], expect="error")
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", *EXACT, "--set", "T={a=1}"], expect="error")
    cli("--set lq-1d", [*S, "lq-1d", "--out", "r", *EXACT, "--set", "family=\"other\""], expect="error")
    # ------------------------------------------------------------------ spec files with odd content
    specs = {
        "empty.toml": "",
        "nofamily.toml": "T = 5\nA = 1.0\n",
        "noT.toml": 'family = "lq"\nA = 1.0\nB = 1.0\nR = 1.0\n',
        "famnum.toml": "family = 3\nT = 5\n",
        "table.toml": 'family = "lq"\nT = 5\n[A]\nx = 1\n',
        "dates.toml": 'family = "lq"\nT = 5\nA = 1979-05-27\n',
        "bool.toml": 'family = "lq"\nT = 5\nA = true\n',
        "strmat.toml": 'family = "lq"\nT = 5\nA = [["1"]]\n',
        "3d.toml": 'family = "lq"\nT = 5\nA = [[[1.0]]]\n',
        "nonsym.toml": 'family = "lq"\nT = 3\nB = 1.0\nR = 1.0\nSigma_w = [[1.0, 0.5], [0.0, 1.0]]\nA = [[1,0],[0,1]]\nB2 = 1\n',
        "bigT.toml": 'family = "lq"\nT = 100000000\nB = 1.0\nR = 1.0\n',
        "neg_R.toml": 'family = "lq"\nT = 5\nB = 1.0\nR = -1.0\n',
        "bom.toml": '\ufefffamily = "lq"\nT = 5\nB = 1.0\nR = 1.0\n',
        "crlf.toml": 'family = "lq"\r\nT = 3\r\nB = 1.0\r\nR = 1.0\r\n',
        "n50.toml": 'family = "lq"\nT = 3\nB = 1.0\nR = 1.0\nA = [' + ",".join(
            "[" + ",".join("1.0" if i == j else "0.0" for j in range(50)) + "]" for i in range(50)) + "]\n",
        "unknownkey.toml": 'family = "lq"\nT = 3\nB = 1.0\nR = 1.0\nfoo = 1\n',
        "name_ctrl.toml": 'family = "lq"\nname = "a\\u001b[2Jb"\nT = 3\nB = 1.0\nR = 1.0\n',
        "dup.toml": 'family = "lq"\nT = 3\nT = 4\n',
    }
    for fname in specs:
        cli("spec file", [*S, fname, "--out", "r", *EXACT, "--iterations", "2"],
            setup=f"Path({fname!r}).write_text({specs[fname]!r}, encoding='utf-8')")
    cli("spec file", [*S, "latin1.toml", "--out", "r", *EXACT], expect="error",
        setup="Path('latin1.toml').write_bytes(b'family = \"lq\"\\nname = \"caf\\xe9\"\\nT = 3\\n')")
    cli("spec file", [*S, "dir.toml", "--out", "r", *EXACT], expect="error", setup="os.mkdir('dir.toml')")
    cli("spec file", [*S, "link.toml", "--out", "r", *EXACT], expect="error",
        setup="os.symlink('missing.toml', 'link.toml')")
    cli("spec file", [*S, "/dev/null", "--out", "r", *EXACT], expect="error")
    cli("spec file", [*S, "spec.TOML", "--out", "r", *EXACT, "--iterations", "2"],
        setup="Path('spec.TOML').write_text('family = \"lq\"\\nT = 3\\nB = 1.0\\nR = 1.0\\n')")
    cli("spec file", [*S, "x.toml", "--out", "r", *EXACT, "--set", "T=0"], expect="error",
        setup="Path('x.toml').write_text('family = \"lq\"\\nT = 3\\nB = 1.0\\nR = 1.0\\n')")
    cli("spec file", [*S, "x.toml", "--out", "r", *EXACT, "--set", "family=\"lq2\""], expect="error",
        setup="Path('x.toml').write_text('family = \"lq\"\\nT = 3\\nB = 1.0\\nR = 1.0\\n')")
    # ------------------------------------------------------------------ run directories in odd states
    rd = lambda a, argv, setup="", expect="any", text=None: cli("run dir", argv, setup=setup, expect=expect, text=text)  # noqa: E731
    base = [*S, "lq-1d", *EXACT, "--iterations", "3"]
    rd("out under /proc", [*base, "--out", "/proc/mfg-x"], expect="error")
    rd("out under /sys", [*base, "--out", "/sys/mfg-x/y"], expect="error")
    rd("out below a file", [*base, "--out", "f/r"], setup="Path('f').write_text('x')", expect="error")
    rd("out is a dangling symlink", [*base, "--out", "r"], setup="os.symlink('nowhere/x', 'r')")
    rd("out is a symlink to a dir", [*base, "--out", "r"], setup="os.mkdir('d'); os.symlink('d', 'r')")
    rd("out is a symlink loop", [*base, "--out", "r"], setup="os.symlink('r', 'r')", expect="error")
    rd("out holds a fifo", [*base, "--out", "r"], setup="os.mkdir('r'); os.mkfifo('r/p')", expect="error")
    rd("out = '.' (non-empty scratch)", [*base, "--out", "."], setup="Path('x').write_text('1')", expect="error")
    rd("out = '.' --force", [*base, "--out", ".", "--force"], setup="Path('x').write_text('1')")
    rd("out with a newline in its name", [*base, "--out", "a\nb"])
    rd("out a 300-char name", [*base, "--out", "x" * 300], expect="error")
    rd("--force over a good run", [*base, "--out", "r", "--force"], setup=GOOD_RUN)
    rd("no --force over a good run", [*base, "--out", "r"], setup=GOOD_RUN, expect="error")
    rd("--force over a dir with a subdir", [*base, "--out", "r", "--force"], setup="os.makedirs('r/sub/x')")
    rd("--force over a locked dir", [*base, "--out", "r", "--force"], setup=_holder("r"), expect="error")
    rd("out locked by a live process", [*base, "--out", "r"], setup=_holder("r"), expect="error")
    rd("resume locked by a live process", [*base, "--resume", "r"], setup=GOOD_RUN + "\n" + _holder("r"),
       expect="error")
    rd("stale lock file, no holder", [*base, "--out", "r"],
       setup="os.mkdir('r'); Path('r/.mfgsolve.lock').write_text('{\"pid\": 1}')")
    rd("lock file is a directory", [*base, "--out", "r"], setup="os.makedirs('r/.mfgsolve.lock')", expect="error")
    rd("resume: empty dir", [*base, "--resume", "r"], setup="os.mkdir('r')", expect="error")
    rd("resume: missing dir", [*base, "--resume", "r"], expect="error")
    rd("resume: good run, same args", [*base, "--resume", "r"], setup=GOOD_RUN)
    rd("resume: larger budget", [*S, "lq-1d", *EXACT, "--iterations", "6", "--resume", "r"], setup=GOOD_RUN)
    rd("resume: other seed", [*base, "--seed", "1", "--resume", "r"], setup=GOOD_RUN, expect="error")
    rd("resume: other --set", [*base, "--set", "T=5", "--resume", "r"], setup=GOOD_RUN, expect="error")
    rd("resume: other scheme", [*base, "--scheme", "damped", "--resume", "r"], setup=GOOD_RUN, expect="error")
    rd("resume: other oracle", [*S, "lq-1d", "--oracle", "ddpg", *LEARN, "--resume", "r"], setup=GOOD_RUN,
       expect="error")
    rd("resume: other flow", [*base, "--flow", "particles", "--particles", "64", "--resume", "r"], setup=GOOD_RUN,
       expect="error")
    rd("resume: other problem", [*S, "systemic-risk", *EXACT, "--iterations", "3", "--resume", "r"], setup=GOOD_RUN,
       expect="error")
    rd("resume: config.json = []", [*base, "--resume", "r"], setup=GOOD_RUN + "\nPath('r/config.json').write_text('[]')",
       expect="error")
    rd("resume: config.json truncated", [*base, "--resume", "r"],
       setup=GOOD_RUN + "\nPath('r/config.json').write_text(Path('r/config.json').read_text()[:40])", expect="error")
    rd("resume: config.json binary", [*base, "--resume", "r"],
       setup=GOOD_RUN + "\nPath('r/config.json').write_bytes(b'\\xff\\xfe\\x00')", expect="error")
    rd("resume: config.json is a dir", [*base, "--resume", "r"],
       setup=GOOD_RUN + "\nos.remove('r/config.json'); os.mkdir('r/config.json')", expect="error")
    rd("resume: fingerprint = 42", [*base, "--resume", "r"],
       setup=GOOD_RUN + "\nimport json; c = json.loads(Path('r/config.json').read_text()); c['fingerprint'] = 42; "
       "Path('r/config.json').write_text(json.dumps(c))", expect="error")
    rd("resume: checkpoint truncated", [*base, "--resume", "r"],
       setup=GOOD_RUN + "\nPath('r/checkpoint.pt').write_bytes(Path('r/checkpoint.pt').read_bytes()[:100])",
       expect="error")
    rd("resume: checkpoint is text", [*base, "--resume", "r"],
       setup=GOOD_RUN + "\nPath('r/checkpoint.pt').write_text('hello')", expect="error")
    rd("resume: checkpoint removed", [*base, "--resume", "r"], setup=GOOD_RUN + "\nos.remove('r/checkpoint.pt')")
    rd("resume: history.csv damaged", [*base, "--resume", "r"],
       setup=GOOD_RUN + "\nPath('r/history.csv').write_text('garbage\\n1,2\\n')")
    rd("resume: a symlink to a run", [*base, "--resume", "l"], setup=GOOD_RUN + "\nos.symlink('r', 'l')")
    rd("resume: a file", [*base, "--resume", "f"], setup="Path('f').write_text('x')", expect="error")
    rd("reference: out is a run dir", ["reference", "lq-1d", "--out", "r"], setup=GOOD_RUN)
    rd("reference: out below a file", ["reference", "lq-1d", "--out", "f/r"], setup="Path('f').write_text('x')",
       expect="error")
    rd("reference: reference.json is a dir", ["reference", "lq-1d", "--out", "r"],
       setup="os.makedirs('r/reference.json')", expect="error")
    # ------------------------------------------------------------------ plot
    pl = lambda text, setup, expect="error": cli("plot", ["plot", "r"], setup=setup, expect=expect, text=f"plot: {text}")  # noqa: E731
    pl("missing dir", "")
    pl("a file", "Path('r').write_text('x')")
    pl("empty dir", "os.mkdir('r')")
    pl("good run", GOOD_RUN, expect="any")
    pl("summary.json = []", GOOD_RUN + "\nPath('r/summary.json').write_text('[]')")
    pl("summary.json missing", GOOD_RUN + "\nos.remove('r/summary.json')")
    pl("history.csv header only", GOOD_RUN + "\nPath('r/history.csv').write_text(Path('r/history.csv').read_text().splitlines()[0] + '\\n')")
    pl("history.csv with NaN residuals", GOOD_RUN + "\nimport re; t = Path('r/history.csv').read_text().splitlines(); "
       "Path('r/history.csv').write_text('\\n'.join([t[0]] + [','.join('nan' for _ in l.split(',')) for l in t[1:]]) + '\\n')",
       expect="any")
    pl("history.csv binary", GOOD_RUN + "\nPath('r/history.csv').write_bytes(b'\\xff\\x00\\x01')")
    pl("flow.npz truncated", GOOD_RUN + "\nPath('r/flow.npz').write_bytes(Path('r/flow.npz').read_bytes()[:50])")
    pl("flow.npz is a pickle object array",
       GOOD_RUN + "\nimport numpy as np; np.savez('r/flow.npz', mean=np.array([object()], dtype=object))")
    pl("flow.npz mean is 3-D", GOOD_RUN + "\nimport numpy as np; np.savez('r/flow.npz', mean=np.zeros((2, 2, 2, 2)))")
    pl("flow.npz mean is empty", GOOD_RUN + "\nimport numpy as np; np.savez('r/flow.npz', mean=np.zeros((0,)))")
    pl("config.json is a string", GOOD_RUN + "\nPath('r/config.json').write_text('\"x\"')")
    pl("summary lacks diagnosis", GOOD_RUN + "\nimport json; s = json.loads(Path('r/summary.json').read_text()); "
       "s.pop('diagnosis'); Path('r/summary.json').write_text(json.dumps(s))")
    pl("summary.problem is a list", GOOD_RUN + "\nimport json; s = json.loads(Path('r/summary.json').read_text()); "
       "s['problem'] = [1]; Path('r/summary.json').write_text(json.dumps(s))")
    pl("convergence.png is a dir", GOOD_RUN + "\nos.mkdir('r/convergence.png')")
    pl("history.csv is a dir", GOOD_RUN + "\nos.remove('r/history.csv'); os.mkdir('r/history.csv')")
    # ------------------------------------------------------------------ reference / br-check
    cli("reference", ["reference", "crowd-navigation", "--out", "r"], expect="error")
    cli("reference", ["reference", "traffic-flow", "--out", "r"], expect="error")
    cli("reference", ["reference", "crowd-aversion", "--out", "r", "--set", "points=400"], expect="error")
    cli("reference", ["reference", "crowd-aversion", "--out", "r", "--set", "points=3", "--set", "T=2"])
    cli("reference", ["reference", "lq-1d", "--out", "r", "--set", "A=1e200"], expect="error")
    cli("reference", ["reference", "lq-1d", "--out", "r", "--set", "T=100000000"], expect="error")
    cli("reference", ["reference", "systemic-risk", "--out", "r", "--set", "dt=1e-7"], expect="error")
    cli("reference", ["reference", "lq-1d"], expect="error")
    cli("br-check", ["br-check", "crowd-aversion", "--out", "r", "--updates", "5"], expect="error")
    cli("br-check", ["br-check", "crowd-navigation", "--out", "r", "--updates", "5"], expect="error")
    cli("br-check", ["br-check", "lq-1d", "--out", "r", "--oracle", "exact"])
    cli("br-check", ["br-check", "lq-1d", "--out", "r", "--updates", "0"], expect="error")
    cli("br-check", ["br-check", "lq-1d", "--out", "r", "--seconds", "-1"], expect="error")
    cli("br-check", ["br-check", "lq-1d", "--out", "r", "--oracle", "nope"], expect="error")
    cli("br-check", ["br-check", "lq-1d", "--out", "r", "--oracle", "exact", "--updates", "5"], expect="error")
    cli("br-check", ["br-check", "lq-1d", "--out", "r", "--updates", "10", "--quiet", "--set", "A=1e200"],
        expect="error")
    cli("br-check", ["br-check", "lq-1d", "--out", "r", "--updates", "10", "--quiet"])
    cli("br-check", ["br-check", "lq-1d", "--out", "f/r", "--updates", "10"], setup="Path('f').write_text('x')",
        expect="error")
    # ------------------------------------------------------------------ Python API
    P = "p = mfg.load_problem('lq-1d')\n"
    E = "o = mfg.make_oracle('exact')\n"
    for text in ["mfg.Stop(iterations=0)", "mfg.Stop(iterations=2.0)", "mfg.Stop(iterations=True)",
                 "mfg.Stop(tol=float('nan'))", "mfg.Stop(tol='1e-3')", "mfg.Stop(tol=-1)",
                 "mfg.Particles(n=1)", "mfg.Particles(n=2.5)", "mfg.Particles(metric='w2')", "mfg.Particles(n=None, metric=None)",
                 "mfg.Evaluation(particles=-1)", "mfg.Evaluation(final_particles=1.5)",
                 "mfg.RunDir('')", "mfg.RunDir(None)", "mfg.RunDir(3)", "mfg.RunDir('r', resume=1)",
                 "mfg.RunDir('r', resume=True, overwrite=True)",
                 "mfg.Damped(0)", "mfg.Damped(1.5)", "mfg.Damped(float('nan'))", "mfg.Damped('0.5')",
                 "mfg.FictitiousPlay(0.5)", "mfg.FictitiousPlay(float('inf'))", "mfg.FictitiousPlay(None)",
                 "mfg.DDPGOracle(batch_size=0)",
                 "mfg.DDPGConfig(actor_lr=float('nan'))", "mfg.DDPGConfig(hidden=-1)",
                 "mfg.make_oracle('ddpg', batch_size=2.5)", "mfg.make_oracle('ddpg', batch_size=10**20)",
                 "mfg.make_oracle('ddpg', hidden=64.0)", "mfg.make_oracle('nope')", "mfg.make_oracle(3)",
                 "mfg.make_oracle('exact', updates=3)", "mfg.make_oracle('mf-q', batch_size=0)",
                 "mfg.load_problem('nope')", "mfg.load_problem(None)", "mfg.load_problem('lq-1d', {'T': 'x'})",
                 "mfg.load_problem('lq-1d', {'nope': 1})", "mfg.load_problem('lq-1d', [('T', 3)])",
                 "mfg.load_problem('crowd-aversion', {'points': 10**6})", "mfg.load_problem('missing.toml')",
                 "mfg.LQProblem.from_spec({})", "mfg.LQProblem.from_spec({'family': 'lq', 'T': 3, 'A': 'x'})",
                 "mfg.LQProblem.from_spec([1, 2])", "mfg.LQProblem.from_spec({'family': 'lq', 'T': 3, 'A': [[1, 2]]})",
                 "mfg.LQProblem.from_spec({'family': 'lq', 'T': 3.0})",
                 "mfg.LQProblem.from_spec({'family': 'lq', 'T': 3, 'A': float('inf')})",
                 "mfg.LQProblem.from_spec({'family': 'lq', 'T': 3, 'B': 1, 'R': 1, 'A': __import__('numpy').eye(1)})"]:
        api("api constructors", text)
    api("api constructors", "mfg.DDPGConfig(batch_size=2.5)", expect="error")
    api("api constructors", "mfg.DDPGConfig(batch_size=10**20)", expect="error")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), seed=-1)")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), seed=2.5)")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), seed='0')")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), seed=2**70)")
    api("api solve", P + E + "mfg.solve(p, o, stop={'iterations': 2})")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), flow='particles')")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), flow=mfg.Particles)")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), evaluation=5)")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), run_dir='r')")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), run_dir=mfg.RunDir('f/r'))",
        setup="Path('f').write_text('x')")
    api("api solve", P + E + "mfg.solve(p, o, scheme='picard', stop=mfg.Stop(iterations=2))")
    api("api solve", P + E + "mfg.solve(p, o, scheme=mfg.Damped, stop=mfg.Stop(iterations=2))")
    api("api solve", P + E + "mfg.solve(p, 'exact', stop=mfg.Stop(iterations=2))")
    api("api solve", E + "mfg.solve('lq-1d', o, stop=mfg.Stop(iterations=2))")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), callback=3)")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), metadata=[1])")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), metadata={'x': object()})")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), initial_flow=3)")
    api("api solve", P + E + "mfg.solve(p, o, stop=mfg.Stop(iterations=2), progress='yes')")
    api("api solve", P + E + "def cb(*a):\n    raise RuntimeError('user callback')\n"
        "mfg.solve(p, o, stop=mfg.Stop(iterations=2), callback=cb)",
        expect="user:RuntimeError: user callback")
    D = "o = mfg.DDPGOracle(updates=5, progress=False, n_agents=16, batch_size=32, eval_every=5, eval_agents=64)\n"
    api("api solve", P + D + "mfg.solve(p, o, stop=mfg.Stop(iterations=1), flow=mfg.Gaussian())", expect="error")
    api("api solve", P + D + "mfg.solve(p, o, stop=mfg.Stop(iterations=1), flow=mfg.Particles(64), "
        "evaluation=mfg.Evaluation(0, 0), progress=False)")
    api("api solve", "p = mfg.load_problem('lq-1d', {'Sigma0': 0})\n" + D + "mfg.solve(p, o, "
        "stop=mfg.Stop(iterations=1), flow=mfg.Particles(256), progress=False)", text="lq-1d Sigma0=0 with tiny DDPG")
    api("api solve", "p = mfg.load_problem('lq-1d', {'Sigma0': 0, 'Sigma_w': 0})\n" + D + "mfg.solve(p, o, "
        "stop=mfg.Stop(iterations=1), flow=mfg.Particles(256), progress=False)",
        text="lq-1d Sigma0=0 Sigma_w=0 with tiny DDPG")
    api("api solve", "p = mfg.load_problem('crowd-aversion', {'points': 400})\n" + D + "mfg.solve(p, o, "
        "stop=mfg.Stop(iterations=1), flow=mfg.Particles(256), progress=False)", expect="error",
        text="crowd-aversion points=400 with tiny DDPG")
    api("api solve", P + E + "def cb(*a):\n    raise RuntimeError('user callback')\n"
        "try:\n    mfg.solve(p, o, stop=mfg.Stop(iterations=2), callback=cb, run_dir='r')\nexcept RuntimeError:\n    pass\n"
        "assert not os.path.exists('r/.mfgsolve.lock'), 'a failed run left its lock file'",
        text="a run whose callback raises: is its lock file removed?")
    # a user problem with broken callbacks
    USER = textwrap.dedent("""
        import torch
        class Bad:
            n, p, T = 1, 1, 3
            def sample_x0(self, n, generator, dtype=torch.float64):
                return torch.zeros(n, 1, dtype=dtype)
            def step(self, t, x, a, m, generator):
                return x + a
            def reward(self, t, x, a, m):
                return -(a ** 2).sum(1)
            def terminal_reward(self, x, m):
                return -(x ** 2).sum(1)
            def config(self):
                return {"family": "bad"}
        o = mfg.DDPGOracle(updates=5, progress=False, n_agents=16, batch_size=32, eval_every=5, eval_agents=64)
        """)
    for patch in ["Bad.sample_x0 = lambda self, n, g, dtype=torch.float64: torch.zeros(n, 2, dtype=dtype)",
                  "Bad.step = lambda self, t, x, a, m, g: (x + a)[:1]",
                  "Bad.reward = lambda self, t, x, a, m: torch.full((x.shape[0],), float('nan'), dtype=x.dtype)",
                  "Bad.reward = lambda self, t, x, a, m: (a ** 2)",
                  "Bad.terminal_reward = lambda self, x, m: None",
                  "Bad.step = lambda self, t, x, a, m, g: 1 / 0",
                  "Bad.n = 0", "Bad.T = 0", "Bad.T = 2.5", "Bad.p = -1",
                  "del Bad.reward",
                  "Bad.step = lambda self, t, x, a, m, g: x * 1e300 + a"]:
        api("api user problem", USER + patch + "\nmfg.solve(Bad(), o, stop=mfg.Stop(iterations=1), "
            "flow=mfg.Particles(64), progress=False)", text=f"user Problem with {patch}",
            expect="user:ZeroDivisionError" if "1 / 0" in patch else "any")
    api("api user problem", USER + "mfg.solve(Bad(), o, stop=mfg.Stop(iterations=1), flow=mfg.Particles(64), "
        "progress=False)", text="a valid user Problem")
    api("api user problem", USER + "del Bad.config\nmfg.solve(Bad(), o, stop=mfg.Stop(iterations=1), "
        "flow=mfg.Particles(64), progress=False)", text="a user Problem without config()")
    api("api user problem", USER + "Bad.config = lambda self: {'x': object()}\nmfg.solve(Bad(), o, "
        "stop=mfg.Stop(iterations=1), flow=mfg.Particles(64), progress=False, run_dir='r')",
        text="a user Problem whose config() is not JSON")
    # utilities
    api("api utilities", "import numpy as np\nmfg.wasserstein(np.zeros((0, 1)), np.zeros((5, 1)))")
    api("api utilities", "import numpy as np\nmfg.wasserstein(np.zeros((5, 1)), np.zeros((5, 2)))")
    api("api utilities", "import numpy as np\nmfg.wasserstein(np.full((5, 1), np.nan), np.zeros((5, 1)))")
    api("api utilities", "import numpy as np\nmfg.wasserstein(np.zeros((5, 1)), np.zeros((5, 1)), method='nope')")
    api("api utilities", "mfg.wasserstein([1, 2], 'abc')")
    api("api utilities", "import numpy as np\nmfg.wasserstein(np.zeros((5, 1)), np.zeros((5, 1)), p=0)")
    K = "p = mfg.load_problem('lq-1d')\nr = p.reference()\npol = mfg.AffinePolicy(r.K, r.k)\n"
    api("api utilities", K + "mfg.lq_epsilon_nash(p, pol, N=0)")
    api("api utilities", K + "mfg.lq_epsilon_nash(p, pol, N=2.5)")
    api("api utilities", K + "mfg.lq_epsilon_nash(p, pol, N=10**12)")
    api("api utilities", K + "mfg.lq_epsilon_nash(p, 'policy', N=10)")
    api("api utilities", K + "mfg.lq_epsilon_nash(mfg.load_problem('crowd-aversion'), pol, N=10)")
    api("api utilities", "p = mfg.load_problem('crowd-navigation')\nmfg.br_check(p, mfg.DDPGOracle(updates=5, progress=False, n_agents=16, batch_size=32, eval_every=5, eval_agents=64))")
    api("api utilities", "p = mfg.load_problem('lq-1d')\nmfg.br_check(p, 'ddpg')")
    api("api utilities", "p = mfg.load_problem('lq-1d')\nmfg.br_check(p, mfg.DDPGOracle(updates=5, progress=False, n_agents=16, batch_size=32, eval_every=5, eval_agents=64), seed=-1)")
    api("api utilities", "mfg.load_run('nowhere')")
    api("api utilities", "import os; os.mkdir('r')\nmfg.load_run('r')")


# ------------------------------------------------------------------------------------------------- runner
def _console_script():
    """The ``main(argv) -> exit code`` of the module behind the installed ``mfgsolve`` console script (CLI cases run
    what a user's shell runs, in a forked child, and read its exit code)."""
    import importlib
    from importlib.metadata import entry_points

    return importlib.import_module(entry_points(group="console_scripts")["mfgsolve"].module).main


def _child(case: Case, scratch: Path) -> None:
    """In the forked child: run ``case`` in ``scratch``, stdout/stderr into files; never returns."""
    os.setpgid(0, 0)
    os.chdir(scratch)
    out = os.open("stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open("stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.makedirs("runs", exist_ok=True)
    code = 1
    import traceback

    main = _console_script()

    holders: list[int] = []

    def run(argv: list[str]) -> None:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = main(argv)
        if rc != 0:
            raise RuntimeError(f"setup run failed with {rc}")

    env = {"os": os, "Path": Path, "time": time, "run": run, "HOLDERS": holders}
    try:
        try:
            exec(case.setup, env)
        except BaseException:
            print("SETUP FAILED", file=sys.stderr)
            traceback.print_exc()
            os._exit(99)
        if case.argv is not None:
            code = main(case.argv)
        else:
            import mfgsolve as mfg
            from mfgsolve.errors import NoEquilibriumError, ResponseFailedError, SpecError, UncertifiedReferenceError

            try:
                exec(case.code, {"mfg": mfg, "os": os, "Path": Path})
                code = 0
            except SpecError as exc:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                code = 2
            except (NoEquilibriumError, UncertifiedReferenceError) as exc:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                code = 2
            except ResponseFailedError as exc:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                code = 3
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for pid in holders:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _rss_gb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


@dataclass
class Outcome:
    code: int | None
    stderr: str
    seconds: float
    note: str = ""


def run_case(case: Case, timeout: float, isolated: bool) -> Outcome:
    scratch = Path(tempfile.mkdtemp(prefix="mfg-bad-"))
    t0 = time.monotonic()
    try:
        if isolated:
            import subprocess

            idx = CASES.index(case) + 1
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--run-one", str(idx),
                                     str(scratch)], start_new_session=True)
            pid = proc.pid
        else:
            pid = os.fork()
            if pid == 0:
                try:
                    _child(case, scratch)
                finally:
                    os._exit(98)
        code, note = None, ""
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            elapsed = time.monotonic() - t0
            rss = _rss_gb(pid)
            if elapsed > timeout or rss > RSS_LIMIT_GB:
                note = f"killed at {elapsed:.0f} s" if elapsed > timeout else f"killed at RSS {rss:.1f} GB"
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                os.waitpid(pid, 0)
                break
            time.sleep(0.05)
        stderr = (scratch / "stderr").read_text(errors="replace") if (scratch / "stderr").exists() else ""
        return Outcome(code, stderr, time.monotonic() - t0, note)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_FIELD = re.compile(r"^(mfgsolve: error: |\w*Error: )\S[^:]{0,80}: ")


_LEARNED = re.compile(r"(--br-\w+|--updates|--seconds): applies only to learned oracles|"
                      r"(ddpg|ddpg-nopop|mf-q|mf-ac) has no setting .* \(it takes none\)")


def classify(case: Case, out: Outcome) -> str:
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    if out.code is None:
        return "HANG"
    if case.expect.startswith("user:"):  # the user's own exception, propagated unchanged
        return "OK" if lines and lines[-1].startswith(case.expect[5:]) else "CHECK"
    if "Traceback (most recent call last)" in out.stderr:
        return "TB"
    if out.code == 99:
        return "SETUP"
    if out.code == 2:
        if any(_LEARNED.search(l) for l in lines) and "--oracle exact" not in case.text and "'exact'" not in case.text:
            return "CHECK"  # a learned oracle said to take no settings: misleading, and the case never ran
        return "OK" if len(lines) == 1 and _FIELD.match(lines[0]) else "CHECK"
    if out.code == 0:
        if case.expect == "error":
            return "CHECK"
        return "CHECK" if any("Warning" in l for l in lines) else "OK"
    if out.code in (3, 130):
        return "OK" if len(lines) == 1 else "CHECK"
    return "CHECK"


def _cell(text: str, width: int) -> str:
    text = text.replace("\n", "\\n").replace("|", "\\|").replace("`", "'")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _use_checkout_problems() -> None:
    """Make ``mfgsolve_problems`` this checkout's ``problems/`` (an installed package may point at another one)."""
    shim = Path(tempfile.mkdtemp(prefix="mfg-shim-"))
    (shim / "mfgsolve_problems").symlink_to(ROOT / "problems")
    sys.path[:0] = [str(ROOT), str(shim)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(shim), os.environ.get("PYTHONPATH", "")])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=40.0)
    ap.add_argument("--only", default=None, help="a regex on area or input")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "bad_inputs.md")
    ap.add_argument("--isolated", action="store_true", help="a fresh interpreter per case (slow)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--run-one", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    build_cases()
    if args.run_one:
        _child(CASES[int(args.run_one[0]) - 1], Path(args.run_one[1]))
    selected = [(i, c) for i, c in enumerate(CASES, 1)
                if args.only is None or re.search(args.only, c.area + " " + c.text)]
    if args.list:
        for i, c in selected:
            print(i, c.area, c.text)
        return 0
    _use_checkout_problems()
    if not args.isolated:
        import mfgsolve  # noqa: F401  the import the forked children share
        _console_script()  # loaded once, before the children fork
    rows, counts = [], {}
    t0 = time.monotonic()
    for i, case in selected:
        out = run_case(case, args.timeout, args.isolated)
        verdict = classify(case, out)
        counts[verdict] = counts.get(verdict, 0) + 1
        lines = [l for l in out.stderr.splitlines() if l.strip()]
        first = next((l for l in lines if l.startswith(("mfgsolve:", "Spec", "RunDir"))), None)
        if verdict == "TB":
            first = lines[-1] if lines else ""
        first = first if first is not None else (lines[0] if lines else "")
        code = "timeout" if out.code is None else f"exit {out.code}"
        ended = f"{code}{' (' + out.note + ')' if out.note else ''}, {len(lines)} stderr line(s): {first}"
        rows.append((i, case, ended, verdict))
        print(f"{i:4d} {verdict:5s} {out.seconds:5.1f}s {case.area}: {_cell(case.text, 70)} -> {_cell(ended, 140)}",
              flush=True)
    total = time.monotonic() - t0
    summary = ", ".join(f"{k} {counts.get(k, 0)}" for k in ("OK", "TB", "HANG", "CHECK", "SETUP") if counts.get(k) or k != "SETUP")
    with args.out.open("w", encoding="utf-8") as fh:
        fh.write("# Bad inputs beyond the audit of 2026-11-29\n\n")
        fh.write(f"Generated by `bench/bad_inputs.py` ({len(rows)} cases, {total:.0f} s, timeout {args.timeout:g} s"
                 f"{', a fresh interpreter per case' if args.isolated else ', one forked child per case'}).\n\n")
        fh.write(f"**{summary}**\n\n")
        fh.write("OK: exit 2 with one stderr line naming the field or option, or a documented code (0 valid input, "
                 "3 failed response, 130 interrupted); TB: a traceback; HANG: timeout or memory above "
                 f"{RSS_LIMIT_GB:g} GB; CHECK: anything else (exit 1, several stderr lines, warnings, or an input "
                 "that should be refused accepted). CLI cases are `mfgsolve ARGS`; API cases are Python with "
                 "`import mfgsolve as mfg`. The process runs as root, so file permissions are not tested by chmod; "
                 "read-only places are /proc and /sys.\n\n")
        fh.write("| # | area | input | how it ended | verdict |\n|---|---|---|---|---|\n")
        for i, case, ended, verdict in rows:
            fh.write(f"| {i} | {case.area} | `{_cell(case.text, 150)}` | {_cell(ended, 160)} | {verdict} |\n")
    print(f"{summary}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
