"""The one place that decides where arrays live: NumPy on the CPU, CuPy on an NVIDIA GPU.

Everything numerical in this project receives its array module (``xp``) from here, or
asks an array which module it belongs to (:func:`array_module`). Nothing else imports
CuPy, so a machine without it never notices CuPy exists.

Device names (the ``--device`` option of the command lines):
    ``cpu``  -> NumPy
    ``gpu``  -> CuPy; an error when CuPy or a usable GPU is missing (never a quiet CPU run)
    ``auto`` -> CuPy when a GPU is usable, else NumPy
"""

from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "gpu", "auto")


class BackendError(RuntimeError):
    """The requested device cannot be used; the message says why and what to do."""


def _import_cupy():
    """CuPy if it imports and sees at least one GPU, else (None, reason)."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed (pip install '.[gpu]', or cupy-cuda12x / cupy-cuda13x)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError when the driver is missing or too old
        return None, f"CuPy is installed but no GPU is usable ({exc})"
    if count < 1:
        return None, "CuPy is installed but sees no GPU"
    return cupy, ""


def get_xp(device: str):
    """The array module for a device name: ``numpy`` or ``cupy``. Raises BackendError."""
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "cpu":
        return np
    cupy, reason = _import_cupy()
    if cupy is not None:
        return cupy
    if device == "gpu":
        raise BackendError(f"--device gpu was asked for, but {reason}; use --device cpu or auto")
    return np


def gpu_unavailable_reason() -> str:
    """Empty when a GPU is usable through CuPy, else why not (for test skips)."""
    return _import_cupy()[1]


def array_module(array):
    """``numpy`` or ``cupy``: the module that owns ``array``."""
    if isinstance(array, np.ndarray) or np.isscalar(array):
        return np
    module = type(array).__module__.split(".")[0]
    if module == "cupy":
        import cupy

        return cupy
    return np


def is_gpu(xp) -> bool:
    return xp is not np


def to_numpy(array) -> np.ndarray:
    """A host copy (or the array itself when already on the host)."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get"):
        return array.get()
    return np.asarray(array)


def to_device(array, xp, dtype=None):
    """``array`` on the module ``xp`` (host -> GPU, GPU -> host, or a no-op), optionally cast."""
    if xp is np:
        return np.asarray(to_numpy(array), dtype=dtype)
    return xp.asarray(array, dtype=dtype)
