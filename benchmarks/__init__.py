"""Speed measurements, kept apart from the tests: nothing here asserts a number.

common           machine facts, timing, the systems compared (ours and PyTorch), RESULTS.md
bench_step       samples/s of one training step, ours against PyTorch
cpu_vs_gpu       CPU against GPU: training throughput, offline inference, time to quality
time_to_quality  val ESR against training wall time, ours against the literature's recipe
offline          x real time of process.py's two ways, against PyTorch and NAM's C++ core
knobs            one knob-conditioned model against separate models, at equal total time
many_captures    8 captures through sweep.py (Ray) against train.py one by one; Ray's overhead

Each runs as ``python benchmarks/X.py`` from a checkout (no install needed) or as
``python -m benchmarks.X``.

Only one thing lives here rather than in common: re-running without OpenBLAS's overrides
must happen before NumPy loads, and importing this package loads nothing.
"""

import os
import sys

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REMOVED_MARK = "BENCH_STEP_REMOVED"     # tells the re-run process what was removed


def rerun_without_blas_overrides():
    """Replace this process by a fresh run of itself without BLAS_OVERRIDES (same argv).

    Some machines set them, and they slow NumPy's small matmuls; a user's machine does not.
    OpenBLAS reads them once, when NumPy loads it, hence a fresh process."""
    found = [name for name in BLAS_OVERRIDES if name in os.environ]
    if not found:
        return
    env = {key: value for key, value in os.environ.items() if key not in BLAS_OVERRIDES}
    env[REMOVED_MARK] = " ".join(f"{name}={os.environ[name]}" for name in found)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
