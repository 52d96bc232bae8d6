"""A run folder as train.py left it: the model's facts, the history, the validation audio.

    model.npz            weights and facts (lstm_core.files.npz.load_model)
    history.csv          one row per epoch: epoch, train_loss, val_esr, samples_per_s, seconds
    val_prediction.wav   the best model's output for the validation audio

The validation input and target are read again from the pair the run names, through the
same dataset function training used (audio_io.dataset.load_dataset, with the options the
run stored), so they are exactly the audio that was validated; when those files are gone
the report goes on without audio and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_io.capture_set import read_capture_set
from audio_io.dataset import PairOptions, load_capture_dataset, load_dataset
from audio_io.demo import pair_file
from audio_io.files import read_audio
from lstm_core.files.history import HistoryError, read_history
from lstm_core.files.model_file import ModelFileError
from lstm_core.devices import CPU
from lstm_core.files.npz import load_model
from lstm_core.run import predict_validation


class ReportError(ValueError):
    """A report cannot be made; the message names the file and the problem (one line)."""


@dataclass
class Run:
    folder: Path
    meta: dict                   # model.npz's facts
    history: list                # one dict per epoch, HISTORY_COLUMNS, as numbers
    val_esr: float               # the best validation ESR (the model file's)

    @property
    def name(self) -> str:
        return self.folder.resolve().name

    @property
    def best_epoch(self) -> int:
        """The epoch model.npz was saved at; 0 is a fine-tune's starting model, kept
        because no epoch beat it."""
        epoch = self.meta.get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0:
            return epoch
        finite = [row for row in self.history if math.isfinite(row["val_esr"])] or self.history
        return int(min(finite, key=lambda row: row["val_esr"])["epoch"])

    @property
    def diverged_epochs(self) -> list:
        """The epochs whose training loss or validation ESR was not a finite number."""
        return [row["epoch"] for row in self.history
                if not (math.isfinite(row["train_loss"]) and math.isfinite(row["val_esr"]))]


def distinct_names(folders: list) -> list[str]:
    """Names for the runs in ``folders`` that tell them apart: each folder's own name, or
    as many of its parents in front as it takes (runs/a/amp and old/b/amp: a/amp, b/amp)."""
    paths = [Path(folder).resolve() for folder in folders]
    for depth in range(1, max(len(path.parts) for path in paths) + 1):
        names = [str(Path(*path.parts[-depth:])) for path in paths]
        if len(set(names)) == len(set(paths)):
            return names
    return [str(path) for path in paths]


@dataclass
class ValidationAudio:
    input: np.ndarray            # (N,) float32
    target: np.ndarray           # (N,)
    prediction: np.ndarray       # (N,)
    rate: int


def load_run(folder) -> Run:
    """The run in ``folder``. Raises ReportError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such run folder")
    try:
        _, _, meta = load_model(folder / "model.npz")
    except ModelFileError as exc:
        raise ReportError(str(exc)) from None
    try:
        history = read_history(folder / "history.csv")
    except HistoryError as exc:
        raise ReportError(str(exc)) from None
    val_esr = meta.get("val_esr")
    if not isinstance(val_esr, (int, float)) or not math.isfinite(val_esr):
        raise ReportError(f"{folder / 'model.npz'}: holds no validation ESR (not written by train.py?)")
    return Run(folder, meta, history, float(val_esr))


def validation_audio(run: Run, data=None) -> tuple[ValidationAudio | None, str]:
    """(the validation input, target and prediction, "") or (None, why they are missing).
    ``data``: the run's Dataset, or None to read the pair again."""
    options = run.meta.get("options") or {}
    if not (options.get("input") and options.get("target")):
        return None, "model.npz does not name the pair it was trained on (not written by train.py?)"
    try:
        if data is None:
            data = load_dataset(PairOptions.from_dict(options).located(run.folder))
        predicted, rate = read_audio(run.folder / "val_prediction.wav")
    except (ValueError, KeyError, TypeError) as exc:        # AudioError is a ValueError
        return None, f"the validation audio could not be read again ({exc})"
    x, y = data.x_val, data.y_val
    prediction = predicted[:, 0]
    if rate != data.rate or prediction.size != y.size:
        return None, (f"val_prediction.wav ({prediction.size} samples at {rate} Hz) does not match the validation "
                      f"part of the pair ({y.size} samples at {data.rate} Hz): were the files changed since the run?")
    return ValidationAudio(x, y, prediction, data.rate), ""


@dataclass
class Setting:
    """One row of a capture set as the run validated it."""

    name: str
    knobs: dict                  # knob name -> its value in the row (the knob's own units)
    esr: float                   # its val ESR at the best epoch (NaN if the file does not say)
    held_out: bool               # never trained on (--holdout)


def settings(run: Run) -> list:
    """The capture set's settings with their val ESRs (model.npz's val_parts and its rows),
    or [] for a run on a single pair."""
    parts = run.meta.get("val_parts") or []
    rows = {row.get("name"): row for row in (run.meta.get("pair") or {}).get("rows") or []}
    names = [knob.get("name") for knob in run.meta.get("knobs") or []]
    found = []
    for part in parts:
        row = rows.get(part.get("name"), {})
        esr = part.get("esr")
        found.append(Setting(str(part.get("name")), dict(zip(names, row.get("knobs") or [])),
                             float(esr) if isinstance(esr, (int, float)) else math.nan, bool(part.get("held_out"))))
    return found


def capture_audio(run: Run, names: list, data=None) -> tuple[dict, str]:
    """({setting name: ValidationAudio} for ``names``, "") from the capture set the run
    names and its model, or ({}, why not). ``data``: the run's CaptureDataset, or None to
    read the capture set again."""
    options = run.meta.get("options") or {}
    try:
        params, config, _ = load_model(run.folder / "model.npz")
        if data is None:
            capture_set = read_capture_set(pair_file(options["captures"], run.folder))   # found in a renamed run
            ranges = {name: tuple(values) for name, values in (options.get("knob_ranges") or {}).items()}
            pair = PairOptions.from_dict({**options, "input": "", "target": ""})
            data = load_capture_dataset(capture_set, pair, ranges, tuple(options.get("holdout") or ()))
    except (ValueError, KeyError, TypeError) as exc:        # AudioError and ModelFileError are ValueErrors
        return {}, f"the capture set could not be read again ({exc})"
    parts = {recording.name: part for recording, part in zip(data.recordings, data.validation)}
    audio = {}
    for name in [name for name in names if name in parts]:     # in the order asked for
        part = parts[name]
        audio[name] = ValidationAudio(part.x, part.y, predict_validation(params, config, part, CPU, np), data.rate)
    return audio, ""
