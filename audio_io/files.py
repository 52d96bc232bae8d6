"""Reading audio into float32 and writing it without ever leaving a half-written file
(through lstm_core.files.atomic, the project's one atomic writer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from lstm_core.files.atomic import atomic_output


class AudioError(ValueError):
    """A file cannot be used; the message names the file and the problem."""


def read_audio(path) -> tuple[np.ndarray, int]:
    """(samples (N, C) float32 in [-1, 1], sample rate) of any file soundfile reads."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file")
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from None
    return data, int(rate)


def output_problem(destination: Path, force: bool, source: Path | None = None, source_is: str = "the input file",
                   ) -> str | None:
    """Why a command must not write ``destination``, or None: it is ``source`` itself, it
    exists and ``force`` is off (nothing the user owns is replaced unasked), or its folder
    does not exist. One line, saying what to do instead."""
    destination = Path(destination)
    if source is not None and destination.exists() and destination.resolve() == Path(source).resolve():
        return f"{destination} is {source_is}: write the result somewhere else"
    if destination.is_dir():
        return f"{destination} is a folder: give a file name"
    if destination.exists() and not force:
        return f"{destination} exists: choose another name or pass --force to replace it"
    if not destination.parent.is_dir():
        return f"{destination.parent}: no such folder"
    return None


def write_audio_atomic(path, samples: np.ndarray, rate: int, subtype: str | None = None):
    """Write ``samples`` (N,) or (N, C) to ``path`` through atomic_output."""
    with atomic_output(path) as temporary:
        sf.write(temporary, samples, rate, subtype=subtype)
