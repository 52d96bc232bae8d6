"""The fused CUDA step kernels: they compile (NVRTC, no GPU needed), and their math,
compiled for the host, equals the NumPy path. On a GPU, the whole suite's ``xp`` fixture
runs these kernels in CuPy."""

import numpy as np
import pytest

from lstm_core import cuda_kernels
from lstm_core.lstm import lstm_backward, lstm_forward

from helpers import largest_difference
from host_cuda import compiler_missing, host_kernels
from nvrtc import NvrtcMissing, compile_to_ptx, resource_report


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_kernels_compile_with_nvrtc(dtype_name):
    try:
        ptx = compile_to_ptx(cuda_kernels.kernel_source(dtype_name), "lstm_step.cu")
    except NvrtcMissing as exc:
        pytest.skip(str(exc))
    for base in (cuda_kernels.FORWARD_NAME, cuda_kernels.BACKWARD_NAME, cuda_kernels.WINDOW_FORWARD_NAME,
                 cuda_kernels.WINDOW_BACKWARD_NAME):
        assert f".entry {cuda_kernels.kernel_name(base, dtype_name)}" in ptx


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_kernels_fit_the_blocks_they_are_launched_with(dtype_name):
    """Compiled to H100/H200 machine code (sm_90; NVRTC runs ptxas without a GPU), no
    kernel keeps anything in slow local memory (no stack, no spilled registers), and the
    window kernels' widest launch (1024 threads a block) fits in a block's registers and
    shared memory: a kernel over the limit compiles, and every test on the CPU passes, but
    on the GPU the launch fails with 'too many resources requested'."""
    try:
        report = resource_report(cuda_kernels.kernel_source(dtype_name))
    except NvrtcMissing as exc:
        pytest.skip(str(exc))
    names = {cuda_kernels.kernel_name(base, dtype_name) for base in (
        cuda_kernels.FORWARD_NAME, cuda_kernels.BACKWARD_NAME, cuda_kernels.WINDOW_FORWARD_NAME,
        cuda_kernels.WINDOW_BACKWARD_NAME)}
    assert set(report) == names
    for name, resources in report.items():
        assert resources.stack_bytes == 0 and resources.spill_bytes == 0, (name, resources)

    itemsize = np.dtype(dtype_name).itemsize
    widest = [(256, 1), (256, 1024 - 256 - 1), (1, 1024 - 2)]     # (H, I) at the 1024-thread limit
    for H, I in widest:
        assert cuda_kernels.window_fits(H, I)
        _, (threads,), shared = cuda_kernels.window_launch(H, I, 1, itemsize)
        assert threads == cuda_kernels.MAX_THREADS
        assert shared <= cuda_kernels.SHARED_BYTES_PER_BLOCK
        for base in (cuda_kernels.WINDOW_FORWARD_NAME, cuda_kernels.WINDOW_BACKWARD_NAME):
            registers = report[cuda_kernels.kernel_name(base, dtype_name)].registers
            allocated = -(-registers // 8) * 8                   # registers are handed out 8 at a time a thread
            assert allocated * threads <= cuda_kernels.REGISTERS_PER_BLOCK, (base, registers)
    assert not cuda_kernels.window_fits(257, 1)


@pytest.mark.skipif(bool(compiler_missing()), reason=compiler_missing() or "ok")
@pytest.mark.parametrize("loop,I,H", [("step", 2, 7), ("window", 2, 7), ("window", 6, 1), ("window", 1, 256)])
@pytest.mark.parametrize("dtype_name,tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_fused_path_equals_numpy_path(rng, dtype_name, tol, loop, I, H):
    """lstm.py's GPU loops, with the kernels compiled for the CPU, against the NumPy loop:
    forward outputs, final state, and every gradient. The step kernels' launch shape
    leaves idle threads in the last block (H * B is not a multiple of the block size); the
    window kernels run a thread per CUDA thread with real barriers (host_cuda.py); with
    H = 1, I = 6 a block has more threads for [h; x; 1] (8) than gate rows (4); H = 256 is
    the widest layer they take (4H = 1024 threads a block, the most CUDA allows), run over
    fewer steps and columns (on the host, 1024 OS threads meeting at every barrier, it is slow)."""
    dtype = np.dtype(dtype_name)
    T, B = (3, 2) if H == 256 else (9, 5)
    recurrent_scale = min(0.6, 1.6 / np.sqrt(H))       # wide layers stay out of saturation
    params = {"W_x": rng.standard_normal((4 * H, I)), "W_h": recurrent_scale * rng.standard_normal((4 * H, H)),
              "b": rng.standard_normal(4 * H)}
    params = {k: v.astype(dtype) for k, v in params.items()}
    x, h0, c0, dh, dh_T, dc_T = (rng.standard_normal(s).astype(dtype) for s in
                                 [(T, I, B), (H, B), (H, B), (T, H, B), (H, B), (H, B)])

    h_ref, (hT_ref, cT_ref), cache_ref = lstm_forward(x, params, h0, c0)
    h_fused, (hT_fused, cT_fused), cache_fused = lstm_forward(x, params, h0, c0, kernels=host_kernels(dtype_name, loop))
    for ref, fused in [(h_ref, h_fused), (hT_ref, hT_fused), (cT_ref, cT_fused)]:
        assert np.abs(ref - fused).max() < tol

    g_ref, dx_ref, (dh0_ref, dc0_ref) = lstm_backward(dh, cache_ref, dh_T, dc_T)
    g_fused, dx_fused, (dh0_fused, dc0_fused) = lstm_backward(dh, cache_fused, dh_T, dc_T)
    for name in g_ref:
        assert largest_difference(g_fused[name], g_ref[name]) < tol, name
    for ref, fused in [(dx_ref, dx_fused), (dh0_ref, dh0_fused), (dc0_ref, dc0_fused)]:
        assert largest_difference(fused, ref) < tol
