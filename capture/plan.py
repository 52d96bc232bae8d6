"""A sweep's plan: the captures, the grid of settings, one trial per pair of them, and
what each trial did. sweep.py runs the trials on Ray Tune; everything else is here, with
no Ray, so that it reads (and is tested) on its own.

    PLAN, a folder:  amp1_input.wav amp1_target.wav  amp2_input.wav amp2_target.wav  ...
                     (any extension soundfile reads; one capture per <name>_input/_target)
    PLAN, a CSV:     input,target[,name]           one capture per row (paths relative to the CSV)
                     input,target[,name],gain,...  knob columns: the file is a capture set
                                                   (train.py --captures), one conditioned capture
    --grid hidden=16,32 lr=0.005,0.01              every combination, for every capture

A trial is one capture at one setting, trained by capture.run_capture in its own run
folder <out>/<capture>[-<key><value>...], as train.py would train it. The folder also
holds trial.json once the trial has ended ("finished", or "stopped early" by the sweep's
scheduler), so that a sweep run again skips it; a trial that was cut short resumes from
its checkpoint.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from audio_io.capture_set import read_capture_set, read_records, row_files
from audio_io.dataset import PairOptions, load_capture_dataset, load_dataset
from audio_io.files import AudioError
from lstm_core.files.atomic import write_text_atomic
from lstm_core.files.history import HistoryError, read_history
from lstm_core.schedule import SCHEDULES
from lstm_core.model import valid_chrono
from lstm_core.training import MAX_INPUT_LEVEL

from .config import CaptureConfig, ResumeConfig, read_chrono, read_input_level
from .folder import absolute

AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3")
INPUT_SUFFIX, TARGET_SUFFIX = "_input", "_target"
TRIAL_FILE = "trial.json"
FINISHED, STOPPED_EARLY = "finished", "stopped early"
OFF = "off"                         # input_level -inf (read_input_level's word) in labels and trial.json


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not (math.isfinite(value) and value > 0):
            raise ValueError("must be positive")
        return value
    return parse


def _schedule(text: str) -> str:
    if text not in SCHEDULES:
        raise ValueError(f"one of {', '.join(SCHEDULES)}")
    return text


def _zero_or_more(text: str) -> int:
    if int(text) < 0:
        raise ValueError("must be 0 or more")
    return int(text)


def _decay(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise ValueError("must be 0 or more and below 1")
    return value


def _zero_to_one(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _yes_no(text: str) -> bool:
    answer = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}.get(text.lower())
    if answer is None:
        raise ValueError("must be yes or no")
    return answer


def _level(text: str) -> float:
    value = read_input_level(text)
    if not value <= MAX_INPUT_LEVEL:
        raise ValueError(f"must be a level in dBFS RMS, at most {MAX_INPUT_LEVEL:+g}, or off")
    return value


def _chrono(text: str) -> float | None:
    value = read_chrono(text)
    if value is not None and not valid_chrono(value):
        raise ValueError("must be 0 (off), at least 3 samples, or auto")
    return value


# The settings a grid may vary: train.py's flags of the same names, and how to read a value.
GRID_KEYS = {"hidden": _positive(int), "layers": _positive(int), "lr": _positive(float), "schedule": _schedule,
             "batch": _positive(int), "segment": _positive(float), "tbptt": _positive(int), "warmup": _zero_or_more,
             "prewarm": _zero_or_more, "seed": _zero_or_more, "average": _decay, "undo_floor": _zero_to_one,
             "knob_jitter": _zero_to_one, "knob_blend": _zero_to_one, "pre_emphasis": _decay,
             "normalize_input": _yes_no, "input_level": _level, "chrono": _chrono}


class PlanError(ValueError):
    """The plan or the grid cannot be used; the message names the file, row or key."""


@dataclass(frozen=True)
class Capture:
    """One capture to train: a pair (input, target), or a capture set's CSV (captures)."""

    name: str
    input: str | None = None
    target: str | None = None
    captures: str | None = None


@dataclass(frozen=True)
class Trial:
    """One capture at one grid setting, trained in ``folder``."""

    capture: Capture
    setting: dict = field(default_factory=dict)     # grid key -> value (empty without a grid)
    folder: str = ""

    @property
    def label(self) -> str:
        """The setting as a reader writes it: "hidden=16 lr=0.005" ("defaults" without a grid)."""
        return " ".join(f"{k}={_shown(v)}" for k, v in self.setting.items()) or "defaults"

    def to_dict(self) -> dict:
        """As strict JSON holds it (trial.json, Ray's params.json): input_level off as "off",
        not -Infinity."""
        data = asdict(self)
        data["setting"] = {k: OFF if k == "input_level" and v == -math.inf else v for k, v in self.setting.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Trial":
        """to_dict's inverse; a trial.json written before "off" (-Infinity) reads the same."""
        setting = {k: -math.inf if k == "input_level" and v == OFF else v for k, v in data["setting"].items()}
        return cls(Capture(**data["capture"]), setting, data["folder"])


# ----------------------------------------------------------------------------- the plan

def read_plan(path) -> list[Capture]:
    """The captures a folder of pairs or a CSV lists. Raises PlanError (a CaptureSetError
    for a capture set) naming the file, row or column."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise PlanError(f"{path}: no such folder or file (give a folder of <name>_input/<name>_target pairs or a CSV)")
    if path.suffix.lower() != ".csv":
        raise PlanError(f"{path}: a plan is a folder of pairs or a .csv file")
    return _read_csv(path)


def _read_folder(folder: Path) -> list[Capture]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    captures = []
    for path in files:
        if path.stem.endswith(INPUT_SUFFIX):
            name = path.stem[: -len(INPUT_SUFFIX)]
            targets = [p for p in files if p.stem == name + TARGET_SUFFIX]
            if not targets:
                raise PlanError(f"{path}: no {name}{TARGET_SUFFIX}{path.suffix} beside it (each capture is a "
                                f"<name>{INPUT_SUFFIX} and a <name>{TARGET_SUFFIX} file)")
            if len(targets) > 1 or any(c.name == name for c in captures):
                raise PlanError(f"{folder}: more than one {name}{INPUT_SUFFIX} or {name}{TARGET_SUFFIX} file (another "
                                f"extension): keep one of each per capture name")
            captures.append(Capture(name, absolute(path), absolute(targets[0])))
        elif path.stem.endswith(TARGET_SUFFIX):
            name = path.stem[: -len(TARGET_SUFFIX)]
            if not any(p.stem == name + INPUT_SUFFIX for p in files):
                raise PlanError(f"{path}: no {name}{INPUT_SUFFIX} file beside it (each capture is a "
                                f"<name>{INPUT_SUFFIX} and a <name>{TARGET_SUFFIX} file)")
    if not captures:
        raise PlanError(f"{folder}: no pairs found (name each capture's files <name>{INPUT_SUFFIX}.wav and "
                        f"<name>{TARGET_SUFFIX}.wav)")
    return captures


def _read_csv(path: Path) -> list[Capture]:
    columns, records = read_records(path)            # CaptureSetError (an AudioError) names the file and row
    for column in ("input", "target"):
        if column not in columns:
            raise PlanError(f"{path}: no column {column!r} (a plan lists input, target and optionally name; "
                            f"knob columns make it a capture set)")
    if any(c and c not in ("input", "target", "name") for c in columns):       # knobs: one conditioned capture
        capture_set = read_capture_set(path)
        return [Capture(path.stem, captures=capture_set.path)]
    captures, seen = [], {}
    for number, record in enumerate(records, start=2):
        files = row_files(path, number, record)
        name = record.get("name") or Path(files[1]).stem
        if name in seen:
            raise PlanError(f"{path}, row {number}, column name: {name!r} names row {seen[name]} too: give every "
                            f"capture its own name")
        seen[name] = number
        captures.append(Capture(name, files[0], files[1]))
    if not captures:
        raise PlanError(f"{path}: no pairs found (no rows under the header)")
    return captures


def pair_problem(capture: Capture) -> str | None:
    """Why the capture's audio cannot be trained on (the checks train.py makes), or None."""
    try:
        if capture.captures:
            load_capture_dataset(read_capture_set(capture.captures))
        else:
            load_dataset(PairOptions(capture.input, capture.target))
    except AudioError as exc:
        return str(exc)
    return None


# ----------------------------------------------------------------------------- the grid

def parse_grid(items: list[str] | None) -> list[dict]:
    """["hidden=16,32", "lr=0.005,0.01"] -> every combination, as dicts (one empty dict for
    no grid). Raises PlanError for an unknown key or a value that does not read."""
    axes = {}
    for item in items or ():
        key, equals, values = item.partition("=")
        if not equals or not values:
            raise PlanError(f"--grid {item}: give KEY=V1,V2,... such as hidden=16,32")
        if key not in GRID_KEYS:
            raise PlanError(f"--grid {key}: unknown key (known: {', '.join(GRID_KEYS)})")
        if key in axes:
            raise PlanError(f"--grid {key}: given twice: list all its values once, separated by commas")
        parsed = []
        for text in values.split(","):
            try:
                parsed.append(GRID_KEYS[key](text.strip()))
            except ValueError as exc:
                reason = str(exc) if str(exc).startswith(("must", "one of")) else "not a number"
                raise PlanError(f"--grid {key}={text.strip()}: {reason}") from None
        axes[key] = list(dict.fromkeys(parsed))
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def plan_trials(captures: list[Capture], grid: list[dict], out) -> list[Trial]:
    """Every capture at every setting, each with its run folder under ``out``."""
    trials = []
    for capture in captures:
        for setting in grid:
            suffix = "".join(f"-{k}{_shown(v)}" for k, v in setting.items())
            trials.append(Trial(capture, setting, str(Path(out).resolve() / f"{capture.name}{suffix}")))
    return trials


def _shown(value) -> str:
    """A grid value as a label or folder name writes it: 0.005, 32, yes, auto."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:                    # chrono=auto: the race decides
        return "auto"
    if value == -math.inf:
        return OFF
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- one trial

def trial_status(folder) -> str | None:
    """FINISHED, STOPPED_EARLY, or None for a trial that has not ended (or not started)."""
    try:
        return json.loads((Path(folder) / TRIAL_FILE).read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_trial(trial: Trial, status: str, **facts):
    """Record that the trial has ended, how, and ``facts`` (trial.json in its folder)."""
    if Path(trial.folder).is_dir():
        write_text_atomic(Path(trial.folder) / TRIAL_FILE,
                          json.dumps({"status": status, **facts, **trial.to_dict()}, indent=1))


def trial_config(trial: Trial, rule: dict, processes: int | None) -> CaptureConfig | ResumeConfig:
    """What run_capture is given: a fresh run, or the resumed one when the folder holds a
    checkpoint (a sweep stopped and started again). ``rule``: epochs, budget, patience."""
    folder = Path(trial.folder)
    if (folder / "checkpoint.npz").is_file():
        return ResumeConfig(str(folder), **rule)
    capture = trial.capture
    return CaptureConfig(input=capture.input, target=capture.target, captures=capture.captures, out=str(folder),
                         force=True, processes=processes, device="cpu", **rule, **trial.setting)


def run_trial(trial: Trial, rule: dict, processes: int | None, reporter=None):
    """Train the trial to its end in its folder (fresh or resumed), write its report, and
    mark it finished. Errors are run_capture's; an interrupt comes back in the Outcome."""
    from capture.session import run_capture, write_run_report
    from lstm_core.run import Reporter

    reporter = reporter or Reporter()
    started = time.time()
    outcome = run_capture(trial_config(trial, rule, processes), reporter)
    if outcome.interrupted is not None:
        return outcome
    if outcome.already_stopped and not (Path(trial.folder) / "report.html").is_file():
        write_run_report(Path(trial.folder), reporter)        # it had trained to its end, then was cut short
    mark_trial(trial, FINISHED, started=started, ended=time.time())     # wall clock: the sweep's overhead is between
    return outcome


# ----------------------------------------------------------------------------- the summary

SUMMARY_COLUMNS = ("capture", "setting", "best_val_esr", "epochs", "seconds", "stopped_early", "status", "best",
                   "folder")


def best_so_far(trial: Trial) -> float:
    """The best finite val ESR in the trial's history.csv (a trial cut short), or inf."""
    try:
        scores = [row["val_esr"] for row in read_history(Path(trial.folder) / "history.csv")]
    except (HistoryError, OSError):
        return math.inf
    return min((s for s in scores if math.isfinite(s)), default=math.inf)


def summary_rows(trials: list[Trial], failed: dict | None = None) -> list[dict]:
    """One row per trial, read from its folder (history.csv and trial.json): its best val
    ESR, epochs, training seconds, whether the scheduler stopped it early; "best" marks the
    best trial of each capture. ``failed``: folder -> the error of trials that failed."""
    failed = failed or {}
    rows = []
    for trial in trials:
        status = trial_status(trial.folder)
        try:
            history = read_history(Path(trial.folder) / "history.csv")
        except (HistoryError, OSError):
            history = []
        scores = [row["val_esr"] for row in history if math.isfinite(row["val_esr"])]
        rows.append({"capture": trial.capture.name, "setting": trial.label,
                     "best_val_esr": min(scores) if scores else math.nan, "epochs": len(history),
                     "seconds": history[-1]["seconds"] if history else 0.0,
                     "stopped_early": "yes" if status == STOPPED_EARLY else "no",
                     "status": failed.get(trial.folder) and f"failed: {failed[trial.folder]}" or status or "not ended",
                     "best": "", "folder": trial.folder})
    for capture in dict.fromkeys(row["capture"] for row in rows):
        scored = [row for row in rows if row["capture"] == capture and math.isfinite(row["best_val_esr"])]
        if scored:
            min(scored, key=lambda row: row["best_val_esr"])["best"] = "yes"
    return rows


def write_summary(path, rows: list[dict]):
    """summary.csv, atomically."""
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, stream.getvalue())
