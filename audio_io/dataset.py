"""The dataset functions: from the pair options (or a capture set) to the training audio,
the validation audio and the facts.

Training (capture/) and the run report both call them with the options the run stored, so
the audio the report plays is exactly the audio that was validated: the split, its default
and the checks live here and nowhere else.

    options = PairOptions("dry.wav", "wet.wav")            # the last 20 % validates
    data = load_dataset(options)                            # raises AudioError
    data.x_train, data.y_train, data.x_val, data.y_val      # (N,) float32 each
    data.epoch_batches(segment, warmup, batch, rng)         # one epoch of training windows

    data = load_capture_dataset(read_capture_set("set.csv"), options)   # one row per knob setting
    data.validation                                          # the end of every row, scored apart
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np

from lstm_core.run import ValidationPart
from lstm_core.training import DEFAULT_INPUT_LEVEL, default_input_level

from .capture_set import CaptureSet, CaptureSetError
from .demo import pair_file
from .files import AudioError
from .linearity import linear_fit_esr
from .pair import SILENCE_PEAK, Pair, load_pair
from .windows import epoch_batches, grid_starts, recordings_batches, split_validation, window_count

DEFAULT_VAL_FRACTION = 0.2    # without a separate validation pair, the last 20 % of the pair validates
MIN_VALIDATION = 1000         # samples


@dataclass(frozen=True)
class PairOptions:
    input: str
    target: str
    val_input: str | None = None      # a separate validation pair (both or neither)...
    val_target: str | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION   # ...else this last part of the pair, split in time
    channel: int | None = None        # the channel of multi-channel files; None mixes down
    trim: bool = False                # allow different lengths, cutting the longer
    align: bool = False               # compensate the delay found between input and target

    @classmethod
    def from_dict(cls, options: dict) -> "PairOptions":
        """The pair options among a run's stored options (which hold more)."""
        return cls(**{f.name: options[f.name] for f in fields(cls) if f.name in options})

    def located(self, run_folder) -> "PairOptions":
        """The same options with each file looked up where it is now: a file that lay in
        the run folder (the demo pair) is found there after the folder moved (demo.pair_file)."""
        moved = {name: pair_file(getattr(self, name), run_folder) for name in ("input", "target", "val_input",
                                                                              "val_target") if getattr(self, name)}
        return replace(self, **moved)


@dataclass
class Dataset:
    x_train: np.ndarray       # (N,) float32: the training input...
    y_train: np.ndarray       # ...and target
    x_val: np.ndarray         # (M,) float32: the validation input...
    y_val: np.ndarray         # ...and target
    pair: Pair                # the checked training pair (rate, delay, notes)
    pair_name: str = ""       # the input file, for messages
    val_follows_train: bool = True   # the validation audio is the pair's end (not a separate pair)

    @property
    def val_history(self) -> np.ndarray | None:
        """The input just before the validation audio in the same recording (the training
        part, when the validation part is the pair's end), or None for a separate
        validation pair. Validation runs the model over its end first, forward only, so
        the validation audio is scored from a warmed-up state, as training scores every
        window after its warm-up; only the input is read, so nothing of the target leaks."""
        return self.x_train if self.val_follows_train else None

    @property
    def rate(self) -> int:
        return self.pair.rate

    @property
    def validation(self) -> list:
        return [ValidationPart(self.x_val, self.y_val, self.val_history)]

    @property
    def facts(self) -> dict:
        """What a run records about its pair (model.npz's "pair"; the report shows it)."""
        rate = self.rate
        return {"seconds": self.pair.input.size / rate, "train_seconds": self.x_train.size / rate,
                "val_seconds": self.x_val.size / rate, "delay": int(self.pair.delay),
                "aligned": bool(self.pair.aligned), "notes": list(self.pair.notes)}

    @property
    def input_rms(self) -> float:
        """The training input's RMS level (a full-scale sine's is 0.71)."""
        return rms(self.x_train)

    @property
    def linear_esrs(self) -> tuple:
        """A one-item tuple: how closely a linear filter explains the training part
        (linearity.py), for the input level's and the model size's defaults
        (training.default_input_level, default_hidden_size)."""
        return (linear_fit_esr(self.x_train, self.y_train),)

    def window_count(self, segment: int, warmup: int) -> int:
        return window_count(self.x_train.size, segment, warmup)

    def epoch_batches(self, segment: int, warmup: int, batch: int, rng: np.random.Generator,
                      knob_jitter: float = 0.0, knob_blend: float = 0.0):
        """One epoch of training windows: (x (T, 1, B), y (T, B)), T = warmup + segment
        (one pair has no knobs: ``knob_jitter`` and ``knob_blend`` are not used)."""
        return epoch_batches(self.x_train, self.y_train, segment, warmup, batch, rng)

    def check_window(self, warmup: int, segment: int):
        """Raise AudioError unless the training part holds one whole window."""
        n = self.x_train.size
        if n < warmup + segment:
            raise AudioError(f"{self.pair_name}: {n} samples ({n / self.rate:.2f} s) are left for training, fewer than "
                             f"one window ({warmup} + {segment}); use a longer recording, a shorter --segment or "
                             f"--warmup, or --val-input/--val-target")


def rms(*signals: np.ndarray) -> float:
    """sqrt(mean(signal^2)) over every signal together, in float64, one at a time (no copy
    of them all); 0 when they hold no samples."""
    energy = sum(float(x @ x) for x in (np.asarray(signal, dtype=np.float64) for signal in signals))
    samples = sum(np.size(signal) for signal in signals)
    return float(np.sqrt(energy / samples)) if samples else 0.0


def load_dataset(options: PairOptions) -> Dataset:
    """The checked pair, split for validation. Raises AudioError naming the file and what
    to do: the pair's own checks (audio_io.pair), then too little or silent validation."""
    pair = load_pair(options.input, options.target, options.channel, options.trim, options.align)
    if options.val_input or options.val_target:
        if not (options.val_input and options.val_target):
            raise AudioError("--val-input and --val-target go together: give both, or neither")
        val = load_pair(options.val_input, options.val_target, options.channel, options.trim, options.align)
        if val.rate != pair.rate:
            raise AudioError(f"{options.val_input} is {val.rate} Hz but the training pair is {pair.rate} Hz")
        data = Dataset(pair.input, pair.target, val.input, val.target, pair, options.input, val_follows_train=False)
    else:
        data = Dataset(*split_validation(pair.input, pair.target, options.val_fraction), pair, options.input)
    if data.x_val.size < MIN_VALIDATION:
        raise AudioError(f"only {data.x_val.size} samples are left for validation; use a larger --val-fraction "
                         f"or --val-input/--val-target")
    if np.abs(data.y_val).max() < SILENCE_PEAK:
        raise AudioError("the validation target is silent: choose other validation audio (--val-input/--val-target "
                         "or --val-fraction)")
    return data


@dataclass
class Recording:
    """One row of a capture set, read, checked and split."""

    name: str
    knobs: tuple              # as written in the CSV
    controls: tuple           # scaled to 0..1 over the knobs' ranges: the model's other inputs
    x_train: np.ndarray       # (N,) float32
    y_train: np.ndarray
    x_val: np.ndarray         # (M,) float32: the end of the recording
    y_val: np.ndarray
    pair: Pair
    held_out: bool = False    # never trained on (--holdout): validated only, to measure interpolation


@dataclass
class CaptureDataset:
    """A capture set ready to train: every row's training part, windows mixed across rows,
    and every row's end validated apart (held-out rows too, never trained on)."""

    capture_set: CaptureSet
    ranges: dict              # knob name -> (low, high): what 0 and 1 of each model input mean
    recordings: list          # Recording, in the CSV's order
    rate: int

    @property
    def training(self) -> list:
        return [r for r in self.recordings if not r.held_out]

    @property
    def validation(self) -> list:
        return [ValidationPart(r.x_val, r.y_val, r.x_train, r.controls, r.name, r.held_out) for r in self.recordings]

    @property
    def facts(self) -> dict:
        """What a run records about its capture set (model.npz's "pair" and "knobs")."""
        return {"capture_set": self.capture_set.path, "knob_names": list(self.capture_set.knob_names),
                "knob_ranges": {k: list(v) for k, v in self.ranges.items()},
                "rows": [{"name": r.name, "knobs": list(r.knobs), "held_out": r.held_out,
                          "seconds": r.pair.input.size / self.rate, "delay": int(r.pair.delay),
                          "aligned": bool(r.pair.aligned), "notes": list(r.pair.notes)} for r in self.recordings],
                "seconds": sum(r.pair.input.size for r in self.recordings) / self.rate,
                "train_seconds": sum(r.x_train.size for r in self.training) / self.rate,
                "val_seconds": sum(r.x_val.size for r in self.recordings) / self.rate}

    @property
    def input_rms(self) -> float:
        """The RMS level of every trained row's input together."""
        return rms(*(r.x_train for r in self.training))

    @property
    def linear_esrs(self) -> tuple:
        """How closely a linear filter explains each trained row (linearity.py), in order:
        the input level's and the model size's defaults (training.default_input_level,
        default_hidden_size), so that a set is linear, or a high-gain one, only when every
        setting is. The rows after one that settles it (a row in neither class, or in
        another class than those before it) are not fitted."""
        esrs = []
        for r in self.training:
            esrs.append(linear_fit_esr(r.x_train, r.y_train))
            if default_input_level(*esrs) == DEFAULT_INPUT_LEVEL:      # settled: no later row can change it
                break
        return tuple(esrs)

    def window_count(self, segment: int, warmup: int) -> int:
        return sum(window_count(r.x_train.size, segment, warmup) for r in self.training)

    def epoch_batches(self, segment: int, warmup: int, batch: int, rng: np.random.Generator,
                      knob_jitter: float = 0.0, knob_blend: float = 0.0):
        """One epoch of windows from every trained row, mixed: (x (T, 1 + K, B), y (T, B));
        the fraction ``knob_blend`` of a row's windows blended with a neighbouring setting,
        and noise of deviation ``knob_jitter`` on the knob inputs of rows without one
        (windows.recordings_batches)."""
        return recordings_batches(self._trained, segment, warmup, batch, rng, knob_jitter, knob_blend,
                                  self._neighbours if knob_blend else None)

    @cached_property
    def _trained(self) -> list:
        return [(r.x_train, r.y_train, r.controls) for r in self.training]

    @cached_property
    def _neighbours(self) -> list:
        return blend_neighbours(self._trained)

    @property
    def unblendable(self) -> list:
        """The names of the trained rows that have no neighbour to blend with (blend_neighbours)."""
        return [r.name for r, near in zip(self.training, self._neighbours) if not near]

    def check_window(self, warmup: int, segment: int):
        """Raise CaptureSetError unless every trained row holds one whole window."""
        for r in self.training:
            if grid_starts(r.x_train.size, segment, warmup, np.random.default_rng(0)).size == 0:
                raise CaptureSetError(f"{self.capture_set.path}, row {self._row(r)}: {r.x_train.size / self.rate:.2f} "
                                      f"s are left for training, fewer than one window ({warmup} + {segment} samples); "
                                      f"use a longer recording, or a shorter --segment or --warmup")

    def _row(self, recording: Recording) -> int:
        return next(row.row for row in self.capture_set.rows if row.name == recording.name)


def blend_neighbours(recordings: list) -> list:
    """For each recording (x, y, controls), the indices of those it may be blended with
    (windows.recordings_batches): the same input audio (equal arrays, so the same dry take
    with the same alignment), a setting that differs in one knob alone, and no recording of
    that audio whose setting lies between the two on that knob. On a grid of settings these
    are its neighbours along each knob. Returns a tuple of indices per recording."""
    takes = {}
    for index, (x, _, _) in enumerate(recordings):
        takes.setdefault((x.size, hashlib.sha1(x.tobytes()).digest()), []).append(index)
    neighbours = [() for _ in recordings]
    for members in takes.values():
        for a in members:
            near = []
            for b in members:
                knob = _the_one_knob_apart(recordings[a][2], recordings[b][2])
                if knob is None or not np.array_equal(recordings[a][0], recordings[b][0]):
                    continue
                low, high = sorted((recordings[a][2][knob], recordings[b][2][knob]))
                between = [m for m in members if _the_one_knob_apart(recordings[a][2], recordings[m][2]) == knob
                           and low < recordings[m][2][knob] < high]
                if not between:
                    near.append(b)
            neighbours[a] = tuple(near)
    return neighbours


def _the_one_knob_apart(a: tuple, b: tuple) -> int | None:
    """The index of the one knob whose value differs between settings a and b, or None
    (the same setting, or more than one knob apart)."""
    apart = [k for k, (p, q) in enumerate(zip(a, b)) if p != q]
    return apart[0] if len(apart) == 1 else None


def load_capture_dataset(capture_set: CaptureSet, options: PairOptions | None = None, ranges: dict | None = None,
                         holdout: tuple = ()) -> CaptureDataset:
    """Every row of ``capture_set`` read and checked as a pair (the channel, trim, align and
    val_fraction of ``options``), its end held out for validation; knobs scaled over
    ``ranges`` (name -> (low, high); default: the set's own smallest and largest values);
    rows named in ``holdout`` validated only. Raises CaptureSetError (a row's AudioError,
    with the row in front) naming the file, row and column."""
    options = options or PairOptions("", "")
    names = [row.name for row in capture_set.rows]
    unknown = [name for name in holdout if name not in names]
    if unknown:
        raise CaptureSetError(f"{capture_set.path}: --holdout {unknown[0]}: no row of that name (the rows are "
                              f"{', '.join(names)})")
    if len(set(holdout)) >= len(names):
        raise CaptureSetError(f"{capture_set.path}: --holdout leaves no row to train on")
    scale = capture_set.ranges(ranges)
    recordings, rate = [], None
    for row in capture_set.rows:
        try:
            pair = load_pair(row.input, row.target, options.channel, options.trim, options.align)
            x_train, y_train, x_val, y_val = split_validation(pair.input, pair.target, options.val_fraction)
            if x_val.size < MIN_VALIDATION or np.abs(y_val).max() < SILENCE_PEAK:
                raise AudioError(f"the end kept for validation is too short or silent ({x_val.size} samples); use a "
                                 f"longer recording or a larger --val-fraction")
        except AudioError as exc:
            raise CaptureSetError(f"{capture_set.path}, row {row.row} ({row.name}): {exc}") from None
        if rate is not None and pair.rate != rate:
            raise CaptureSetError(f"{capture_set.path}, row {row.row} ({row.name}): {pair.rate} Hz, but row "
                                  f"{capture_set.rows[0].row} is {rate} Hz: resample so that every row has the same "
                                  f"sample rate")
        rate = pair.rate
        controls = tuple((value - scale[name][0]) / (scale[name][1] - scale[name][0])
                         for name, value in zip(capture_set.knob_names, row.knobs))
        recordings.append(Recording(row.name, row.knobs, controls, x_train, y_train, x_val, y_val, pair,
                                    row.name in holdout))
    return CaptureDataset(capture_set, scale, recordings, rate)
