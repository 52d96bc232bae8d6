"""What a user asks of a run, checked, and what the run stores of it.

CaptureConfig is a new run as train.py's flags give it (None: the default), ResumeConfig
the few things a resumed run may change. RunOptions is what a run records in its
checkpoint and model.npz (``options``): the pair, the windows, the device. Its fields are
a file format other tools read: add, never rename.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from audio_io.dataset import DEFAULT_VAL_FRACTION, PairOptions
from lstm_core.devices import DeviceSettings, device_settings
from lstm_core.model import valid_chrono
from lstm_core.run import StopRule
from lstm_core.training import MAX_INPUT_LEVEL, TrainConfig, default_input_level

TRAIN_DEFAULTS = TrainConfig()
DEFAULT_EPOCHS = 1000
DEFAULT_PATIENCE = 25
DEMO_BUDGET = 60.0       # seconds: the demo shows learning within about a minute
DEMO_SECONDS = 40        # of generated audio
KNOB_DEMO_SECONDS = 15   # of generated audio, through each of the knob demo's settings
DEMOS = ("pair", "knobs")
DEMO_RATE = 44100


def read_chrono(text: str) -> float | None:
    """--chrono's (and a grid's chrono's) value: a number of samples, or 'auto' (None: the
    race decides). ValueError for anything else; the range is CaptureConfig.check's."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number of samples such as 50, 0 (off), or auto; got {text!r}") from None


def read_input_level(text: str) -> float:
    """--input-level's (and a grid's input_level's) value: a level in dBFS RMS, or 'off'
    (-inf: never louder). ValueError for anything else; the range is CaptureConfig.check's."""
    if text.strip().lower() == "off":
        return -math.inf
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"a level in dBFS RMS such as -20, or off; got {text!r}") from None


@dataclass(frozen=True)
class CaptureConfig:
    """A new run. Field names are train.py's flags."""

    input: str | None = None          # the dry recording (None with demo)
    target: str | None = None         # the same recording through the effect
    out: str | None = None            # the run folder (None: runs/<target name>-<date-time>)
    demo: str | None = None           # "pair": generate the demo pair into the run folder and train on it;
                                      # "knobs": a pedal captured at several drive and tone settings
    force: bool = False               # replace a run folder's files
    hidden: int | None = None         # model: hidden size...
    layers: int | None = None         # ...layers...
    skip: bool | None = None          # ...and skip (None: the default, or the --init model's)
    init: str | None = None           # fine-tune: start from this model file
    epochs: int | None = None         # stop rule (None: DEFAULT_EPOCHS, ...)
    budget: float | None = None
    patience: int | None = None
    lr: float = TRAIN_DEFAULTS.lr
    schedule: str = TRAIN_DEFAULTS.schedule   # the learning rate over the run (lstm_core.schedule)
    average: float = TRAIN_DEFAULTS.average   # decay of the parameters' running average, validated beside them
    rollback_above: float = TRAIN_DEFAULTS.rollback_above   # an epoch after the second more than this many
                                                            # times the best is rolled back; 0: never, and
                                                            # no probe after each batch (lstm_core.probe)
    undo_floor: float = TRAIN_DEFAULTS.undo_floor   # the batch guard's cuts of the rate stop at this fraction of lr
    batch: int | None = None          # None: the device's default (lstm_core.devices)
    segment: float | None = None
    warmup: int = TRAIN_DEFAULTS.warmup
    prewarm: int = TRAIN_DEFAULTS.prewarm   # samples of the window's end the warm-up starts from; 0: from zero
    tbptt: int = TRAIN_DEFAULTS.tbptt
    pre_emphasis: float = TRAIN_DEFAULTS.pre_emphasis   # a of the loss's e[n] - a e[n-1]; 0: off
    chrono: float | None = None       # a fresh model's gate biases give memories of 1 to this many samples; 0: the
                                      # forget bias +1 (model.init_params); None: a race of the two decides
                                      # (lstm_core/race.py)
    input_level: float | None = None  # dBFS RMS: a quieter training input is trained as if it were this loud
                                      # (TrainConfig.input_gain, set by session.py from the audio's level); -inf:
                                      # as it is; None: the pair's default (training.default_input_level), or as
                                      # it is with --init
    normalize_input: bool | None = None   # True: input_level 0 (0 dBFS RMS); False: -inf (sweep's
                                          # normalize_input=no); None: not given
    device: str | None = None         # "cpu", "gpu" or "auto" (None: auto)
    processes: int | None = None      # None: one per core on the CPU
    seed: int = 0
    val_input: str | None = None
    val_target: str | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    channel: int | None = None
    trim: bool = False
    align: bool = False
    captures: str | None = None       # a capture set (CSV): one conditioned model for every setting listed
    knob_range: tuple = ()            # (name, low, high) each: what 0 and 1 of a knob input mean
    holdout: tuple = ()               # capture-set rows validated only, never trained on
    knob_jitter: float = TRAIN_DEFAULTS.knob_jitter   # noise on the knob inputs of rows not blended (0..1 scale)
    knob_blend: float = TRAIN_DEFAULTS.knob_blend     # windows blended between neighbouring settings (a fraction)

    def check(self):
        """Raise ValueError, naming the flag, for a setting outside its range."""
        if self.input and not self.target:
            raise ValueError("give both INPUT and TARGET (or neither, for the demo)")
        if self.demo and (self.input or self.captures):
            raise ValueError("--demo trains on generated audio: leave out INPUT and TARGET, and --captures")
        if self.captures and self.input:
            raise ValueError("--captures lists the recordings: leave out INPUT and TARGET")
        if self.normalize_input is not None and self.input_level is not None:
            raise ValueError("--normalize-input is --input-level 0: give one of them")
        if self.input_level is not None and not self.input_level <= MAX_INPUT_LEVEL:      # NaN too
            raise ValueError(f"--input-level is a level in dBFS RMS, at most {MAX_INPUT_LEVEL:+g} (or off), "
                             f"got {self.input_level}")
        if self.init and (self.normalize_input or self.input_level not in (None, -math.inf)):
            # A fine-tune's input weights fit the input's real level; longer steps on them would undo them.
            raise ValueError(f"{'--normalize-input' if self.normalize_input else '--input-level'} shapes how a fresh "
                             f"model learns: leave it out with --init (a fine-tune trains on the input as it is)")
        if self.init and self.chrono:
            raise ValueError("--chrono sets a fresh model's start: leave it out with --init (a fine-tune starts from "
                             "the model's own weights)")
        capture_set = self.captures or self.demo == "knobs"
        if capture_set and (self.val_input or self.val_target):
            raise ValueError("a capture set validates on the end of every row: leave out --val-input and --val-target")
        if (self.knob_range or self.holdout) and not capture_set:
            raise ValueError("--knob-range and --holdout belong to a capture set: give --captures SET.csv")
        if not (self.demo or self.input or self.captures):
            raise ValueError("give INPUT and TARGET, or --captures SET.csv, or ask for the demo")
        for flag, value in {"--hidden": self.hidden, "--layers": self.layers, "--batch": self.batch}.items():
            if value is not None and value < 1:
                raise ValueError(f"{flag} must be at least 1, got {value}")
        if self.tbptt < 2:      # the pre-emphasised error of a 1-step slice is empty: nothing to learn from
            raise ValueError(f"--tbptt must be at least 2 time steps, got {self.tbptt}")
        if self.seed < 0:
            raise ValueError(f"--seed must be 0 or more, got {self.seed}")
        if self.processes is not None and self.processes < 1:
            raise ValueError(f"--processes must be at least 1, got {self.processes}")
        if self.warmup < 0:
            raise ValueError(f"--warmup must be 0 or more samples, got {self.warmup}")
        if self.prewarm < 0:
            raise ValueError(f"--prewarm must be 0 or more samples, got {self.prewarm}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be a positive number, got {self.lr}")
        if not 0.0 <= self.pre_emphasis < 1.0:
            raise ValueError(f"--pre-emphasis must be 0 (off) or more and below 1, got {self.pre_emphasis}")
        if not 0.0 <= self.average < 1.0:
            raise ValueError(f"--average must be 0 or more and below 1, got {self.average}")
        if self.chrono is not None and not valid_chrono(self.chrono):
            raise ValueError(f"--chrono must be 0 (off) or at least 3 samples, got {self.chrono}")
        if not (self.rollback_above == 0.0 or (math.isfinite(self.rollback_above) and self.rollback_above > 1.0)):
            raise ValueError(f"--rollback-above must be 0 (never) or above 1, got {self.rollback_above}")
        if not (math.isfinite(self.undo_floor) and 0.0 <= self.undo_floor <= 1.0):
            raise ValueError(f"--undo-floor must be between 0 (no floor) and 1 (a fraction of --lr), "
                             f"got {self.undo_floor}")
        if not (math.isfinite(self.knob_jitter) and 0.0 <= self.knob_jitter <= 1.0):
            raise ValueError(f"--knob-jitter must be between 0 and 1 (a knob's range is 0 to 1), "
                             f"got {self.knob_jitter}")
        if not (math.isfinite(self.knob_blend) and 0.0 <= self.knob_blend <= 1.0):
            raise ValueError(f"--knob-blend must be between 0 and 1 (a fraction of the windows), got {self.knob_blend}")
        if self.segment is not None and not (math.isfinite(self.segment) and self.segment > 0):
            raise ValueError(f"--segment must be a positive number of seconds, got {self.segment}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")

    @property
    def level_from_pair(self) -> bool:
        """Whether the input level is the pair's to decide (nothing given, no --init)."""
        return self.normalize_input is None and self.input_level is None and not self.init

    @property
    def size_from_pair(self) -> bool:
        """Whether the model's size is the pair's and the budget's to decide (no --hidden,
        --layers or --init: training.default_hidden_size)."""
        return self.hidden is None and self.layers is None and not self.init

    def resolved_input_level(self, *linear_esrs: float) -> float:
        """The level (dBFS RMS) the training input is trained as if it were at, at least;
        -inf: as it is (a fine-tune's default). When the level is the pair's to decide,
        ``linear_esrs`` (each trained pair's, Dataset.linear_esrs) decide it: a linear
        pair's is -inf, a high-gain one's louder (training.default_input_level)."""
        if self.level_from_pair:
            return default_input_level(*linear_esrs)
        if self.normalize_input is not None:
            return 0.0 if self.normalize_input else -math.inf
        return -math.inf if self.input_level is None else self.input_level     # None: a fine-tune

    def stop_rule(self) -> StopRule:
        return stop_rule_over({"epochs": DEFAULT_EPOCHS, "budget": DEMO_BUDGET if self.demo else None,
                               "patience": DEFAULT_PATIENCE}, self)

    def train_config(self) -> TrainConfig:
        return TrainConfig(lr=self.lr, warmup=self.warmup, tbptt=self.tbptt, schedule=self.schedule,
                           average=self.average, rollback_above=self.rollback_above, undo_floor=self.undo_floor,
                           knob_jitter=self.knob_jitter, knob_blend=self.knob_blend, pre_emphasis=self.pre_emphasis,
                           prewarm=self.prewarm, chrono=self.chrono or 0.0)

    @property
    def races(self) -> bool:
        """Whether the run's start is raced (lstm_core/race.py): a fresh model, --chrono not given."""
        return self.chrono is None and not self.init


@dataclass(frozen=True)
class ResumeConfig:
    """A run to continue from its checkpoint; None keeps what it stored."""

    folder: str
    input: str | None = None          # the pair, where it has moved to
    target: str | None = None
    epochs: int | None = None         # a new stop rule...
    budget: float | None = None
    patience: int | None = None
    device: str | None = None         # ...and device


def stop_rule_over(stored: dict, given) -> StopRule:
    """The stop rule ``stored`` with each of epochs, budget, patience that ``given`` sets."""
    rule = dict(stored)
    for name in ("epochs", "budget", "patience"):
        if getattr(given, name) is not None:
            rule[name] = getattr(given, name)
    return StopRule(**rule)


@dataclass(frozen=True)
class RunOptions:
    """What shapes the run besides the model and the optimizer (stored in checkpoints)."""

    input: str
    target: str
    val_input: str | None
    val_target: str | None
    val_fraction: float
    segment: float            # seconds of loss-carrying audio per window
    batch: int                # windows per batch
    seed: int
    channel: int | None
    trim: bool
    align: bool
    processes: int            # CPU processes sharing each batch (1: no workers)
    device: str               # as asked: "cpu", "gpu" or "auto"
    init: str | None = None   # the model the weights started from (--init), if any
    captures: str | None = None        # a capture set's CSV (then input and target are None)
    knob_ranges: dict | None = None    # knob name -> [low, high] given with --knob-range
    holdout: list | None = None        # capture-set rows never trained on

    @classmethod
    def from_dict(cls, options: dict) -> "RunOptions":
        return cls(**{f.name: options[f.name] for f in fields(cls) if f.name in options})

    def to_dict(self) -> dict:
        return asdict(self)

    def pair(self) -> PairOptions:
        """The pair options (for a capture set: the channel, trim, align and split every row shares)."""
        return PairOptions.from_dict({**self.to_dict(), "input": self.input or "", "target": self.target or ""})

    def device_settings(self, device: str) -> DeviceSettings:
        """The settings on ``device`` ("cpu" or "gpu", where the run's arrays live)."""
        return device_settings(device, batch=self.batch, segment=self.segment,
                               processes=self.processes if device == "cpu" else 1)
