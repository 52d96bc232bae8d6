"""Reading audio into float32 and writing it without ever leaving a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(ValueError):
    """A file cannot be used; the message names the file and the problem."""


def read_audio(path) -> tuple[np.ndarray, int]:
    """(samples (N, C) float32 in [-1, 1], sample rate) of any file soundfile reads."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from None
    return data, int(rate)


def write_audio_atomic(path, samples: np.ndarray, rate: int, subtype: str | None = None):
    """Write ``samples`` (N,) or (N, C) to ``path`` through a temporary file and a rename,
    so a crash never leaves a truncated file where a good one was expected."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        sf.write(temporary, samples, rate, subtype=subtype)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
