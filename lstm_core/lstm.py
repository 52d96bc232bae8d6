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

PARAM_NAMES = ("W_x", "W_h", "b")


def lstm_forward(x, params, h0, c0, kernels=None):
    """Run the layer over one window.

    Args:
        x: (T, I, B) input sequence.
        params: dict with W_x (G, I), W_h (G, H), b (G,).
        h0, c0: (H, B) initial state.
        kernels: fused (forward, backward) step kernels; None picks them by backend
            (CuPy's compiled kernels on a GPU, the NumPy loop on the CPU).

    Returns:
        h: (T, H, B) hidden state at every step (a view into the cache: do not write).
        (h_T, c_T): (H, B) each, the final state, as new arrays.
        cache: what lstm_backward needs.
    """
    xp = array_module(x)
    T, _, B = x.shape
    G, H = params["W_h"].shape
    dtype = x.dtype
    if kernels is None and is_gpu(xp):
        kernels = cuda_kernels.compile_kernels(xp, dtype.name)

    # What does not depend on the recurrence is done for all T steps at once: the input
    # projection W_x x_t + b lands directly in the gate buffer.
    gates = xp.matmul(params["W_x"], x)                     # (T, G, B)
    gates += params["b"][:, None]
    h = xp.empty((T + 1, H, B), dtype=dtype)                # h[0] = h0, h[t+1] = h_t
    c = xp.empty((T + 1, H, B), dtype=dtype)
    tanh_c = xp.empty((T, H, B), dtype=dtype)
    h[0] = h0
    c[0] = c0

    if kernels is None:
        _forward_loop_numpy(xp, params["W_h"], gates, h, c, tanh_c)
    else:
        _forward_loop_fused(xp, kernels[0], params["W_h"], gates, h, c, tanh_c)

    cache = (x, params, gates, h, c, tanh_c, kernels)
    return h[1:], (h[T].copy(), c[T].copy()), cache


def _forward_loop_numpy(xp, W_h, gates, h, c, tanh_c):
    """The recurrence on the CPU: 10 NumPy calls a step, no allocation.

    One tanh serves all four gates: sigmoid(a) = 0.5 + 0.5 * tanh(a / 2), so the rows of
    the sigmoid gates are halved once per window (in the weights and the input part), and
    each step applies tanh to the whole (G, B) block, then maps the first 3H rows back.
    ``gates`` enters holding the input part of the pre-activations and leaves holding the
    activations.
    """
    T, G, B = gates.shape
    H = G // 4
    S = 3 * H
    W_h_half = W_h.copy()
    W_h_half[:S] *= 0.5
    gates[:, :S] *= 0.5
    rec = xp.empty((G, B), dtype=gates.dtype)
    ig = xp.empty((H, B), dtype=gates.dtype)
    for t in range(T):
        a = gates[t]
        xp.matmul(W_h_half, h[t], out=rec)
        xp.add(a, rec, out=a)
        xp.tanh(a, out=a)
        sig = a[:S]
        xp.multiply(sig, 0.5, out=sig)
        xp.add(sig, 0.5, out=sig)
        o, i, f, g = a[:H], a[H : 2 * H], a[2 * H : S], a[S:]
        xp.multiply(f, c[t], out=c[t + 1])
        xp.multiply(i, g, out=ig)
        xp.add(c[t + 1], ig, out=c[t + 1])
        xp.tanh(c[t + 1], out=tanh_c[t])
        xp.multiply(o, tanh_c[t], out=h[t + 1])


def _forward_loop_fused(xp, kernel, W_h, gates, h, c, tanh_c):
    """The recurrence with one fused step kernel: a matmul and one launch a step."""
    T, G, B = gates.shape
    H = G // 4
    grid, block = cuda_kernels.launch_shape(H, B)
    rec = xp.empty((G, B), dtype=gates.dtype)
    H32, B32 = np.int32(H), np.int32(B)
    for t in range(T):
        xp.matmul(W_h, h[t], out=rec)
        # gates[t] is both the input part (read) and the activations (written): each
        # thread reads its four entries before writing them, so in-place is safe.
        kernel(grid, block, (rec, gates[t], c[t], gates[t], c[t + 1], tanh_c[t], h[t + 1], H32, B32))


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
        dx: (T, I, B) gradient with respect to the input sequence.
        (dh0, dc0): (H, B) each, gradient with respect to the initial state.
    """
    x, params, gates, h, c, tanh_c, kernels = cache
    xp = array_module(dh_out)
    T, G, B = gates.shape
    H = G // 4
    dh_rec = xp.zeros((H, B), dtype=gates.dtype) if dh_T is None else dh_T.copy()
    dc_carry = xp.zeros((H, B), dtype=gates.dtype) if dc_T is None else dc_T.copy()

    if kernels is None:
        da = _backward_loop_numpy(xp, params["W_h"], dh_out, gates, c, tanh_c, dh_rec, dc_carry)
    else:
        da = _backward_loop_fused(xp, kernels[1], params["W_h"], dh_out, gates, c, tanh_c, dh_rec, dc_carry)

    # Weight gradients as single large contractions over all T * B columns, after the loop.
    grads = {
        "W_x": xp.tensordot(da, x, axes=([0, 2], [0, 2])),       # (G, I)
        "W_h": xp.tensordot(da, h[:-1], axes=([0, 2], [0, 2])),  # (G, H)
        "b": da.sum(axis=(0, 2)),                                 # (G,)
    }
    dx = xp.matmul(params["W_x"].T, da)                           # (T, I, B)
    return grads, dx, (dh_rec, dc_carry)


def _backward_loop_numpy(xp, W_h, dh_out, gates, c, tanh_c, dh_rec, dc_carry):
    """The reverse recurrence on the CPU: 7 NumPy calls a step.

    Every derivative factor that does not depend on the incoming gradient is computed for
    the whole window before the loop, so the loop keeps only what carries dh and dc:
        da_o = dh * [tanh(c) o (1-o)]          da_i = dc * [g i (1-i)]
        da_f = dc * [c_prev f (1-f)]           da_g = dc * [i (1-g^2)]
        dc   = dc_carry + dh * [o (1-tanh(c)^2)],   dc_carry <- dc * f
    Returns da (T, G, B); updates dh_rec (ends as dh0) and dc_carry (ends as dc0) in place.
    """
    T, G, B = gates.shape
    H = G // 4
    o, i, f, g = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    da = xp.empty_like(gates)
    da[:, :H] = tanh_c * o * (1 - o)
    da[:, H : 2 * H] = g * i * (1 - i)
    da[:, 2 * H : 3 * H] = c[:-1] * f * (1 - f)
    da[:, 3 * H :] = i * (1 - g * g)
    dc_from_dh = o * (1 - tanh_c * tanh_c)                   # (T, H, B)
    da_cell = da[:, H:].reshape(T, 3, H, B)                   # the three dc-driven gates
    W_h_T = W_h.T
    dh = xp.empty((H, B), dtype=gates.dtype)
    dc = xp.empty((H, B), dtype=gates.dtype)
    for t in range(T - 1, -1, -1):
        xp.add(dh_out[t], dh_rec, out=dh)
        xp.multiply(dh, dc_from_dh[t], out=dc)
        xp.add(dc, dc_carry, out=dc)
        xp.multiply(da[t, :H], dh, out=da[t, :H])
        xp.multiply(da_cell[t], dc, out=da_cell[t])
        xp.multiply(dc, f[t], out=dc_carry)
        xp.matmul(W_h_T, da[t], out=dh_rec)
    return da


def _backward_loop_fused(xp, kernel, W_h, dh_out, gates, c, tanh_c, dh_rec, dc_carry):
    """The reverse recurrence with one fused step kernel: one launch and a matmul a step."""
    T, G, B = gates.shape
    H = G // 4
    grid, block = cuda_kernels.launch_shape(H, B)
    da = xp.empty_like(gates)
    W_h_T = W_h.T
    H32, B32 = np.int32(H), np.int32(B)
    dh_out = xp.ascontiguousarray(dh_out)
    for t in range(T - 1, -1, -1):
        kernel(grid, block, (dh_out[t], dh_rec, dc_carry, gates[t], c[t], tanh_c[t], da[t], H32, B32))
        xp.matmul(W_h_T, da[t], out=dh_rec)
    return da
