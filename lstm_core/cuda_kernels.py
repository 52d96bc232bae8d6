"""CUDA source of the fused LSTM step kernels, and their compilation through CuPy.

One kernel per time step forward and one per time step backward; each thread owns one
(hidden unit j, batch column b) pair and does all the elementwise work of that step for
it, so a step costs one recurrent matmul plus one launch. Arrays are feature-major, as
everywhere in ``lstm_core``: a (G, B) gate block holds the rows [o | i | f | g], each
(H, B), and the flat index of (row r, column b) is ``r * B + b``, so neighbouring threads
touch neighbouring addresses.

The sources are plain strings, written once with ``real`` as the element type and
instantiated for float (training) and double (checks). They are compiled in three
places: by CuPy on a GPU (:func:`compile_kernels`), by NVRTC without a GPU in the tests
(syntax and types), and by the host C++ compiler in the tests, where the same source runs
on the CPU against the NumPy path (the math).
"""

from __future__ import annotations

FORWARD_NAME = "lstm_step_forward"
BACKWARD_NAME = "lstm_step_backward"

_PRELUDE = r"""
typedef REAL real;

__device__ inline real sigmoid_(real x) { return (real)0.5 * tanh((real)0.5 * x) + (real)0.5; }
"""

# Forward of one step.
#   gates  (G, B)  in: the pre-activations W Z[t] = W_h h_{t-1} + W_x x_t + b;
#                  out: the activations [o | i | f | g], kept for the backward
#                  (each thread reads its four entries before writing them)
#   c_prev (H, B)
# writes
#   c_next, tanh_c, h_next (H, B)
_FORWARD = r"""
extern "C" __global__ void NAME(
    real* gates, const real* __restrict__ c_prev, real* __restrict__ c_next,
    real* __restrict__ tanh_c, real* __restrict__ h_next, const int H, const int B)
{
    const int n = blockIdx.x * blockDim.x + threadIdx.x;   // n = j * B + b
    if (n >= H * B) return;
    const int HB = H * B;
    const real o = sigmoid_(gates[n]);
    const real i = sigmoid_(gates[HB + n]);
    const real f = sigmoid_(gates[2 * HB + n]);
    const real g = tanh(gates[3 * HB + n]);
    gates[n] = o;
    gates[HB + n] = i;
    gates[2 * HB + n] = f;
    gates[3 * HB + n] = g;
    const real c = f * c_prev[n] + i * g;
    const real tc = tanh(c);
    c_next[n] = c;
    tanh_c[n] = tc;
    h_next[n] = o * tc;
}
"""

# Backward of one step.
#   dh_out   (H, B)  gradient reaching h_t from above (output layer or next layer)
#   dh_rec   (H, B)  gradient reaching h_t from step t+1 (W_h^T da_{t+1})
#   dc_carry (H, B)  in: gradient reaching c_t from step t+1; out: gradient for c_{t-1}
#   gates (G, B), c_prev (H, B), tanh_c (H, B)  what the forward kept for step t
# writes
#   da (G, B)  gradient of the pre-activations [o | i | f | g]
_BACKWARD = r"""
extern "C" __global__ void NAME(
    const real* __restrict__ dh_out, const real* __restrict__ dh_rec, real* __restrict__ dc_carry,
    const real* __restrict__ gates, const real* __restrict__ c_prev, const real* __restrict__ tanh_c,
    real* __restrict__ da, const int H, const int B)
{
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= H * B) return;
    const int HB = H * B;
    const real one = (real)1;
    const real o = gates[n], i = gates[HB + n], f = gates[2 * HB + n], g = gates[3 * HB + n];
    const real tc = tanh_c[n];
    const real dh = dh_out[n] + dh_rec[n];
    const real dc = dc_carry[n] + dh * o * (one - tc * tc);
    da[n] = dh * tc * o * (one - o);
    da[HB + n] = dc * g * i * (one - i);
    da[2 * HB + n] = dc * c_prev[n] * f * (one - f);
    da[3 * HB + n] = dc * i * (one - g * g);
    dc_carry[n] = dc * f;
}
"""

REALS = {"float32": "float", "float64": "double"}


def kernel_name(base: str, dtype_name: str) -> str:
    return f"{base}_{REALS[dtype_name]}"


def kernel_source(dtype_name: str) -> str:
    """The CUDA source of both step kernels for one element type ('float32' or 'float64')."""
    real = REALS[dtype_name]
    return (
        _PRELUDE.replace("REAL", real)
        + _FORWARD.replace("NAME", kernel_name(FORWARD_NAME, dtype_name))
        + _BACKWARD.replace("NAME", kernel_name(BACKWARD_NAME, dtype_name))
    )


THREADS_PER_BLOCK = 256


def launch_shape(H: int, B: int):
    """(grid, block) covering H * B threads."""
    blocks = (H * B + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    return (blocks,), (THREADS_PER_BLOCK,)


_compiled: dict = {}


def compile_kernels(xp, dtype_name: str):
    """(forward, backward) RawKernels for ``dtype_name``, compiled once per process.

    ``xp`` is CuPy (handed over by the caller, so that only backend.py imports it).
    """
    if dtype_name not in _compiled:
        module = xp.RawModule(code=kernel_source(dtype_name))
        _compiled[dtype_name] = (
            module.get_function(kernel_name(FORWARD_NAME, dtype_name)),
            module.get_function(kernel_name(BACKWARD_NAME, dtype_name)),
        )
    return _compiled[dtype_name]
