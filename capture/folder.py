"""The run folder: its default name, what it may replace, and the demo pair written into it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from audio_io.demo import DEMO_FILES, KNOB_DEMO_FILES
from audio_io.files import write_audio_atomic

from .config import DEMO_RATE, DEMO_SECONDS

RUN_FILES = ("model.npz", "checkpoint.npz", "history.csv", "val_prediction.wav", *DEMO_FILES, *KNOB_DEMO_FILES,
             "report.html", "curves.png", "prediction.png")


class FolderError(ValueError):
    """The run folder cannot be used; the message says what to do instead."""


def new_folder_name(name: str, parent: str = "runs") -> Path:
    """runs/<name>-<date-time>, with -2, -3 ... for runs started in the same second."""
    base = Path(parent) / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder, count = base, 1
    while folder.exists():
        count += 1
        folder = base.with_name(f"{base.name}-{count}")
    return folder


def prepare_folder(folder: Path, force: bool):
    """Make ``folder``, refusing to replace a run's files without ``force``. Raises FolderError."""
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{folder} exists and is not a folder")
    taken = [name for name in RUN_FILES if (folder / name).exists()]
    if taken and not force:
        raise FolderError(f"{folder} already holds {', '.join(taken)}: choose another --out, resume it with --resume, "
                          f"or pass --force to replace them")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise FolderError(f"{folder}: cannot write there (read-only, or not yours): choose another --out")


def write_demo_pair(folder: Path, seed: int) -> tuple[str, str]:
    """The generated demo pair (audio_io.demo) as two 24-bit WAVs in ``folder``: their absolute paths."""
    from audio_io.demo import demo_pair

    dry, wet = demo_pair(DEMO_SECONDS, DEMO_RATE, seed)
    paths = tuple(folder / name for name in DEMO_FILES)
    for path, samples in zip(paths, (dry, wet)):
        write_audio_atomic(path, samples, DEMO_RATE, "PCM_24")
    return absolute(paths[0]), absolute(paths[1])


def absolute(path) -> str | None:
    """The path as an absolute string, so that what the run stores (and the report reads
    back) does not depend on the folder the run was started from."""
    return None if path is None else str(Path(path).resolve())
