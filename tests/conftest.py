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


import pytest  # noqa: E402


@pytest.fixture
def one_thread():
    """torch on one intra-op thread for the test (tiny networks only contend on the shared 2-core machines; one
    and two threads give the same histories), restored afterwards. Modules take it with ``pytestmark``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
