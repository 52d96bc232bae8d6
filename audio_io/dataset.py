"""One dataset function: from the pair options to the training audio, the validation audio
and the pair's facts.

Training (capture/) and the run report both call ``load_dataset`` with the options the run
stored, so the audio the report plays is exactly the audio that was validated: the split,
its default and the checks live here and nowhere else.

    options = PairOptions("dry.wav", "wet.wav")            # the last 20 % validates
    data = load_dataset(options)                            # raises AudioError
    data.x_train, data.y_train, data.x_val, data.y_val      # (N,) float32 each
    data.epoch_batches(segment, warmup, batch, rng)         # one epoch of training windows
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from .demo import pair_file
from .files import AudioError
from .pair import SILENCE_PEAK, Pair, load_pair
from .windows import epoch_batches, split_validation, window_count

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
    def facts(self) -> dict:
        """What a run records about its pair (model.npz's "pair"; the report shows it)."""
        rate = self.rate
        return {"seconds": self.pair.input.size / rate, "train_seconds": self.x_train.size / rate,
                "val_seconds": self.x_val.size / rate, "delay": int(self.pair.delay),
                "aligned": bool(self.pair.aligned), "notes": list(self.pair.notes)}

    def window_count(self, segment: int, warmup: int) -> int:
        return window_count(self.x_train.size, segment, warmup)

    def epoch_batches(self, segment: int, warmup: int, batch: int, rng: np.random.Generator):
        """One epoch of training windows: (x (T, 1, B), y (T, B)), T = warmup + segment."""
        return epoch_batches(self.x_train, self.y_train, segment, warmup, batch, rng)

    def check_window(self, warmup: int, segment: int):
        """Raise AudioError unless the training part holds one whole window."""
        n = self.x_train.size
        if n < warmup + segment:
            raise AudioError(f"{self.pair_name}: {n} samples ({n / self.rate:.2f} s) are left for training, fewer than "
                             f"one window ({warmup} + {segment}); use a longer recording, a shorter --segment or "
                             f"--warmup, or --val-input/--val-target")


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
