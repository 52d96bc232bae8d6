"""history.csv: one row per epoch, the run's learning curve as a spreadsheet reads it.

    epoch, train_loss, val_esr, samples_per_s, seconds[, lr, event]

lr is the learning rate at the epoch's end; event says what the run did after it (a
roll-back from a diverged or spiking epoch, a plateau's cut), empty otherwise.

Written atomically after every epoch by the run (lstm_core/run.py), read by the report.
A diverged epoch records NaN or Inf as its loss and ESR: that is the run's story, kept.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from .atomic import atomic_output

HISTORY_COLUMNS = ("epoch", "train_loss", "val_esr", "samples_per_s", "seconds")


class HistoryError(ValueError):
    """history.csv is missing or damaged; the message names the file and the problem."""


def write_history(path, history: list):
    """``history``: one dict per epoch with at least HISTORY_COLUMNS (extra keys are
    written as further columns, in the order first seen; a row without one leaves it empty)."""
    extra = dict.fromkeys(k for row in history for k in row if k not in HISTORY_COLUMNS)   # every row's, in order
    columns = list(HISTORY_COLUMNS) + list(extra)
    with atomic_output(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_history(path) -> list:
    """history.csv as a list of dicts: HISTORY_COLUMNS as numbers, and "lr" (a number or
    None) and "event" (a string) where the file has them. Raises HistoryError."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"{path}: no such file (the run has not finished an epoch, or this is not a run folder)")
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            missing = [c for c in HISTORY_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise HistoryError(f"{path}: damaged: columns missing: {', '.join(missing)}")
            rows = [{**{c: (int(row[c]) if c == "epoch" else float(row[c])) for c in HISTORY_COLUMNS},
                     "lr": float(row["lr"]) if row.get("lr") else None, "event": row.get("event") or ""}
                    for row in reader]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        if isinstance(exc, HistoryError):
            raise
        raise HistoryError(f"{path}: damaged: {exc}") from None
    if not rows:
        raise HistoryError(f"{path}: no epochs recorded")
    if not all(math.isfinite(row[c]) for row in rows for c in ("epoch", "samples_per_s", "seconds")):
        raise HistoryError(f"{path}: damaged: epochs, times or speeds that are not finite numbers")
    return rows
