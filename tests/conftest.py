"""Test-session setup shared by every test module."""

import os
import sys

# The suite makes thousands of small LAPACK calls (Riccati steps, KKT solves). On the shared 2-core test
# machines OpenBLAS's worker threads make each call 10-200x slower than one thread does (measured: a 244 x 244
# solve takes 5-200 ms threaded, 0.8 ms single-threaded). Set before numpy is first imported; an explicit
# setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Test helpers (lq_specs, _direct_lq) are imported by module name from this folder.
sys.path.insert(0, os.path.dirname(__file__))
