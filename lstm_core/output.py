"""The output layer: a linear read-out of the top hidden state, plus the input skip.

    y_t = W h_t + b + skip * x_t[0]

With the skip on (the default), the LSTM only has to learn the difference between the
effect and the dry signal, which for most effects is far smaller than the signal itself,
and the untrained model already passes the audio through.

Shapes: h (T, H, B), x (T, I, B), y (T, B); W (1, H), b (1,).
"""

from __future__ import annotations

from .backend import array_module
from .workspace import empty

def output_forward(h, params, x, skip: bool):
    """y (T, B) from h (T, H, B); x[:, 0] (the audio channel) is added when ``skip``."""
    y = (params["W"] @ h)[:, 0, :] + params["b"]
    if skip:
        y += x[:, 0, :]
    return y, (h, params)


def output_backward(dy, cache, workspace=None):
    """Gradients for dy (T, B): ({W (1, H), b (1,)}, dh (T, H, B)); dh in the workspace's
    buffer when one is given.

    The skip's gradient (dy itself, to x[:, 0]) is the model's business: it knows whether
    the skip is on.
    """
    h, params = cache
    xp = array_module(dy)
    grads = {
        "W": xp.einsum("tb,thb->h", dy, h)[None, :],
        "b": dy.sum(keepdims=True).reshape(1),
    }
    T, H, B = h.shape
    dh = empty(workspace, "out.dh", (T, H, B), dy.dtype, xp)
    xp.multiply(params["W"][0][None, :, None], dy[:, None, :], out=dh)
    return grads, dh
