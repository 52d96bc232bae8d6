"""One LSTM layer: forward over a window of T steps, and truncated BPTT back through it.

Shapes (fixed letters across the project):
    T time steps, B batch columns (parallel segments), I input size, H hidden size, G = 4H.

Arrays are feature-major: a time step of input is (I, B), of hidden state (H, B), of
gates (G, B). Each gate is then one contiguous (H, B) block, so the elementwise work of a
step runs over contiguous memory, and the weights have PyTorch's layout:

    W_x (G, I)   input weights
    W_h (G, H)   recurrent weights
    b   (G,)     bias
    gate rows, in this order: o (output), i (input), f (forget), g (cell candidate)

The three sigmoid gates come first so they form one slice [0:3H]; the three gates that
the cell gradient drives (i, f, g) form the slice [H:4H]. Exporters reorder to the
(i, f, g, o) order other tools use.

One matmul a step does all the linear work. The window is laid out as
Z (T+1, K, B), K = H + I + 1, with Z[t] = [h_{t-1}; x_t; 1], so that with the joined
weights W = [W_h | W_x | b] (G, K) the whole pre-activation is a_t = W Z[t], and step t
writes h_t straight into Z[t+1]. Backward, one matmul W[:, :H+I]^T da_t gives both the
gradient reaching h_{t-1} and the one reaching x_t. The weight gradient is then a single
contraction, dW = sum_t da_t Z[t]^T, done after the loop.

The forward keeps, per step, one block A[t] (5H, B) = [o | i | f | g | c_{t-1}]: the cell
state sits right after the cell candidate, so [i; f] * [g; c_{t-1}] is one product and
c_t = i g + f c_{t-1} the sum of its halves, and the backward's i and f factors are one
product too. gates = A[:, :G] and c = A[:, G:] are the two views the code names.

    a_t = W_x x_t + W_h h_{t-1} + b
    o, i, f = sigmoid(a_t[0:3H]);  g = tanh(a_t[3H:4H])
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Truncation is the caller's choice, made visible: :func:`lstm_forward` returns the final
state (h_T, c_T) as fresh arrays to start the next window with, and the gradient never
flows back through them unless the caller passes one into :func:`lstm_backward`.
"""

from __future__ import annotations

import numpy as np

from .backend import array_module, is_gpu
from . import cuda_kernels
from .workspace import empty

PARAM_NAMES = ("W_x", "W_h", "b")     # a layer's parameters, as model.layer_params names them


def lstm_forward(x, params, h0, c0, kernels=None, workspace=None, gpu_loop=cuda_kernels.DEFAULT_LOOP):
    """Run the layer over one window.

    Args:
        x: (T, I, B) input sequence.
        params: dict with W_x (G, I), W_h (G, H), b (G,).
        h0, c0: (H, B) initial state.
        kernels: cuda_kernels.Kernels to launch; None picks by backend (CuPy's compiled
            kernels for ``gpu_loop`` on a GPU; the NumPy loop on the CPU).
        workspace: reuse its buffers (see workspace.py: this invalidates the caches of
            earlier runs with the same workspace); None allocates new ones.
        gpu_loop: "step" or "window" (cuda_kernels), on a GPU; ignored on the CPU.

    Returns:
        h: (T, H, B) hidden state at every step (a view into the cache: do not write).
        (h_T, c_T): (H, B) each, the final state, as new arrays.
        cache: what lstm_backward needs.
    """
    xp = array_module(x)
    T, I, B = x.shape
    G, H = params["W_h"].shape
    dtype = x.dtype
    if kernels is None and is_gpu(xp):
        kernels = cuda_kernels.compile_kernels(xp, dtype.name, gpu_loop)

    W = xp.concatenate([params["W_h"], params["W_x"], params["b"][:, None]], axis=1)   # (G, K)
    Z = empty(workspace, "Z", (T + 1, H + I + 1, B), dtype, xp)
    Z[0, :H] = h0
    Z[:T, H : H + I] = x
    Z[:T, H + I] = 1.0
    A = empty(workspace, "A", (T + 1, G + H, B), dtype, xp)   # A[t] = [o | i | f | g | c_{t-1}]
    A[0, G:] = c0
    tanh_c = empty(workspace, "tanh_c", (T, H, B), dtype, xp)

    if kernels is None:
        _forward_loop_numpy(xp, W, Z, A, tanh_c)
    elif kernels.forward_window is not None and cuda_kernels.window_fits(H, I):
        _forward_window(xp, kernels.forward_window, W, Z, A, tanh_c)
    else:
        _forward_loop_fused(xp, kernels.forward_step, W, Z, A, tanh_c)

    h = Z[1:, :H]
    cache = (W, Z, A, tanh_c, kernels, workspace)
    return h, (Z[T, :H].copy(), A[T, G:].copy()), cache


def _forward_loop_numpy(xp, W, Z, A, tanh_c):
    """The recurrence on the CPU: 8 NumPy calls a step, no allocation.

    One tanh serves all four gates: sigmoid(a) = 0.5 + 0.5 * tanh(a / 2), so the rows of
    the sigmoid gates are halved once per window (in a copy of the weights), each step
    applies tanh to the whole (G, B) block, then maps the first 3H rows back.
    """
    T, H = tanh_c.shape[:2]
    S, G = 3 * H, 4 * H
    W_half = W.copy()
    W_half[:S] *= 0.5
    products = xp.empty((2 * H, A.shape[2]), dtype=A.dtype)
    ig, fc = products[:H], products[H:]
    # Whole-window views sliced once: in the loop each costs one integer index. The ufuncs
    # are bound to local names and given their output positionally: at these sizes a
    # step is mostly per-call overhead, and this trims it.
    pre, sig, if_gates, g_and_c, c, o = A[:, :G], A[:, :S], A[:, H:S], A[:, S:], A[:, G:], A[:, :H]
    h = Z[:, :H]
    matmul, tanh, multiply, add = xp.matmul, xp.tanh, xp.multiply, xp.add
    for t in range(T):
        a = pre[t]
        matmul(W_half, Z[t], a)
        tanh(a, a)
        s = sig[t]
        multiply(s, 0.5, s)
        add(s, 0.5, s)
        multiply(if_gates[t], g_and_c[t], products)      # [i g; f c_{t-1}]
        c_t = c[t + 1]
        add(ig, fc, c_t)                                 # c_t
        tc = tanh_c[t]
        tanh(c_t, tc)
        multiply(o[t], tc, h[t + 1])                     # h_t = o tanh(c_t)


def _forward_loop_fused(xp, kernel, W, Z, A, tanh_c):
    """The recurrence with one fused step kernel: a matmul and one launch a step."""
    T, H, B = tanh_c.shape
    G = 4 * H
    grid, block = cuda_kernels.launch_shape(H, B)
    H32, B32 = np.int32(H), np.int32(B)
    for t in range(T):
        xp.matmul(W, Z[t], out=A[t, :G])
        # A[t, :G] holds the pre-activations in and the activations out (see the kernel).
        kernel(grid, block, (A[t, :G], A[t, G:], A[t + 1, G:], tanh_c[t], Z[t + 1, :H], H32, B32))


def _forward_window(xp, kernel, W, Z, A, tanh_c):
    """The whole recurrence in one launch: a block per batch column (cuda_kernels)."""
    T, H, B = tanh_c.shape
    I = Z.shape[1] - H - 1
    grid, block, shared = cuda_kernels.window_launch(H, I, B, W.itemsize)
    W_T = xp.ascontiguousarray(W.T)                          # (K, G): see the kernel
    kernel(grid, block, (W_T, Z, A, tanh_c, np.int32(T), np.int32(H), np.int32(I), np.int32(B)), shared_mem=shared)


def lstm_backward(dh_out, cache, dh_T=None, dc_T=None):
    """Backpropagate through the window the cache came from (truncated BPTT).

    Args:
        dh_out: (T, H, B) gradient of the loss with respect to each h_t from above
            (the output layer, or the next layer's input). Not modified.
        cache: from lstm_forward.
        dh_T, dc_T: (H, B) gradient reaching the final state from a later window, or
            None for zero: the window's end is where truncation cuts the graph.

    Returns:
        grads: dict with W_x (G, I), W_h (G, H), b (G,).
        dx: (T, I, B) gradient with respect to the input sequence (a view into the
            cache's buffers).
        (dh0, dc0): (H, B) each, gradient with respect to the initial state.
    """
    W, Z, A, tanh_c, kernels, workspace = cache
    xp = array_module(dh_out)
    T, H, B = tanh_c.shape
    I = Z.shape[1] - H - 1
    dtype = A.dtype
    W_T = W[:, : H + I].T                                    # (H + I, G)
    DZ = empty(workspace, "DZ", (T + 1, H + I, B), dtype, xp)   # DZ[t] = W_T da_t; DZ[T, :H] = dh_T
    da = empty(workspace, "da", (T, 4 * H, B), dtype, xp)
    DZ[T, :H] = 0.0 if dh_T is None else dh_T
    dc_carry = xp.zeros((H, B), dtype=dtype) if dc_T is None else dc_T.copy()

    if kernels is None:
        _backward_loop_numpy(xp, xp.ascontiguousarray(W_T), dh_out, A, tanh_c, DZ, dc_carry, da)
    elif kernels.backward_window is not None and cuda_kernels.window_fits(H, I):
        _backward_window(xp, kernels.backward_window, W, dh_out, A, tanh_c, DZ, dc_carry, da)
    else:
        _backward_loop_fused(xp, kernels.backward_step, xp.ascontiguousarray(W_T), dh_out, A, tanh_c, DZ, dc_carry, da)

    dW = _sum_outer_products(xp, da, Z[:T])                 # (G, K)
    grads = {"W_h": dW[:, :H], "W_x": dW[:, H : H + I], "b": dW[:, H + I]}
    return grads, DZ[:T, H:], (DZ[0, :H].copy(), dc_carry)


CHUNK = 32   # time steps per block of the vectorised work in the backward (fits in L2)


def _backward_loop_numpy(xp, W_T, dh_out, A, tanh_c, DZ, dc_carry, da):
    """The reverse recurrence on the CPU: 7 NumPy calls a step.

    Every derivative factor that does not depend on the incoming gradient is computed
    ahead of the loop, a block of CHUNK steps at a time (so it is still in cache when the
    loop reaches it); the loop keeps only what carries dh and dc:
        da_o = dh * [tanh(c) o (1-o)]          da_i = dc * [g i (1-i)]
        da_f = dc * [c_prev f (1-f)]           da_g = dc * [i (1-g^2)]
        dc   = dc_carry + dh * [o (1-tanh(c)^2)],   dc_carry <- dc * f
    Fills da (T, G, B) and DZ, and updates dc_carry (it ends as dc0), in place.
    """
    T, H, B = tanh_c.shape
    S, G = 3 * H, 4 * H
    dtype = A.dtype
    da_cell = da[:, H:].reshape(T, 3, H, B)                  # the three dc-driven gates
    slope = xp.empty((CHUNK, S, B), dtype=dtype)             # s (1 - s) of o, i, f
    square = xp.empty((CHUNK, H, B), dtype=dtype)
    dc_from_dh = xp.empty((CHUNK, H, B), dtype=dtype)        # o (1 - tanh(c)^2)
    dh = xp.empty((H, B), dtype=dtype)
    dc = xp.empty((H, B), dtype=dtype)
    da_o, f, dh_next = da[:, :H], A[:, 2 * H : S], DZ[:, :H]
    matmul, multiply, add = xp.matmul, xp.multiply, xp.add
    for stop in range(T, 0, -CHUNK):
        start = max(0, stop - CHUNK)
        n = stop - start
        blocks, tc = A[start:stop], tanh_c[start:stop]
        o, i, g = blocks[:, :H], blocks[:, H : 2 * H], blocks[:, S:G]
        s, sq, k = slope[:n], square[:n], dc_from_dh[:n]
        xp.subtract(1.0, blocks[:, :S], out=s)
        xp.multiply(s, blocks[:, :S], out=s)
        xp.multiply(s[:, :H], tc, out=da[start:stop, :H])
        xp.multiply(s[:, H:], blocks[:, S:], out=da[start:stop, H:S])    # [s_i g; s_f c_prev]
        xp.multiply(g, g, out=sq)
        xp.subtract(1.0, sq, out=sq)
        xp.multiply(sq, i, out=da[start:stop, S:])
        xp.multiply(tc, tc, out=sq)
        xp.subtract(1.0, sq, out=sq)
        xp.multiply(sq, o, out=k)
        for t in range(stop - 1, start - 1, -1):
            add(dh_out[t], dh_next[t + 1], dh)
            multiply(dh, k[t - start], dc)
            add(dc, dc_carry, dc)
            multiply(da_o[t], dh, da_o[t])
            multiply(da_cell[t], dc, da_cell[t])
            multiply(dc, f[t], dc_carry)
            matmul(W_T, da[t], DZ[t])


def _backward_loop_fused(xp, kernel, W_T, dh_out, A, tanh_c, DZ, dc_carry, da):
    """The reverse recurrence with one fused step kernel: one launch and a matmul a step."""
    T, H, B = tanh_c.shape
    G = 4 * H
    grid, block = cuda_kernels.launch_shape(H, B)
    H32, B32 = np.int32(H), np.int32(B)
    dh_out = xp.ascontiguousarray(dh_out)
    for t in range(T - 1, -1, -1):
        kernel(grid, block, (dh_out[t], DZ[t + 1, :H], dc_carry, A[t, :G], A[t, G:], tanh_c[t], da[t], H32, B32))
        xp.matmul(W_T, da[t], out=DZ[t])


def _backward_window(xp, kernel, W, dh_out, A, tanh_c, DZ, dc_carry, da):
    """The whole reverse recurrence in one launch: a block per batch column (cuda_kernels).
    It takes W (G, K) itself, not its transpose: see the kernel."""
    T, H, B = tanh_c.shape
    I = DZ.shape[1] - H
    grid, block, shared = cuda_kernels.window_launch(H, I, B, W.itemsize)
    kernel(grid, block, (W, xp.ascontiguousarray(dh_out), A, tanh_c, DZ, dc_carry, da, np.int32(T), np.int32(H),
                         np.int32(I), np.int32(B)), shared_mem=shared)


def _sum_outer_products(xp, da, Z):
    """sum_t da[t] Z[t]^T: (T, G, B), (T, K, B) -> (G, K), as batched matmuls over blocks
    of time steps (a single matmul would need both arrays transposed into copies)."""
    T, G, B = da.shape
    K = Z.shape[1]
    total = xp.zeros((G, K), dtype=da.dtype)
    block = xp.empty((min(CHUNK, T), G, K), dtype=da.dtype)
    for start in range(0, T, CHUNK):
        stop = min(start + CHUNK, T)
        part = block[: stop - start]
        xp.matmul(da[start:stop], Z[start:stop].transpose(0, 2, 1), out=part)
        total += part.sum(axis=0)
    return total
