"""CUDA source of the LSTM kernels, and their compilation through CuPy.

Two ways to run a window's recurrence on the GPU; lstm.py uses the one its caller names
(``gpu_loop``, from lstm_core.devices: "window" by default):

* step kernels ("step"): one kernel per time step forward and one per time step
  backward; each thread owns one (hidden unit j, batch column b) pair and does all the
  elementwise work of that step for it, so a step costs one recurrent matmul (cuBLAS)
  plus one launch: 2 launches a step.
* window kernels ("window"): one launch runs the whole window's recurrence, forward or
  backward. Batch columns are independent, so one thread block owns one column for all
  T steps; its threads share that column's state in shared memory and meet at a
  __syncthreads() twice a step, instead of the whole GPU meeting at a kernel boundary.
  Thread r computes gate row r's dot product itself, forward, and entry r of W^T da,
  backward. The weights are read through the cache (every block reads the same (G, K)
  matrix, 17 KB at H = 32, 266 KB at H = 128), laid out so that a warp's 32 threads read
  32 neighbouring words at each k, one cache line: (K, G) forward, (G, K) backward.
  No launch per step, no host work.
  Which is faster depends on H and B: benchmarks/cpu_vs_gpu.py measures both. On an
  H200 (2026-11-30) the window kernels ran 1.5-15 times faster than the step kernels at
  H = 16 to 64 for every B from 40 to 4096 (the most at B = 40, the least at 4096), and
  at H = 128 for B up to 512; the step kernels won at H = 128 with B of 1024 and more
  (by 1.1-2 times). The GPU's default batch is 64 (lstm_core.devices).
  The step kernels stay as the reference the window kernels are tested against, and run
  where the window kernels do not fit (H > 256).

Arrays are feature-major, as everywhere in ``lstm_core``: a (G, B) gate block holds the
rows [o | i | f | g], each (H, B), and the flat index of (row r, column b) is
``r * B + b``, so neighbouring threads of the step kernels touch neighbouring addresses.

The sources are plain strings, written once with ``real`` as the element type and
instantiated for float (training) and double (checks). They are compiled in three
places: by CuPy on a GPU (:func:`compile_kernels`), by NVRTC without a GPU in the tests
(syntax and types), and by the host C++ compiler in the tests, where the same source runs
on the CPU against the NumPy path (the math).
"""

from __future__ import annotations

from typing import NamedTuple

FORWARD_NAME = "lstm_step_forward"
BACKWARD_NAME = "lstm_step_backward"
WINDOW_FORWARD_NAME = "lstm_window_forward"
WINDOW_BACKWARD_NAME = "lstm_window_backward"
LOOPS = ("step", "window")
DEFAULT_LOOP = "window"    # faster on an H200 at every H measured (16-128) for B up to 512; the step
                           # loop wins only at H = 128 with B >= 1024 (benchmarks/RESULTS.md)
MAX_THREADS = 1024          # per block: the window kernels need G = 4H of them, so H <= 256
REGISTERS_PER_BLOCK = 65536  # 32-bit registers one block may hold (every GPU since compute 3.0)
SHARED_BYTES_PER_BLOCK = 48 * 1024   # shared memory a block gets without opting in to more


class Kernels(NamedTuple):
    """The compiled kernels lstm.py launches; the window pair is None when not in use."""

    forward_step: object
    backward_step: object
    forward_window: object = None
    backward_window: object = None


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

# Forward of a whole window, one block per batch column b, blockDim.x = max(G, H + I + 1).
#   W_T    (K, G)         [W_h | W_x | b]^T, K = H + I + 1 (transposed, so that gate rows
#                         r, r+1, ... read neighbouring words)
#   Z      (T + 1, K, B)  in: Z[0, :H] = h0, Z[t, H:H+I] = x_t, Z[t, H+I] = 1; out: Z[t+1, :H] = h_t
#   A      (T + 1, G + H, B)  in: A[0, G:] = c0; out: A[t, :G] activations, A[t+1, G:] = c_t
#   tanh_c (T, H, B)      out
# The same buffers, filled the same way, as the step kernels' loop in lstm.py.
_WINDOW_FORWARD = r"""
extern "C" __global__ void NAME(
    const real* __restrict__ W_T, real* __restrict__ Z, real* __restrict__ A, real* __restrict__ tanh_c,
    const int T, const int H, const int I, const int B)
{
    extern __shared__ unsigned char shared_bytes[];
    real* z = (real*)shared_bytes;            // (K)  [h_{t-1}; x_t; 1] of this column
    const int K = H + I + 1, G = 4 * H;
    real* act = z + K;                        // (G)  this step's activations
    real* c = act + G;                        // (H)  the cell state
    const int b = blockIdx.x, r = threadIdx.x;
    if (r < K) z[r] = Z[r * B + b];
    if (r < H) c[r] = A[(G + r) * B + b];
    __syncthreads();
    for (int t = 0; t < T; ++t) {
        real* A_t = A + (size_t)t * (G + H) * B;
        if (r < G) {
            real a = (real)0;
            for (int k = 0; k < K; ++k) a += W_T[k * G + r] * z[k];
            a = r < 3 * H ? sigmoid_(a) : tanh(a);
            act[r] = a;
            A_t[r * B + b] = a;
        }
        __syncthreads();                      // every gate is known, and every z read
        if (r < H) {
            const real o = act[r], i = act[H + r], f = act[2 * H + r], g = act[3 * H + r];
            const real c_t = f * c[r] + i * g;
            const real tc = tanh(c_t);
            const real h = o * tc;
            c[r] = c_t;
            z[r] = h;
            A[((size_t)(t + 1) * (G + H) + G + r) * B + b] = c_t;
            tanh_c[((size_t)t * H + r) * B + b] = tc;
            Z[((size_t)(t + 1) * K + r) * B + b] = h;
        } else if (r < H + I && t + 1 < T) {
            z[r] = Z[((size_t)(t + 1) * K + r) * B + b];      // x_{t+1}
        }
        __syncthreads();                      // the new z is complete
    }
}
"""

# Backward of a whole window, one block per batch column b, blockDim.x = max(G, H + I).
#   W        (G, K)         [W_h | W_x | b], K = H + I + 1, as the forward's matmuls use it
#                           (entry r of W^T da reads column r: neighbouring words)
#   dh_out   (T, H, B)      gradient reaching each h_t from above
#   A, tanh_c               what the forward kept
#   DZ       (T + 1, H + I, B)  in: DZ[T, :H] = dh_T; out: DZ[t] = W[:, :H + I]^T da_t
#   dc_carry (H, B)         in: dc_T; out: dc0
#   da       (T, G, B)      out
_WINDOW_BACKWARD = r"""
extern "C" __global__ void NAME(
    const real* __restrict__ W, const real* __restrict__ dh_out, const real* __restrict__ A,
    const real* __restrict__ tanh_c, real* __restrict__ DZ, real* __restrict__ dc_carry, real* __restrict__ da,
    const int T, const int H, const int I, const int B)
{
    extern __shared__ unsigned char shared_bytes[];
    const int G = 4 * H, J = H + I, K = J + 1;
    real* da_s = (real*)shared_bytes;         // (G)  this step's da
    real* dh_rec = da_s + G;                  // (H)  gradient reaching h_t from step t+1
    real* dc = dh_rec + H;                    // (H)  gradient reaching c_t from step t+1
    const int b = blockIdx.x, r = threadIdx.x;
    const real one = (real)1;
    if (r < H) {
        dh_rec[r] = DZ[((size_t)T * J + r) * B + b];
        dc[r] = dc_carry[r * B + b];
    }
    __syncthreads();
    for (int t = T - 1; t >= 0; --t) {
        if (r < H) {
            const real* A_t = A + (size_t)t * (G + H) * B;
            const real o = A_t[r * B + b], i = A_t[(H + r) * B + b];
            const real f = A_t[(2 * H + r) * B + b], g = A_t[(3 * H + r) * B + b];
            const real c_prev = A_t[(G + r) * B + b];
            const real tc = tanh_c[((size_t)t * H + r) * B + b];
            const real dh = dh_out[((size_t)t * H + r) * B + b] + dh_rec[r];
            const real dc_t = dc[r] + dh * o * (one - tc * tc);
            const real d_o = dh * tc * o * (one - o);
            const real d_i = dc_t * g * i * (one - i);
            const real d_f = dc_t * c_prev * f * (one - f);
            const real d_g = dc_t * i * (one - g * g);
            da_s[r] = d_o;
            da_s[H + r] = d_i;
            da_s[2 * H + r] = d_f;
            da_s[3 * H + r] = d_g;
            real* da_t = da + (size_t)t * G * B;
            da_t[r * B + b] = d_o;
            da_t[(H + r) * B + b] = d_i;
            da_t[(2 * H + r) * B + b] = d_f;
            da_t[(3 * H + r) * B + b] = d_g;
            dc[r] = dc_t * f;
        }
        __syncthreads();                      // da_t is complete, dh_rec read
        if (r < J) {
            real s = (real)0;
            for (int k = 0; k < G; ++k) s += W[k * K + r] * da_s[k];
            DZ[((size_t)t * J + r) * B + b] = s;
            if (r < H) dh_rec[r] = s;
        }
        __syncthreads();                      // dh_rec is complete, da_s read
    }
    if (r < H) dc_carry[r * B + b] = dc[r];
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
        + _WINDOW_FORWARD.replace("NAME", kernel_name(WINDOW_FORWARD_NAME, dtype_name))
        + _WINDOW_BACKWARD.replace("NAME", kernel_name(WINDOW_BACKWARD_NAME, dtype_name))
    )


THREADS_PER_BLOCK = 256


def launch_shape(H: int, B: int):
    """(grid, block) covering H * B threads."""
    blocks = (H * B + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    return (blocks,), (THREADS_PER_BLOCK,)


def window_launch(H: int, I: int, B: int, itemsize: int):
    """(grid, block, shared bytes) of both window kernels: a block per column, enough
    threads for every gate row and every entry of [h; x; 1]."""
    threads = max(4 * H, H + I + 1)
    shared = (H + I + 1 + 4 * H + H) * itemsize
    return (B,), (threads,), shared


def window_fits(H: int, I: int) -> bool:
    return max(4 * H, H + I + 1) <= MAX_THREADS


_compiled: dict = {}


def compile_kernels(xp, dtype_name: str, loop: str = DEFAULT_LOOP) -> Kernels:
    """The Kernels for ``dtype_name`` and ``loop`` ("step" or "window"), compiled once per
    process.

    ``xp`` is CuPy (handed over by the caller, so that only backend.py imports it).
    """
    if loop not in LOOPS:
        raise ValueError(f"the GPU loop must be one of {LOOPS}, got {loop!r}")
    if dtype_name not in _compiled:
        module = xp.RawModule(code=kernel_source(dtype_name))
        _compiled[dtype_name] = Kernels(*(module.get_function(kernel_name(name, dtype_name)) for name in
                                          (FORWARD_NAME, BACKWARD_NAME, WINDOW_FORWARD_NAME, WINDOW_BACKWARD_NAME)))
    kernels = _compiled[dtype_name]
    return kernels if loop == "window" else kernels._replace(forward_window=None, backward_window=None)
