"""A training run as a library: its state, its checkpoint, and the function that trains it.

    state = new_run(model, train, rule, options, params, seed)     # or load_checkpoint(folder)
    reason = train_run(state, data, device, folder, facts, reporter)

``train_run`` reads top to bottom like the recipe it is:

    if the run fine-tunes a model and has not begun: measure the starting model (epoch 0)
    for each epoch:
        for each batch of windows:  warm up, then one Adam update per TBPTT slice,
                                    at the rate the schedule gives (schedule.py); on the CPU,
                                    a batch whose loss jumps is undone, the rate halved down to
                                    a floor (spikes.py, schedule.undo_cut), and after
                                    the second epoch a short stretch of validation is scored
                                    (TrainConfig.probe_batches): a jump there goes back to the
                                    best epoch at half the rate (probe.py)
        validate (ESR on held-out audio, warmed up on the audio before it) the parameters
            and Adam's running average of them (adam.py); the better one counts. On the
            CPU its chunks (exact: chunks.py) are sized by the passes the last
            validation took (next_validation_chunk)
        better than the best so far: keep the parameters and Adam, write model.npz
        diverged (a loss or ESR that is not a finite number) or, after the second epoch,
            spiked (more than TrainConfig.rollback_above times the best) or climbing (worse
            than the epoch before, which was worse than the best, and more than CLIMB_ABOVE
            times the best): roll back to the best parameters and Adam, halve the rate, go on
        write checkpoint.npz and history.csv
        stop when the epochs, the time budget or the patience run out (a budget is a
            limit: the run stops before a batch and validation would end past it)

It owns the policy (which model is kept, what is saved when) and reports through a
Reporter, whose methods only tell; train.py prints them, a sweep hands them to its engine.
Files are written atomically after every epoch, and never hold a NaN (a diverged epoch
is rolled back before anything is saved), so an interrupted run (Ctrl-C, kill) resumes
from its last finished epoch, and a resumed run ends exactly where one run
straight through ends (tests/test_run.py), as far as the clock allows: a budget depends
on it.

Arrays in, files out: ``data`` is the pair already cut for training and validation
(audio_io.dataset.Dataset, or anything with the same fields); this module knows nothing
of audio files.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from . import __version__
from .adam import AdamState
from .backend import get_xp, to_device
from .devices import DeviceSettings
from .files.history import HISTORY_COLUMNS, write_history
from .files.model_file import ModelFileError
from .files.npz import check_params, load_npz, save_model, save_npz_atomic
from .inference import process_parallel_passes
from .inference import run as run_model
from .losses import ESR_EPS
from .model import ModelConfig, init_params
from .parallel import ParallelTrainer
from .probe import SpikeProbe, probe_part
from .schedule import CUT, decay, plateau_cut, undo_cut
from .spikes import BatchGuard
from .training import TrainConfig, segment_samples, train_window
from .workspace import Workspace

MODEL_FILE, CHECKPOINT_FILE, HISTORY_FILE = "model.npz", "checkpoint.npz", "history.csv"
__all__ = ["HISTORY_COLUMNS", "StopRule", "Progress", "RunState", "Reporter", "new_run", "save_checkpoint",
           "load_checkpoint", "train_run", "save_best_model", "ValidationPart", "predict_validation",
           "validation_errors", "validation_scores", "MIN_VALIDATION_CHUNK", "shortest_validation_chunk",
           "next_validation_chunk"]
SPIKE_FLOOR = 1e-9    # a best val ESR below this counts as this when spikes are judged (a best of 0 would make
                      # every epoch a spike)
SETTLING_EPOCHS = 2   # a spike in these first epochs is not rolled back: early epochs swing by 10 times and more
                      # and go on to new bests (the demo, RESULTS.md "Rolling back a spiked epoch")
CLIMB_ABOVE = 3.0     # an epoch worse than the one before, itself worse than the best, and more than this many
                      # times the best is climbing: rolled back like a spike (a slow climb passes the spike's
                      # 6 times and the 10 in one epoch; at 2 the compressor's climbs to 2.7 times, which
                      # go on to new bests, would be; RESULTS.md "Epoch 3 judged, and a climb rolled back")
MIN_VALIDATION_CHUNK = 4096   # samples: shorter chunks start too far from their true states (devices.py)
VALIDATION_PASSES = 3         # the passes (chunks.py) a validation's chunks are sized for: next_validation_chunk


@dataclass(frozen=True)
class StopRule:
    epochs: int = 1000                # at most this many epochs...
    budget: float | None = None       # ...or this many seconds of training wall time (not overshot)
    patience: int | None = 25         # ...or this many epochs without a better val ESR

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {self.epochs}")
        if self.budget is not None and not self.budget > 0:
            raise ValueError(f"--budget must be a positive number of seconds, got {self.budget}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"--patience must be at least 1, got {self.patience}")

    def reached(self, progress: "Progress") -> str | None:
        """Why a run at ``progress`` should stop ("epochs", "budget", "patience"), or None."""
        if self.budget is not None and (progress.seconds >= self.budget or (
                progress.budget_stop is not None and self.budget <= progress.budget_stop)):
            return "budget"
        if progress.epoch >= self.epochs:
            return "epochs"
        if self.patience is not None and progress.epoch - progress.best_epoch >= self.patience:
            return "patience"
        return None


@dataclass
class Progress:
    """Where a run stands, besides its parameters and Adam."""

    epoch: int = 0                        # epochs completed
    seconds: float = 0.0                  # training wall time so far (validation included)
    best_esr: float = math.inf
    best_epoch: int = 0
    history: list = field(default_factory=list)   # one dict per epoch (HISTORY_COLUMNS, lr, event)
    lr: float | None = None               # the base learning rate now (None: TrainConfig.lr, untouched)
    lr_cut_epoch: int = 0                 # the epoch after which the base rate was last cut
    recent_losses: list = field(default_factory=list)   # the batch guard's last kept batch losses since going
                                                        # back (spikes.py)...
    kept_losses: list = field(default_factory=list)     # ...and the last it kept, going back or not...
    best_losses: list = field(default_factory=list)     # ...and those when the best epoch ended
    back_limit: float | None = None       # after going back to the best epoch, a batch loss above this spikes
                                          # until the guard has kept 3 of its own (None: none; spikes.py)
    best_averaged: bool = False           # the best model is Adam's running average of the parameters
    batch_seconds: float = 0.0            # how long the latest batch took...
    validation_seconds: float = 0.0       # ...and the latest validation (0: none yet); the budget looks ahead by both
    budget_stop: float | None = None      # the budget the run stopped on, short of it (a resume keeps to it)
    best_seconds: float = 0.0             # the run's seconds when the best model was kept...
    best_parts: dict = field(default_factory=dict)   # ...and its ESR on each validation part (a capture set's)
    spikes_in_a_row: int = 0              # batches the guard undid since the last one it kept (spikes.py)
    race: dict | None = None              # the race of the run's starts (race.py): under way, or how it went
    heat_over: bool = False               # the run stopped at its race heat's end (a resume goes to the next heat)
    went_on_from: float | None = None     # the val ESR of the epoch the parameters go on from (None: they went
                                          # back to the best epoch's since; a climb is judged against it)
    validation_chunk: int = 0             # the shortest chunk the next validation cuts (0: MIN_VALIDATION_CHUNK,
                                          # the device's cut; next_validation_chunk)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Progress":
        return cls(**data)


@dataclass
class RunState:
    """Everything a run is, and everything its checkpoint holds."""

    model: ModelConfig
    train: TrainConfig
    rule: StopRule
    options: dict             # what shaped the run besides the model and the optimizer (the caller's, as is)
    params: dict              # the parameters now, on the run's device
    best_params: dict         # the parameters of the best epoch so far (model.npz)
    adam: AdamState
    progress: Progress
    rng: np.random.Generator  # draws every epoch's windows
    best_adam: AdamState = field(default_factory=AdamState)   # Adam as it was at the best epoch (roll-backs)

    @property
    def base_lr(self) -> float:
        return self.train.lr if self.progress.lr is None else self.progress.lr

    def on_device(self, xp) -> "RunState":
        """The same state with its arrays moved to ``xp``'s device (in place; returned)."""
        self.params = {k: to_device(v, xp) for k, v in self.params.items()}
        self.best_params = {k: to_device(v, xp) for k, v in self.best_params.items()}
        self.adam.on_device(xp)
        self.best_adam.on_device(xp)
        return self

    def candidates(self) -> list[dict]:
        """The models an epoch's validation scores, the better one counting: the parameters
        themselves and, when the run keeps one (TrainConfig.average), Adam's running
        average of them. The average rides out the jitter and the jumps of single steps;
        the parameters are ahead of it while the model still learns fast, and recover
        sooner from a jump the average has taken in (RESULTS.md, "Averaged parameters")."""
        return [self.params, self.adam.average] if self.adam.average else [self.params]

    def keep_best(self, params: dict | None = None):
        """``params`` (by default the parameters now) and Adam now become the best ones (copies)."""
        self.best_params = {k: v.copy() for k, v in (self.params if params is None else params).items()}
        self.best_adam = self.adam.copy()

    def roll_back(self, lr: float | None = None):
        """The parameters and Adam go back to the best ones (copies), and the base rate is cut
        (to ``lr`` where the caller knows it: the batch guard's floor, schedule.undo_cut)."""
        self.params = {k: v.copy() for k, v in self.best_params.items()}
        self.adam = self.best_adam.copy()
        self.progress.lr = self.base_lr * CUT if lr is None else lr
        self.progress.lr_cut_epoch = self.progress.epoch
        self.progress.went_on_from = None


def new_run(model: ModelConfig, train: TrainConfig, rule: StopRule, options: dict, seed: int,
            params: dict | None = None) -> RunState:
    """A run before its first epoch: ``params`` (a fine-tune's starting model), or fresh
    ones drawn from ``seed``; the same seed then draws the windows."""
    rng = np.random.default_rng(seed)
    if params is None:
        params = init_params(model, rng, chrono=train.chrono)
    return RunState(model, train, rule, dict(options), dict(params), {k: v.copy() for k, v in params.items()},
                    AdamState(), Progress(), rng)


# ----------------------------------------------------------------------------- the checkpoint

def _stored_train_config(stored: dict) -> TrainConfig:
    """A checkpoint's TrainConfig; a run from before a setting existed goes on as it began:
    no running average, no knob jitter or blending, a warm-up from zero, the forget bias +1
    at the start (chrono 0), no probe after each batch, no floor under the batch guard's
    cuts of the rate, and a spiked epoch rolled back at 10 times the best as then, and never
    under the constant schedule (from the third epoch on, and climbs too, as a new run's
    are judged)."""
    constant = stored.get("schedule", "constant") == "constant"
    before = {"average": 0.0, "knob_jitter": 0.0, "knob_blend": 0.0, "rollback_above": 0.0 if constant else 10.0,
              "prewarm": 0, "chrono": 0.0, "probe_batches": False, "undo_floor": 0.0}
    return TrainConfig(**{**before, **stored})


def save_checkpoint(folder, state: RunState, facts: dict):
    """checkpoint.npz in ``folder``: parameters, best parameters (``best.*``), Adam
    (``adam.*``), and in its JSON the configs, options, stop rule, progress, RNG state and
    the caller's ``facts`` (sample rate, the pair, the device)."""
    arrays = dict(state.params)
    arrays.update({f"best.{k}": v for k, v in state.best_params.items()})
    arrays.update(state.adam.to_arrays())
    arrays.update(state.best_adam.to_arrays("best_adam."))
    meta = {**facts, "kind": "checkpoint", "version": __version__, "model": state.model.to_dict(),
            "train": state.train.to_dict(), "options": dict(state.options), "rule": asdict(state.rule),
            "progress": state.progress.to_dict(), "rng": state.rng.bit_generator.state}
    save_npz_atomic(Path(folder) / CHECKPOINT_FILE, arrays, meta)


def load_checkpoint(folder) -> tuple[RunState, dict]:
    """(the run as its checkpoint left it, on the host; the checkpoint's JSON). Raises
    ModelFileError naming the file."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise ModelFileError(f"{folder}: no {CHECKPOINT_FILE} to resume from")
    arrays, meta = load_npz(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(f"{path}: not a training checkpoint")
    try:
        model = ModelConfig.from_dict(meta["model"])
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        state = RunState(
            model=model, train=_stored_train_config(meta["train"]),
            rule=StopRule(**meta["rule"]),
            options=dict(meta["options"]),
            params=check_params(path, arrays, model),
            best_params=check_params(path, {k[len("best."):]: v for k, v in arrays.items() if k.startswith("best.")},
                                     model),
            adam=AdamState.from_arrays({k: v for k, v in arrays.items() if k.startswith("adam.")}),
            progress=Progress.from_dict(meta["progress"]), rng=rng)
        # Checkpoints from before roll-backs hold no best Adam: the current one stands in.
        best_adam = {k: v for k, v in arrays.items() if k.startswith("best_adam.")}
        state.best_adam = AdamState.from_arrays(best_adam, "best_adam.") if best_adam else state.adam.copy()
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the checkpoint is damaged or from another version ({exc!r})") from None
    return state, meta


# ----------------------------------------------------------------------------- training

@dataclass
class ValidationPart:
    """One stretch of held-out audio, scored after a warm-up on the input before it."""

    x: np.ndarray                     # (M,) float32 audio input
    y: np.ndarray                     # (M,) target
    history: np.ndarray | None = None  # the input just before x in the same recording, or None
    controls: tuple = ()              # a conditioned model's other inputs (knobs, scaled to 0..1)
    name: str = ""                    # a capture set's row name
    held_out: bool = False            # a setting never trained on: reported, never used to choose the model


class TrainingData(Protocol):
    """What train_run needs of the data (audio_io.dataset's Dataset and CaptureDataset have it)."""

    rate: int
    validation: list                  # ValidationPart, one per recording validated

    def epoch_batches(self, segment: int, warmup: int, batch: int, rng: np.random.Generator,
                      knob_jitter: float = 0.0, knob_blend: float = 0.0):
        """Yield one epoch of (x (T, I, B), y (T, B)) host batches, T = warmup + segment; a
        conditioned model's windows blended between settings and its knob inputs jittered
        as TrainConfig's ``knob_blend`` and ``knob_jitter`` say."""

    def window_count(self, segment: int, warmup: int) -> int:
        """How many windows an epoch has."""


class Reporter:
    """What a run tells while it trains. Every method only reports: the run goes on the
    same whatever it does. This one stays silent; train.py's prints."""

    def note(self, text: str):
        """A line for the user (a fine-tune's starting point, say)."""

    def batch(self, done: int, total: int, seconds: float, loss):
        """After each batch: samples done of ``total`` this epoch, seconds into it, and the
        batch's loss as a 0-d device array (reading it as a number waits for a GPU)."""

    def epoch(self, row: dict, improved: bool):
        """After each epoch is saved: its history row, and whether it is the best so far."""

    def rival_epoch(self, row: dict, improved: bool):
        """The same for an epoch of a race's second heat (race.py): a row of the run's only
        if that start wins the race."""


def warmup_history(part: ValidationPart, device: DeviceSettings) -> np.ndarray | None:
    """The last ``device.validation_warmup`` samples of the input just before the part
    (part.history), what its validation runs first; None when there is none."""
    return None if part.history is None else part.history[max(0, part.history.size - device.validation_warmup):]


def predict_validation(params: dict, model: ModelConfig, part: ValidationPart, device: DeviceSettings, xp,
                       initial=None, runner=None, chunk: int = MIN_VALIDATION_CHUNK) -> np.ndarray:
    """The model's output for one validation part (M,), as train_run scores it: parallel
    chunks (exact), warmed up on the last ``device.validation_warmup`` samples of the input
    just before it when there is one (part.history), from ``initial`` ((h, c), each
    (L, H)) or zeros, with the part's knob settings. ``runner``: what runs the model, as
    inference.process_chunks takes it (None: inference.run). ``chunk``: the shortest
    chunk in samples (MIN_VALIDATION_CHUNK at least; at most ``device.validation_parts``
    chunks)."""
    return _validation_output(params, model, part, device, xp, initial, runner, chunk)[0]


def _validation_output(params: dict, model: ModelConfig, part: ValidationPart, device: DeviceSettings, xp,
                       initial=None, runner=None, chunk: int = MIN_VALIDATION_CHUNK) -> tuple[np.ndarray, int]:
    """predict_validation's (output (M,), the passes its chunks took: chunks.py)."""
    history = warmup_history(part, device)
    samples = part.x.size + (0 if history is None else history.size)
    parts = min(device.validation_parts, max(1, samples // max(chunk, MIN_VALIDATION_CHUNK)))
    return process_parallel_passes(params, model, part.x, xp, parts, device.overlap, history=history,
                                   initial=initial, controls=part.controls, gpu_loop=device.gpu_loop, runner=runner)


def validation_errors(params: dict, model: ModelConfig, parts: list, device: DeviceSettings, xp,
                      initial=None, chunk: int = MIN_VALIDATION_CHUNK) -> tuple[float, dict]:
    """(the ESR over every part not held out, its error energy over its target energy
    summed across parts; {part name: its own ESR} for every part)."""
    return validation_scores(params, model, parts, device, xp, initial, chunk)[:2]


def validation_scores(params: dict, model: ModelConfig, parts: list, device: DeviceSettings, xp,
                      initial=None, chunk: int = MIN_VALIDATION_CHUNK) -> tuple[float, dict, int]:
    """validation_errors' (ESR, {part name: ESR}), and the most passes a part's chunks took
    (chunks.py), what train_run sizes the next validation's chunks by."""
    error = energy = 0.0
    each, most_passes = {}, 1
    for part in parts:
        e, t, passes = part_errors(params, model, part, device, xp, initial, chunk)
        each[part.name] = float(e / (t + ESR_EPS))
        most_passes = max(most_passes, passes)
        if not part.held_out:
            error, energy = error + e, energy + t
    return float(error / (energy + ESR_EPS)), each, most_passes


def part_errors(params: dict, model: ModelConfig, part: ValidationPart, device: DeviceSettings, xp,
                initial=None, chunk: int = MIN_VALIDATION_CHUNK) -> tuple[float, float, int]:
    """(the error energy, the target energy, the passes its chunks took) of one validation
    part, as validated."""
    y, passes = _validation_output(params, model, part, device, xp, initial, chunk=chunk)
    return (*error_energies(y, part.y), passes)


def shortest_validation_chunk(parts: list, device: DeviceSettings) -> int:
    """The chunk length (samples) the longest of ``parts`` (ValidationParts) is cut into by
    default, with the warm-up it runs first: MIN_VALIDATION_CHUNK, or longer where it would
    take more than ``device.validation_parts`` chunks of that."""
    longest = max((part.x.size + min(device.validation_warmup, 0 if part.history is None else part.history.size)
                   for part in parts), default=0)
    return max(MIN_VALIDATION_CHUNK, longest // device.validation_parts)


def next_validation_chunk(chunk: int, passes: int, shortest: int = MIN_VALIDATION_CHUNK) -> int:
    """The shortest chunk (samples; 0: the device's cut) for the next validation, from this
    one's ``chunk`` (the same) and the most ``passes`` a model's chunks took with it,
    aimed at VALIDATION_PASSES; ``shortest``: the longest part's chunk in the device's cut
    (shortest_validation_chunk), what a change starts from.

    Each pass after the first reruns the chunks that did not start where the one before
    them ended, each for about the model's memory or the whole chunk (chunks.py). A model
    that forgets quickly needs one or two passes, and its validation is quickest in many
    short chunks; one that carries a slow envelope (the amp-like effect's models) takes
    more passes the shorter the chunks, and each rerun may run its whole chunk. On 12 s of
    validation audio (2-core AMD EPYC, 2026-12-03), a trained amp-like model (H = 40) took
    22 passes and 8.7 s in 128 chunks, 4 passes and 3.7 s in 16, 3 and 3.2 s in 8; models
    of the filters, the overdrive and the compressor took 1 or 2 passes in 128 chunks, and
    were as quick or quicker there than in 32 (0.4-0.7 s) and slower in 16 or fewer.
    So: more passes than aimed at lengthen the chunks in proportion; one pass (every
    chunk's guessed start was right) halves them, back to the device's cut at the
    shortest; two or three keep them, so that a model whose passes would go 2, 4, 2, 4 as
    the length halves and doubles is not cut differently each time.
    The passes are the model's, not the clock's, so a resumed run (which keeps the chunk
    in its Progress) sizes them alike. On the CPU only: a step there costs more the more
    chunks run side by side, while a GPU's time goes to the sequential steps (devices.py),
    which longer chunks add to; that is not measured, and a GPU keeps the shortest."""
    length = max(chunk, shortest)
    if passes > VALIDATION_PASSES:
        return length * -(-passes // VALIDATION_PASSES)
    if passes == 1:
        return 0 if length // 2 <= shortest else length // 2
    return chunk


def error_energies(y: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(the error energy, the target energy) of an output y (M,) against its target (M,), in float64."""
    difference = (y - target).astype(np.float64)
    target = target.astype(np.float64)
    return float(difference @ difference), float(target @ target)


def probe_esr(params: dict, model: ModelConfig, part: ValidationPart, device: DeviceSettings, xp) -> tuple:
    """(the ESR of one probed stretch, scored as validation scores it; the work that took),
    as probe.SpikeProbe's score. The work is in samples: the model's steps over the chunks'
    passes times the chunks side by side. One pass over the stretch (and its warm-up) is
    about its length, as is a short second pass on a model that forgets (a rerun stops once
    it agrees with its previous run: chunks.py); a model that keeps its state longer than
    the whole stretch takes a pass per chunk, about as many times the length as there are
    chunks."""
    steps = columns = 0

    def counted(x, state):
        nonlocal steps, columns
        steps, columns = steps + x.shape[0], max(columns, x.shape[2])
        return run_model(params, model, x, state, device.gpu_loop)

    e, t = error_energies(predict_validation(params, model, part, device, xp, runner=counted), part.y)
    return e / (t + ESR_EPS), steps * columns


def _validation_scores_on_cpu(params: dict, model: ModelConfig, parts: list, device: DeviceSettings,
                              initial=None, chunk: int = MIN_VALIDATION_CHUNK) -> tuple[float, dict, int]:
    """validation_scores on NumPy, as a ParallelTrainer's worker runs it (a module is not
    something a worker can be sent)."""
    return validation_scores(params, model, parts, device, np, initial, chunk)


def train_run(state: RunState, data: TrainingData, device: DeviceSettings, folder, facts: dict,
              reporter: Reporter | None = None, start_state=None, heat: StopRule | None = None) -> str:
    """Train ``state`` on ``data`` until its stop rule says stop; returns why ("epochs",
    "budget", "patience"), or "heat" when ``heat`` said stop first: a race's shorter rule
    (race.py; its budget kept as the run's is, never overshot), while the schedule still
    runs to the run's budget. Updates ``state`` in place (moving it to ``device``).

    Every epoch writes into ``folder`` (made if missing): checkpoint.npz, history.csv and,
    when the val ESR improved, model.npz (the best parameters, with ``facts`` and the best
    epoch's). A fine-tune (options["init"]) that has not begun first measures its starting
    model (from ``start_state``, (h, c) each (L, H), the state its file starts a stream
    from; zeros if None) and keeps it as epoch 0, so that its model.npz is never worse than
    where it began. KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the caller)
    propagates; the files then hold the last finished epoch.
    """
    reporter = reporter or Reporter()
    xp = get_xp(device.device)
    state.on_device(xp)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    warmup = state.train.warmup
    segment = segment_samples(device.segment, data.rate, state.train.tbptt)
    epoch_samples = data.window_count(segment, warmup) * (warmup + segment)
    host_losses = device.device == "cpu"      # a loss read on the host costs nothing there; on a GPU, a sync

    by_part = {}                              # the latest validation's ESR of each part (a capture set's settings)
    trainer = None                            # a ParallelTrainer once training starts (below)
    # What validation reads of each part (its history cut to the warm-up): a worker is sent no more.
    scored_parts = [replace(part, history=warmup_history(part, device)) for part in data.validation]

    def validate(candidates: list, initial=None) -> tuple[float, dict]:
        """(the val ESR, the parameters) of the better of ``candidates`` (parameter dicts),
        each run from ``initial``; NaN only when every one of them is. Remembers the
        better one's ESR of each part (by_part) for model.npz, and sizes the next
        validation's chunks by the passes these took (next_validation_chunk)."""
        chunk = state.progress.validation_chunk or MIN_VALIDATION_CHUNK
        if trainer is not None and len(candidates) > 1:   # side by side on the trainer's processes
            results = trainer.map(partial(_validation_scores_on_cpu, model=state.model, parts=scored_parts,
                                          device=device, initial=initial, chunk=chunk), candidates)
        else:
            results = [validation_scores(params, state.model, scored_parts, device, xp, initial, chunk)
                       for params in candidates]
        scored = [(overall if math.isfinite(overall) else math.inf, overall, each, params)
                  for (overall, each, _), params in zip(results, candidates)]
        _, overall, each, params = min(scored, key=lambda item: item[0])
        by_part.clear()
        by_part.update(each)
        if device.device == "cpu":                         # (next_validation_chunk says why)
            state.progress.validation_chunk = next_validation_chunk(
                state.progress.validation_chunk, max(passes for _, _, passes in results),
                shortest_validation_chunk(scored_parts, device))
        return overall, params

    def save_best():
        state.progress.best_seconds, state.progress.best_parts = state.progress.seconds, dict(by_part)
        save_best_model(folder, state, data, facts)

    if state.options.get("init") and state.progress.epoch == 0:
        # A fine-tune starts from a model that may already be good: its own val ESR is the best to beat.
        start_esr = _keep_start(state, lambda params: validate([params], start_state)[0], save_best)
        if start_esr is None:
            reporter.note("init: the starting model's val ESR is not a finite number; the first epoch will replace it")
        else:
            reporter.note(f"init: the starting model's val ESR is {start_esr:.4g} ({db(start_esr):.1f} dB); "
                          f"{folder / MODEL_FILE} keeps it until an epoch does better")
    step, trainer = _training_step(state, device, warmup + segment)
    started = time.perf_counter() - state.progress.seconds
    rule, progress, schedule = state.rule, state.progress, state.train.schedule
    guard = BatchGuard(progress) if host_losses and state.train.guard_batches else None   # spikes.py
    probed = probe_part(scored_parts, data.rate)
    probe = None                              # probe.py: on the CPU, with the spike rule on
    if host_losses and state.train.probe_batches and state.train.rollback_above > 0 and probed is not None:
        probe = SpikeProbe(partial(probe_esr, model=state.model, part=probed, device=device, xp=xp), SPIKE_FLOOR,
                           probed.x.size + (0 if probed.history is None else probed.history.size),
                           clock=lambda: time.perf_counter())     # the run's clock: the budget counts probes
        if math.isfinite(progress.best_esr):
            probe.keep_best(state.best_params, progress.best_esr)

    def probe_for_jump():
        """Back to the best epoch at half the rate when the probe says the parameters jumped
        (probe.py); each time, (the probe over the best's, the best epoch) joins the epoch's jumps
        (the best's: the larger of its probe and its val ESR)."""
        jump = probe.jumped(state.candidates()) if progress.epoch >= SETTLING_EPOCHS else None
        if jump is not None:
            state.roll_back()
            if guard is not None:
                guard.restart()
            progress.lr_cut_epoch = progress.epoch + 1             # cut in this epoch
            jumps.append((jump, progress.best_epoch))

    def rate_now() -> float:
        return state.base_lr * decay(schedule, rule.budget, time.perf_counter() - started)

    validation_samples = sum(part.x.size + min(device.validation_warmup, 0 if part.history is None
                                               else part.history.size) for part in data.validation)

    limits = [limit for limit in (rule.budget, heat and heat.budget) if limit is not None]
    limit = min(limits) if limits else None       # the budget, or a race's heat's when it comes first

    def no_time_for_another_batch(samples_trained: int, seconds_training: float) -> bool:
        """Would one more batch, the probe after it (probe.py) and the validation end past
        the budget (or the heat)? A run stops before it would, so that a budget is a limit
        (a sweep's slots stay on time), not a point the last batch and validation overshoot.
        Before the first validation its time is guessed as a pass over every model scored
        at the training's seconds a sample (on 2 cores a validation sample cost a third to
        all of a training sample's time, 2026-11-30)."""
        if limit is None:
            return False
        validation = progress.validation_seconds or (
            len(state.candidates()) * validation_samples * seconds_training / max(samples_trained, 1))
        probing = probe.seconds if probe is not None and progress.epoch >= SETTLING_EPOCHS else 0.0   # probe.py
        return time.perf_counter() - started + progress.batch_seconds + probing + validation >= limit

    try:
        with np.errstate(invalid="ignore", over="ignore"):   # a diverging epoch is caught and rolled back below
            while True:
                epoch_started = time.perf_counter()
                loss_sum, batches, samples, out_of_time, undone, went_back = 0.0, 0, 0, False, 0, None
                jumps = []                      # the probe's roll-backs in this epoch (probe_for_jump)
                if probe is not None:
                    probe.new_epoch()
                for x, y in data.epoch_batches(segment, warmup, device.batch, state.rng, state.train.knob_jitter,
                                                  state.train.knob_blend):
                    batch_started = time.perf_counter()
                    train = replace(state.train, lr=rate_now())
                    if guard is not None:
                        guard.before(state.params, state.adam)
                    loss = step(state.params, state.adam, to_device(x, xp), to_device(y, xp), train)
                    samples += y.size
                    value = float(loss) if host_losses else None     # on a GPU the loss stays on the device
                    if guard is not None and math.isfinite(value) and guard.spiked(value, armed=progress.epoch >= 1):
                        cut = undo_cut(state.base_lr, state.train.lr, state.train.undo_floor)   # half, or the floor
                        back = guard.again     # the parameters were off before this batch and the one undone
                        held = cut == state.base_lr and not back   # at the floor: no cut (a plateau's count goes on)
                        if back:                                         # to the best epoch; went back and kept
                            state.roll_back(state.base_lr * CUT if guard.stuck else cut)   # nothing: past the floor
                            guard.restart()
                            went_back = progress.best_epoch
                        else:
                            state.params, state.adam = guard.undo()      # as before the batch
                            progress.lr = cut
                        if not held:
                            progress.lr_cut_epoch = progress.epoch + 1   # cut in this epoch
                        undone += 1
                    else:
                        loss_sum = loss_sum + loss       # stays on the device until the epoch ends
                        batches += 1
                        if probe is not None and math.isfinite(value):
                            probe.trained(y.size)
                            if probe.due:
                                probe_for_jump()
                    reporter.batch(samples, epoch_samples, time.perf_counter() - epoch_started, loss)
                    if host_losses and not math.isfinite(value):
                        break                            # diverged: the rest of the epoch would be NaN too
                    progress.batch_seconds = time.perf_counter() - batch_started
                    if no_time_for_another_batch(samples, time.perf_counter() - epoch_started):
                        out_of_time = True
                        break
                if probe is not None and probe.unprobed and math.isfinite(loss_sum):
                    probe_for_jump()                     # the epoch's last batch, before its validation (a
                                                         # diverged one is rolled back below, once)
                train_seconds = time.perf_counter() - epoch_started
                train_loss = float(loss_sum / batches) if batches else math.nan   # every batch undone
                lr = train.lr if batches else rate_now()
                validation_started = time.perf_counter()
                val_esr, scored = validate(state.candidates())
                progress.validation_seconds = time.perf_counter() - validation_started
                progress.epoch += 1
                progress.seconds = time.perf_counter() - started
                # An epoch whose every batch was undone has no training loss, and has not diverged.
                diverged = not (math.isfinite(val_esr) and (math.isfinite(train_loss) or not batches))
                # A jump that both the parameters and their average took in: going on from it can
                # cost the rest of the budget (the amp-like effect spent half of 120 s climbing
                # back); going back costs one epoch (RESULTS.md "Rolling back a spiked epoch").
                judged = (not diverged and state.train.rollback_above > 0 and progress.epoch > SETTLING_EPOCHS
                          and math.isfinite(progress.best_esr))
                floor = max(progress.best_esr, SPIKE_FLOOR)
                spiked = judged and val_esr > state.train.rollback_above * floor
                # Worse for the second epoch running and well past the best: the rate is too high for
                # where the run is, and the next epoch may jump by 3 times more (the resonant filter:
                # 1.7, 1.8, 3.7, then 11.5 times its best; RESULTS.md "Epoch 3 judged, and a climb
                # rolled back").
                climbing = (judged and progress.went_on_from is not None
                            and floor < progress.went_on_from < val_esr and val_esr > CLIMB_ABOVE * floor)
                improved = not diverged and val_esr < progress.best_esr
                event = ""
                if improved:
                    progress.best_esr, progress.best_epoch = val_esr, progress.epoch
                    progress.best_averaged = scored is state.adam.average
                    state.keep_best(scored)
                    progress.best_losses = list(progress.kept_losses)     # what going back is judged against
                    if probe is not None:
                        probe.keep_best(state.best_params, progress.best_esr)
                elif diverged or spiked or climbing:
                    state.roll_back()
                    if guard is not None:
                        guard.restart()                  # judged against the best epoch's losses
                    what = "diverged" if diverged else "spiked" if spiked else "climbing"
                    event = f"{what}: rolled back to epoch {progress.best_epoch}, learning rate now {state.base_lr:.3g}"
                elif plateau_cut(schedule, rule.budget, progress.epoch, progress.best_epoch, progress.lr_cut_epoch):
                    progress.lr, progress.lr_cut_epoch = state.base_lr * CUT, progress.epoch
                    event = f"plateau: learning rate now {state.base_lr:.3g}"
                if not (diverged or spiked or climbing):     # (an improved epoch is none of them)
                    progress.went_on_from = val_esr          # the next epoch goes on from this one's parameters
                if jumps:
                    times = f" ({len(jumps)} times)" if len(jumps) > 1 else ""
                    event = "; ".join(filter(None, [f"probe {max(jumps)[0]:.3g} times the best{times}: rolled back "
                                                    f"to epoch {jumps[-1][1]}, learning rate now {state.base_lr:.3g}",
                                                    event]))
                if undone:
                    what = "undone" if went_back is None else f"back to epoch {went_back} after two in a row"
                    event = "; ".join(filter(None, [f"{undone} batch(es) spiked: {what}, learning rate now "
                                                    f"{state.base_lr:.3g}", event]))
                row = {"epoch": progress.epoch, "train_loss": train_loss, "val_esr": val_esr,
                       "samples_per_s": samples / max(train_seconds, 1e-9), "seconds": progress.seconds, "lr": lr,
                       "event": event}
                progress.history.append(row)
                if diverged and not math.isfinite(progress.best_esr):   # nothing finite yet: keep the start
                    start_esr = _keep_start(state, lambda params: validate([params])[0], save_best)
                    if start_esr is not None:
                        if probe is not None:             # as a run resumed from here would have it
                            probe.keep_best(state.best_params, progress.best_esr)
                        reporter.note(f"the first epoch diverged: model.npz holds the starting model (val ESR "
                                      f"{start_esr:.4g}) until an epoch does better")
                if improved:
                    save_best()
                short = out_of_time or no_time_for_another_batch(samples, train_seconds)  # of time for another epoch
                if short and limit == rule.budget:
                    reason = "budget"
                else:                                   # a heat ends where the run would not
                    reason = rule.reached(progress) or ("heat" if short or (heat and heat.reached(progress)) else None)
                if reason == "budget" and progress.seconds < rule.budget:
                    progress.budget_stop = rule.budget      # stopped short of it: a resume stops here too
                progress.heat_over = reason == "heat"
                save_checkpoint(folder, state, {**facts, "sample_rate": int(data.rate)})
                write_history(folder / HISTORY_FILE, progress.history)
                reporter.epoch(row, improved)
                if reason:
                    return reason
    finally:
        if trainer is not None:
            trainer.close()


def save_best_model(folder, state: RunState, data: TrainingData, facts: dict):
    """model.npz in ``folder``: the run's best parameters, with ``facts`` and what the run
    knows of them (the epoch, its val ESR on the whole and on each part, the seconds, the
    race once decided). From the state alone, so a checkpoint can always write it again."""
    progress = state.progress
    parts = {"val_parts": [{"name": part.name, "esr": progress.best_parts.get(part.name), "held_out": part.held_out}
                           for part in data.validation]} if len(data.validation) > 1 else {}
    race = {"race": progress.race} if progress.race and progress.race.get("decided") else {}
    save_model(Path(folder) / MODEL_FILE, state.best_params, state.model, data.rate,
               {**facts, **parts, "options": dict(state.options), "train": state.train.to_dict(),
                "val_esr": progress.best_esr, "epoch": progress.best_epoch, "trained_seconds": progress.best_seconds,
                "averaged": progress.best_averaged, **race, "date": datetime.now().isoformat(timespec="seconds")})


def _training_step(state: RunState, device: DeviceSettings, window: int):
    """(step, trainer): step(params, adam, x, y, train) -> loss updates params and adam in
    place; on the CPU with several processes it is a ParallelTrainer's (close the trainer)."""
    if device.device == "cpu" and device.processes > 1:
        trainer = ParallelTrainer(state.model, device.processes, window, device.batch)
        return trainer.train_window, trainer
    workspace = Workspace()                  # buffers kept from window to window

    def step(params, adam, x, y, train):
        return train_window(params, state.model, adam, x, y, train, workspace, device.gpu_loop)

    return step, None


def _keep_start(state: RunState, validate, save_best) -> float | None:
    """The parameters now (a fine-tune's start, or where a first diverged epoch rolled
    back to) measured and, when their val ESR is a finite number, kept as epoch 0, the
    run's model until an epoch beats it. Returns that ESR, or None."""
    start_esr = float(validate(state.params))
    if not math.isfinite(start_esr):
        return None
    state.progress.best_esr, state.progress.best_epoch, state.progress.best_averaged = start_esr, 0, False
    state.keep_best()
    save_best()
    return start_esr


def db(value: float) -> float:
    """An ESR in decibels (floored at -120 dB)."""
    return 10.0 * math.log10(max(value, 1e-12))


def parameter_count(params: dict) -> int:
    return sum(int(np.prod(v.shape)) for v in params.values())


def device_label(device: DeviceSettings) -> str:
    """How the run's files name where it trained ("GPU (CuPy)" or "CPU, N process(es)")."""
    return "GPU (CuPy)" if device.device == "gpu" else f"CPU, {device.processes} process(es)"
