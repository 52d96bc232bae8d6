"""The training loop: epochs of batches, validation, early stopping, a time budget.

Arrays in, model out. The caller hands in how to make an epoch's batches and how to
validate, and gets a call after every epoch (to write files, print a line); the loop
itself reads top to bottom like the recipe it is:

    for each epoch:
        for each batch of windows:  warm up, then one Adam update per TBPTT slice
        validate (ESR on held-out audio), remember the best parameters
        stop when the epochs, the time budget or the patience run out
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, asdict

from .backend import to_device


@dataclass(frozen=True)
class StopRule:
    epochs: int = 1000                # at most this many epochs...
    budget: float | None = None       # ...or this many seconds of training wall time
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
        if self.budget is not None and progress.seconds >= self.budget:
            return "budget"
        if progress.epoch >= self.epochs:
            return "epochs"
        if self.patience is not None and progress.epoch - progress.best_epoch >= self.patience:
            return "patience"
        return None


@dataclass
class Progress:
    """Where a run stands: what a checkpoint needs besides the parameters and Adam."""

    epoch: int = 0                        # epochs completed
    seconds: float = 0.0                  # training wall time so far (validation included)
    best_esr: float = math.inf
    best_epoch: int = 0
    history: list = field(default_factory=list)   # one dict per epoch (HISTORY_COLUMNS)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Progress":
        return cls(**data)


HISTORY_COLUMNS = ("epoch", "train_loss", "val_esr", "samples_per_s", "seconds")


def fit(params: dict, adam, train, progress: Progress, rule: StopRule, xp, make_batches, step, validate,
        on_epoch=None, on_batch=None) -> str:
    """Train until the rule says stop. Updates params, adam and progress in place.

    Args:
        params, adam: the model's parameters and the optimizer state (on xp's device).
        train: the TrainConfig handed to ``step``.
        progress: where to start from (a fresh Progress, or one from a checkpoint).
        xp: the array module the parameters live on.
        make_batches: () -> iterable of (x (T, 1, B), y (T, B)) host arrays, one epoch.
        step: (params, adam, x, y, train) -> loss: training.train_window or a
            ParallelTrainer's train_window.
        validate: (params) -> val ESR as a float.
        on_epoch: (progress, improved: bool) -> None, after each epoch.
        on_batch: (samples_done, seconds, loss) -> None, after each batch (progress bars;
            reading the loss, a device array, as a number synchronises with the GPU).

    Returns why it stopped: "epochs", "budget" or "patience". (The caller checks
    rule.reached(progress) first: fit always trains at least one epoch.)
    """
    started = time.perf_counter() - progress.seconds
    while True:
        epoch_started = time.perf_counter()
        loss_sum, batches, samples = 0.0, 0, 0
        out_of_time = False
        for x, y in make_batches():
            loss = step(params, adam, to_device(x, xp), to_device(y, xp), train)
            loss_sum = loss_sum + loss           # stays on the device until the epoch ends
            batches += 1
            samples += y.size
            if on_batch:
                on_batch(samples, time.perf_counter() - epoch_started, loss)
            if rule.budget is not None and time.perf_counter() - started >= rule.budget:
                out_of_time = True
                break
        train_seconds = time.perf_counter() - epoch_started
        val_esr = float(validate(params))
        progress.epoch += 1
        progress.seconds = time.perf_counter() - started
        improved = val_esr < progress.best_esr
        if improved:
            progress.best_esr, progress.best_epoch = val_esr, progress.epoch
        progress.history.append({
            "epoch": progress.epoch,
            "train_loss": float(loss_sum / max(batches, 1)),
            "val_esr": val_esr,
            "samples_per_s": samples / max(train_seconds, 1e-9),
            "seconds": progress.seconds,
        })
        if on_epoch:
            on_epoch(progress, improved)
        reason = "budget" if out_of_time else rule.reached(progress)
        if reason:
            return reason
