"""Central finite differences against an analytical gradient, in float64.

    numeric[k] = (8 [f(p + h e_k) - f(p - h e_k)] - [f(p + 2h e_k) - f(p - 2h e_k)]) / (12 h)

the fourth-order central stencil: its truncation error is O(h^4), so a step as large as
1e-3 can be used, and rounding noise (about 1e-16 |f| / h) stays far below the 1e-6 the
tests demand even where a gradient is small next to the loss itself.

The relative error of one entry is |a - n| / max(|a| + |n|, floor), with the floor set
to 1e-3 of the largest |a| + |n| of that array (plus a tiny absolute term): near zero the
absolute difference counts, so an entry that is zero up to rounding does not report a
huge relative error, while any entry of a size that matters is judged relatively.
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy


def numerical_gradient(f, array: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """d f() / d array by central differences; ``array`` is perturbed in place and restored."""
    grad = np.zeros(array.shape)                 # on the host, whatever device f runs on
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)

    def at(k, value):
        flat[k] = value
        return float(f())

    for k in range(flat.size):
        saved = float(flat[k])
        near = at(k, saved + step) - at(k, saved - step)
        far = at(k, saved + 2 * step) - at(k, saved - 2 * step)
        flat[k] = saved
        grad_flat[k] = (8.0 * near - far) / (12.0 * step)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Worst entry-wise relative error, robust near zero (see module doc)."""
    total = np.abs(analytic) + np.abs(numeric)
    floor = 1e-3 * total.max() + 1e-30
    return float((np.abs(analytic - numeric) / np.maximum(total, floor)).max())


def check_gradients(f, arrays: dict, analytic: dict, step: float = 1e-3) -> dict:
    """Worst relative error per named array.

    Args:
        f: a function of no arguments returning the loss, reading ``arrays``.
        arrays: name -> float64 array that ``f`` reads (parameters, initial state...).
        analytic: name -> the analytical gradient for each.
    """
    errors = {}
    for name, array in arrays.items():
        if array.dtype.name != "float64":
            raise TypeError(f"gradient checks need float64, {name} is {array.dtype}")
        numeric = numerical_gradient(f, array, step)
        errors[name] = relative_error(to_numpy(analytic[name]), numeric)
    return errors
