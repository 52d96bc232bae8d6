"""Train an LSTM to reproduce an audio effect from a pair of recordings.

    python train.py dry.wav wet.wav              # writes runs/wet-<date-time>/model.npz
    python train.py                              # the built-in demo (same as --demo)
    python train.py --demo knobs                 # a pedal with two knobs: one model for every setting
    python train.py --captures pedal.csv         # your pedal at several settings (see README, "Knobs")
    python train.py --resume runs/wet-...        # continue an interrupted run
    python train.py dry.wav wet.wav --init amp.nam   # fine-tune a model (ours, .nam or AIDA-X .json)

Everything of substance lives in the packages: capture runs a run in its folder (audio_io
reads and checks the pair, lstm_core.run trains, run_report writes the report). This file
reads the options into a config, makes that one call, prints what it reports, and turns
every expected failure into one line and an exit code.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys

from audio_io.files import AudioError
from capture import CaptureConfig, ResumeConfig, run_capture
from capture.config import (DEFAULT_EPOCHS, DEFAULT_PATIENCE, DEMO_BUDGET, DEMOS, TRAIN_DEFAULTS as DEFAULTS,
                            read_chrono, read_input_level)
from capture.session import summary
from lstm_core.backend import BackendError
from lstm_core.devices import CPU, GPU
from lstm_core.files.model_file import ModelFileError
from lstm_core.model import ModelConfig
from lstm_core.parallel import WorkerError
from lstm_core.race import HEAT_AUDIO, HEAT_EPOCHS, HEAT_SHARE, MARGIN, MIN_RACE_BUDGET
from lstm_core.run import CLIMB_ABOVE, Reporter, db
from lstm_core.schedule import SCHEDULES
from lstm_core.training import (DEFAULT_INPUT_LEVEL, ENVELOPE_CHRONO, HIGH_GAIN_HIDDEN, HIGH_GAIN_HIDDEN_BUDGET,
                                HIGH_GAIN_INPUT_LEVEL, MAX_INPUT_LEVEL, SATURATED_ESR)

from command_line import ArgumentParser, fail

DEFAULT_MODEL = ModelConfig()


def knob_range(text: str) -> tuple[str, float, float]:
    """NAME=LOW:HIGH -> (name, low, high), for --knob-range."""
    name, _, span = text.partition("=")
    low, _, high = span.partition(":")
    try:
        values = float(low), float(high)
    except ValueError:
        values = ()
    if not name or len(values) != 2 or not all(math.isfinite(v) for v in values) or not values[1] > values[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=LOW:HIGH with LOW below HIGH, such as gain=0:10")
    return name, *values


def chrono(text: str) -> float | None:
    """--chrono's value (capture.config.read_chrono; None: auto), as argparse wants its errors."""
    try:
        return read_chrono(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_level(text: str) -> float:
    """--input-level's value (capture.config.read_input_level), as argparse wants its errors."""
    try:
        return read_input_level(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv):
    return build_parser().parse_args(argv)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Train an LSTM to reproduce the effect that turned INPUT into TARGET.",
        epilog="With no INPUT and TARGET (or with --demo) it makes a demo pair and trains on it.")
    p.add_argument("input", nargs="?", help="the dry recording (any format soundfile reads)")
    p.add_argument("target", nargs="?", help="the same recording through the effect")
    p.add_argument("--out", help="run folder (default: runs/<target name>-<date-time>)")
    p.add_argument("--demo", nargs="?", const="pair", choices=DEMOS,
                   help="train on generated audio written into the run folder: 'pair' (the default) a plucked-string "
                        "performance through an overdrive and a low-pass; 'knobs' the same pedal with a drive and a "
                        "tone knob, captured at 7 settings (a capture set, see --captures)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint.npz, with its "
                   "settings and stopping rule (--epochs, --budget, --patience given now replace the rule)")
    p.add_argument("--force", action="store_true", help="allow writing into a run folder that already holds "
                   "a model or checkpoint")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=int, help=f"LSTM hidden size H (default {DEFAULT_MODEL.hidden_size}, "
                   f"or {HIGH_GAIN_HIDDEN} for a high-gain pair given no --budget or one of {HIGH_GAIN_HIDDEN_BUDGET:g} s "
                   f"or more, and no --layers: the run says so)")
    g.add_argument("--layers", type=int, help=f"stacked LSTM layers (default {DEFAULT_MODEL.num_layers})")
    g.add_argument("--skip", action=argparse.BooleanOptionalAction,
                   help="add the input sample to the output (default on; --no-skip for effects whose output "
                        "is far from the input, such as a strong low-pass, and for export to .nam)")
    g.add_argument("--init", metavar="MODEL", help="start from this model's weights and architecture instead of "
                   "random ones: a model.npz, a Neural Amp Modeler .nam or an AIDA-X .json file (fine-tuning)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, help=f"stop after this many epochs in all (default {DEFAULT_EPOCHS})")
    g.add_argument("--budget", type=float, help="stop after this many seconds of training wall time in all, "
                   "validation included: a run stops before one more batch and its validation would end past "
                   f"it (the demo's default: {DEMO_BUDGET:g})")
    g.add_argument("--patience", type=int,
                   help=f"stop when the val ESR has not improved for this many epochs (default {DEFAULT_PATIENCE})")
    g.add_argument("--lr", type=float, default=DEFAULTS.lr, help=f"Adam learning rate (default {DEFAULTS.lr:g})")
    g.add_argument("--schedule", choices=SCHEDULES, default=DEFAULTS.schedule,
                   help="the learning rate over the run: constant (--lr throughout), budget (with --budget, falls from "
                        "--lr to 2 %% of it as the budget runs out; without one, as plateau), plateau (halved after 3 "
                        "epochs without a better val ESR). Every schedule rolls back an epoch whose val ESR spikes "
                        f"(--rollback-above) or diverges (default {DEFAULTS.schedule})")
    g.add_argument("--rollback-above", type=float, default=DEFAULTS.rollback_above, metavar="RATIO",
                   help="an epoch after the second whose val ESR is more than RATIO times the best so far is rolled "
                        "back to the best epoch and the learning rate halved (default %(default)g), as is one that "
                        "climbs (worse than the epoch before, itself worse than the best, and more than "
                        f"{CLIMB_ABOVE:g} times the best), and on the CPU, a short stretch of validation is scored "
                        "after each batch (or every few, where batches are short) from the third epoch, so that "
                        "a jump goes back to the best at once (lstm_core/probe.py); 0: none of them (a diverged "
                        "epoch always is)")
    g.add_argument("--undo-floor", type=float, default=DEFAULTS.undo_floor, metavar="FRACTION",
                   help="on the CPU a batch whose training loss jumps is undone and the learning rate halved (after "
                        "two in a row: back to the best epoch, halved again), but not below FRACTION of --lr (going "
                        "back again before a batch is kept halves it past the floor) (default "
                        f"{DEFAULTS.undo_floor:g}); 0: no floor, as before 2026-12-04, when a run that undid eight "
                        "batches went on at 1/256 of the rate")
    g.add_argument("--average", type=float, default=DEFAULTS.average,
                   help="every epoch validates the parameters and a running average of them (which rides out "
                        "the jitter and jumps of single Adam steps) and keeps the better; this is the average's "
                        "decay per update (default %(default)g); 0 validates the parameters alone, as before")
    g.add_argument("--batch", type=int, help=f"windows per batch (default {CPU.batch} on the CPU, "
                   f"{GPU.batch} on the GPU)")
    g.add_argument("--segment", type=float,
                   help=f"seconds of loss-carrying audio per window, rounded to whole --tbptt slices "
                        f"(default {CPU.segment} on the CPU, {GPU.segment} on the GPU)")
    g.add_argument("--warmup", type=int, default=DEFAULTS.warmup,
                   help=f"burn-in samples before each window's segment, no loss (default {DEFAULTS.warmup}; "
                        "1000 before 2026-12-01)")
    g.add_argument("--prewarm", type=int, default=DEFAULTS.prewarm, metavar="SAMPLES",
                   help="each window's warm-up starts from the state its own last SAMPLES samples leave (run from "
                        "zero), not from zero: a model in a stream never knows the state it should be in, and one "
                        "warmed up from zero alone can learn to hold a wrong one for seconds (default "
                        f"{DEFAULTS.prewarm}; 0: from zero, as before 2026-12-01 noon; no effect with --warmup 0)")
    g.add_argument("--chrono", type=chrono, metavar="SAMPLES",
                   help="a fresh model's forget-gate biases start as log(u), u uniform in 1 to SAMPLES - 1, and its "
                        "input-gate biases as -log(u), so that its cells start with memories of 1 to SAMPLES samples "
                        f"(the chrono initialisation). {ENVELOPE_CHRONO:g} taught effects with an envelope (an amp's "
                        "sag, a compressor) 1.4 to 1.7 times better at 120 s, and effects with little memory (a "
                        "filter, an overdrive, a fuzz) 3 to 10 times worse at 120 s; 0: forget-gate bias +1. "
                        f"Default (auto): a race: the two starts (0, then {ENVELOPE_CHRONO:g}) train {HEAT_EPOCHS} "
                        f"epochs each of at most {HEAT_AUDIO:g} s of windows from the training audio, or "
                        f"{HEAT_SHARE * 100:g} %% of --budget if that comes first, and the chrono "
                        f"start goes on if its best val ESR is {MARGIN:g} times lower, else the other; a budget under "
                        f"{MIN_RACE_BUDGET:g} s, or at most {HEAT_EPOCHS} epochs in all, is not raced; not with --init")
    g.add_argument("--tbptt", type=int, default=DEFAULTS.tbptt,
                   help=f"time steps per Adam update: truncated BPTT length (default {DEFAULTS.tbptt})")
    g.add_argument("--pre-emphasis", type=float, default=DEFAULTS.pre_emphasis, metavar="A",
                   help="the loss compares e[n] - A e[n-1] of the error, which weights the highs the ear "
                        "resolves (default %(default)g; 0.95 before 2026-12-01); 0: the plain error")
    g.add_argument("--input-level", type=input_level, metavar="DBFS",
                   help="train a quieter dry input as if it were at DBFS dBFS RMS: Adam's steps on the model's "
                        "input weights for the audio are 10^(DBFS/20) / the input's RMS times longer (1 to 1000 "
                        "times; a quiet DI track barely moves an untrained model); the start, the model and its "
                        f"files are unchanged; at most {MAX_INPUT_LEVEL:+g} (default {DEFAULT_INPUT_LEVEL:g}; off "
                        "for a pair that a 256-tap linear filter explains to an ESR below 1e-5, such as a clean "
                        f"filter; {HIGH_GAIN_INPUT_LEVEL:+g} for one whose best such filter leaves an ESR of "
                        f"{SATURATED_ESR:g} or more, such as a high-gain amp or a fuzz; a capture set only when every "
                        "trained row is; 'off' trains on the input as it is, as before 2026-12-01 and as --init "
                        "always does) (README, Defaults)")
    g.add_argument("--normalize-input", action="store_true", default=None,
                   help="the same as --input-level 0 (the default since 2026-12-01 for a pair neither linear nor "
                        "high-gain)")
    g.add_argument("--device", choices=("cpu", "gpu", "auto"),
                   help="where to train: cpu (NumPy), gpu (CuPy; an error without one), auto (default; "
                        "a resumed run: the device it was started with)")
    g.add_argument("--processes", type=int,
                   help="CPU processes sharing each batch (default: one per core)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g = p.add_argument_group("the pair")
    g.add_argument("--val-input", help="a separate validation input (with --val-target)")
    g.add_argument("--val-target", help="a separate validation target (with --val-input)")
    g.add_argument("--val-fraction", type=float, default=0.2,
                   help="without --val-input/--val-target: hold out this last part of the pair (default 0.2)")
    g.add_argument("--channel", type=int, help="use this channel (from 0) of multi-channel files "
                   "(default: mix down to mono)")
    g.add_argument("--trim", action="store_true", help="allow files of different lengths: cut the longer")
    g = p.add_argument_group("knobs: one model for every setting (a capture set)")
    g.add_argument("--captures", metavar="SET.csv", help="train one conditioned model on the recordings a CSV lists: "
                   "columns input, target, one per knob (its setting in each row) and optionally name; paths relative "
                   "to the CSV's folder")
    g.add_argument("--knob-range", type=knob_range, action="append", metavar="NAME=LOW:HIGH",
                   help="what 0 and 1 of a knob mean to the model (default: the lowest and highest setting in the "
                        "CSV); process.py refuses settings outside it")
    g.add_argument("--holdout", action="append", metavar="NAME",
                   help="a row of the capture set to validate only, never train on (to measure how well settings "
                        "between the trained ones come out); repeatable")
    g.add_argument("--knob-jitter", type=float, default=DEFAULTS.knob_jitter, metavar="SIGMA",
                   help="noise added to the knob inputs while training (one draw a window; the knob's range is 0 to "
                        "1), so that the model answers smoothly between the settings captured (default %(default)g; "
                        "0: none; with --knob-blend, only rows that cannot be blended get it)")
    g.add_argument("--knob-blend", type=float, default=DEFAULTS.knob_blend, metavar="FRACTION",
                   help="the fraction of windows moved to a setting between two neighbouring rows of the same dry "
                        "input, their targets mixed alike, so that the model learns what lies between the settings "
                        "captured (default %(default)g; 0: none)")
    g = p.add_argument_group("the pair, continued")
    g.add_argument("--align", action="store_true",
                   help="compensate the delay between input and target found by cross-correlation")
    return p


RESUME_MAY_CHANGE = ("input", "target", "resume", "force", "init", "epochs", "budget", "patience", "device")
REPEATABLE = ("knob_range", "holdout")   # flags given once per value: None when not typed


def resume_conflicts(argv: list) -> list[str]:
    """The flags typed with --resume that it would not honour: a resumed run keeps the
    settings it was started with (only the stopping rule, the device and, for a moved pair,
    INPUT TARGET may change), so anything else typed, even a default value, is pointed out."""
    parser = build_parser()
    not_given = object()
    defaults = vars(parser.parse_args([]))
    # The repeatable flags default to None and are typed when not None (argparse would append to a sentinel).
    parser.set_defaults(**{dest: not_given for dest, value in defaults.items() if value is not None
                           or dest not in REPEATABLE})
    typed = vars(parser.parse_args(argv))
    return [("--no-skip" if value is False else f"--{dest.replace('_', '-')}") for dest, value in typed.items()
            if dest not in RESUME_MAY_CHANGE and value is not not_given
            and not (value is None and dest in REPEATABLE)]


# ----------------------------------------------------------------------------- main

def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.init and args.resume:
        fail("--resume continues from the run's own checkpoint: leave out --init")
    conflicts = resume_conflicts(argv) if args.resume else []
    if conflicts:
        fail(f"--resume continues the run with the settings it was started with: leave out {', '.join(conflicts)} "
             f"(only --epochs, --budget, --patience and --device may change, and INPUT TARGET if the pair moved)")
    if args.resume:
        if args.input and not args.target:
            fail("give both INPUT and TARGET (or neither, for the demo)")
        config = ResumeConfig(args.resume, args.input, args.target, args.epochs, args.budget, args.patience,
                              args.device)
    else:
        settings = {name: value for name, value in vars(args).items() if name != "resume"}
        plain = args.input is None and not args.captures
        config = CaptureConfig(**{**settings, "demo": args.demo or ("pair" if plain else None),
                                  "knob_range": tuple(args.knob_range or ()), "holdout": tuple(args.holdout or ())})
    previous = signal.signal(signal.SIGTERM, _terminate)   # `kill` ends a run as Ctrl-C does: state saved, no traceback
    try:
        return run_command(config)
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(config) -> int:
    """One call into capture; every expected failure becomes one line."""
    reporter = ConsoleReporter()
    try:
        outcome = run_capture(config, reporter)
    except (AudioError, ModelFileError, BackendError, WorkerError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:                       # an unwritable folder, a full disk
        fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}")
    except KeyboardInterrupt as exc:             # before the first epoch began, or after the last
        print("\ninterrupted outside the epochs: a finished epoch is saved and can be resumed with --resume; "
              "before the first, run the same command with --force to start again")
        return interrupted_code(exc)
    finally:
        reporter.close()
    if outcome.interrupted is not None:
        if outcome.progress.epoch > 0:
            print(f"\ninterrupted: the last finished epoch is saved; continue with  python train.py --resume "
                  f"{outcome.folder}")
        else:
            print(f"\ninterrupted before the first epoch finished: there is nothing to resume; to start again in "
                  f"{outcome.folder}, run the same command with --force")
        return interrupted_code(outcome.interrupted)
    if outcome.reason:
        print(summary(outcome))
    return 0


def _terminate(signum, frame):
    raise KeyboardInterrupt("terminated")


def interrupted_code(exc: KeyboardInterrupt) -> int:
    """The exit code of a run ended by Ctrl-C (130) or by SIGTERM (143), as shells report them."""
    return 143 if exc.args == ("terminated",) else 130


class ConsoleReporter(Reporter):
    """Lines on stdout; a tqdm bar per epoch (samples, samples/s, ETA), silent when not on a terminal."""

    def __init__(self):
        self._bar = None

    def note(self, text: str):
        self.close()
        print(text, flush=True)

    def batch(self, done: int, total: int, seconds: float, loss):
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, unit="sample", unit_scale=True, leave=False, disable=None,
                             dynamic_ncols=True)
        if self._bar.disable:
            return                     # no terminal: no bar, and no read of the loss from the device
        self._bar.set_postfix(loss=f"{float(loss):.4g}", refresh=False)
        self._bar.update(done - self._bar.n)

    def epoch(self, row: dict, improved: bool):
        self.close()
        mark = " *" if improved else ""
        event = f"  {row['event']}" if row.get("event") else ""
        print(f"epoch {row['epoch']:4d}  loss {row['train_loss']:.4g}  val ESR {row['val_esr']:.4g} "
              f"({db(row['val_esr']):6.1f} dB){mark}  {row['samples_per_s'] / 1e3:7.0f}k samples/s  "
              f"{row['seconds']:6.1f} s{event}", flush=True)

    def rival_epoch(self, row: dict, improved: bool):
        self.epoch(row, improved)              # the race's second heat, told as the first

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


if __name__ == "__main__":
    sys.exit(main())
