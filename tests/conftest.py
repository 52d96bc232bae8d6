"""Shared fixtures: every backend-aware test body runs on NumPy, and on CuPy where a GPU is."""

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))              # helpers.py, host_cuda.py
sys.path.insert(0, str(TESTS.parent))       # train.py and capture/, for the tests that import them

from lstm_core.backend import gpu_unavailable_reason  # noqa: E402


def _cupy_param():
    reason = gpu_unavailable_reason()
    marks = [pytest.mark.skip(reason=f"CuPy backend: {reason}")] if reason else []
    return pytest.param("cupy", marks=marks, id="cupy")


@pytest.fixture(params=[pytest.param("numpy", id="numpy"), _cupy_param()])
def xp(request):
    if request.param == "numpy":
        return np
    import cupy

    return cupy


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)
