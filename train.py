"""Train an LSTM to reproduce an audio effect from a pair of recordings.

    python train.py dry.wav wet.wav              # writes runs/wet-<date-time>/model.npz
    python train.py                              # the built-in demo (same as --demo)
    python train.py --resume runs/wet-...        # continue an interrupted run

Everything of substance lives in the packages (audio_io reads and checks the pair and
cuts windows; lstm_core trains); this file reads the options, makes the run folder,
prints progress and writes the files.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from audio_io.files import AudioError, write_audio_atomic
from audio_io.pair import Pair, load_pair
from audio_io.windows import epoch_batches, split_validation, window_count
from lstm_core import __version__
from lstm_core.adam import AdamState
from lstm_core.backend import BackendError, get_xp, is_gpu, to_device, to_numpy
from lstm_core.checkpoint import ModelFileError, load_model, load_npz, save_model, save_npz_atomic
from lstm_core.inference import process_parallel
from lstm_core.loop import HISTORY_COLUMNS, Progress, StopRule, fit
from lstm_core.losses import esr
from lstm_core.model import ModelConfig, init_params
from lstm_core.parallel import ParallelTrainer, available_cores
from lstm_core.training import (DEFAULT_BATCH, DEFAULT_SEGMENT_SECONDS, TrainConfig, segment_samples,
                                 train_window)
from lstm_core.workspace import Workspace

DEFAULTS = TrainConfig()
DEMO_SECONDS = 40
DEMO_BUDGET = 60.0       # seconds: the demo shows learning within about a minute
DEMO_RATE = 44100
SMALL_DELAY = 2          # samples of lag a filter's own group delay can explain


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
    device: str


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Train an LSTM to reproduce the effect that turned INPUT into TARGET.",
        epilog="With no INPUT and TARGET (or with --demo) it makes a demo pair and trains on it.")
    p.add_argument("input", nargs="?", help="the dry recording (any format soundfile reads)")
    p.add_argument("target", nargs="?", help="the same recording through the effect")
    p.add_argument("--out", help="run folder (default: runs/<target name>-<date-time>)")
    p.add_argument("--demo", action="store_true", help="train on a generated demo pair (a plucked-string "
                   "performance through an overdrive and a low-pass), written into the run folder")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint.npz")
    p.add_argument("--force", action="store_true", help="allow writing into a run folder that already holds "
                   "a model or checkpoint")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=int, default=32, help="LSTM hidden size H (default 32)")
    g.add_argument("--layers", type=int, default=1, help="stacked LSTM layers (default 1)")
    g.add_argument("--skip", action=argparse.BooleanOptionalAction, default=True,
                   help="add the input sample to the output (default on; --no-skip for effects whose output "
                        "is far from the input, such as a strong low-pass)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=1000, help="stop after this many epochs (default 1000)")
    g.add_argument("--budget", type=float, help="stop after this many seconds of training wall time "
                   f"(the demo's default: {DEMO_BUDGET:g})")
    g.add_argument("--patience", type=int, default=25,
                   help="stop when the val ESR has not improved for this many epochs (default 25)")
    g.add_argument("--lr", type=float, default=DEFAULTS.lr, help=f"Adam learning rate (default {DEFAULTS.lr:g})")
    g.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"windows per batch (default {DEFAULT_BATCH})")
    g.add_argument("--segment", type=float, default=DEFAULT_SEGMENT_SECONDS,
                   help=f"seconds of loss-carrying audio per window, rounded to whole --tbptt slices "
                        f"(default {DEFAULT_SEGMENT_SECONDS})")
    g.add_argument("--warmup", type=int, default=DEFAULTS.warmup,
                   help=f"burn-in samples before each window's segment, no loss (default {DEFAULTS.warmup})")
    g.add_argument("--tbptt", type=int, default=DEFAULTS.tbptt,
                   help=f"time steps per Adam update: truncated BPTT length (default {DEFAULTS.tbptt})")
    g.add_argument("--device", choices=("cpu", "gpu", "auto"), default="auto",
                   help="where to train: cpu (NumPy), gpu (CuPy; an error without one), auto (default)")
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
    g.add_argument("--align", action="store_true",
                   help="compensate the delay between input and target found by cross-correlation")
    return p.parse_args(argv)


def fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


# ----------------------------------------------------------------------------- the run folder

def run_folder(args) -> Path:
    if args.resume:
        return Path(args.resume)
    if args.out:
        return Path(args.out)
    name = "demo" if args.demo else Path(args.target).stem
    return Path("runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def prepare_folder(folder: Path, force: bool, resuming: bool):
    if resuming:
        if not (folder / "checkpoint.npz").is_file():
            fail(f"{folder}: no checkpoint.npz to resume from")
        return
    taken = [name for name in ("model.npz", "checkpoint.npz") if (folder / name).exists()]
    if taken and not force:
        fail(f"{folder} already holds {' and '.join(taken)}: choose another --out, resume it with --resume, "
             f"or pass --force to replace them")
    if folder.exists() and not folder.is_dir():
        fail(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)


def write_demo_pair(folder: Path, seed: int) -> tuple[str, str]:
    from audio_io.demo import demo_pair

    dry, wet = demo_pair(DEMO_SECONDS, DEMO_RATE, seed)
    paths = folder / "demo_input.wav", folder / "demo_target.wav"
    for path, samples in zip(paths, (dry, wet)):
        write_audio_atomic(path, samples, DEMO_RATE, "PCM_24")
    return str(paths[0]), str(paths[1])


def write_history(folder: Path, history: list):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    temporary = folder / ".history.csv.tmp"
    temporary.write_text(text.getvalue())
    os.replace(temporary, folder / "history.csv")


# ----------------------------------------------------------------------------- data

def load_data(options: RunOptions, warmup: int, segment_samples: int, rate_hint=None):
    """(train x, y, val x, y, rate, pair) after the checks; prints the notes."""
    window = warmup + segment_samples
    pair = load_pair(options.input, options.target, options.channel, options.trim, options.align, min_length=window)
    for note in pair.notes:
        print(f"note: {note}")
    report_delay(pair)
    if options.val_input or options.val_target:
        if not (options.val_input and options.val_target):
            raise AudioError("--val-input and --val-target go together: give both, or neither")
        val = load_pair(options.val_input, options.val_target, options.channel, options.trim, options.align)
        if val.rate != pair.rate:
            raise AudioError(f"{options.val_input} is {val.rate} Hz but the training pair is {pair.rate} Hz")
        x_train, y_train, x_val, y_val = pair.input, pair.target, val.input, val.target
    else:
        x_train, y_train, x_val, y_val = split_validation(pair.input, pair.target, options.val_fraction)
        if x_train.size < window:
            raise AudioError(f"{options.input}: after holding out {options.val_fraction:.0%} for validation, "
                             f"{x_train.size} samples are left, fewer than one window ({window}); use a longer "
                             f"recording, a shorter --segment, or --val-input/--val-target")
    return x_train, y_train, x_val, y_val, pair


def report_delay(pair: Pair):
    ms = 1000.0 * pair.delay / pair.rate
    if pair.aligned:
        print(f"alignment: the target was {pair.delay} samples ({ms:.2f} ms) behind the input; compensated (--align)")
    elif pair.delay < 0:
        print(f"alignment: warning: the target LEADS the input by {-pair.delay} samples ({-ms:.2f} ms), which no "
              f"causal model can learn; check the files, or pass --align")
    elif pair.delay > SMALL_DELAY:
        print(f"alignment: the target lags the input by {pair.delay} samples ({ms:.2f} ms); if that is latency "
              f"and not the effect, pass --align (misaligned pairs are the commonest reason a capture trains badly)")
    else:
        print(f"alignment: delay {pair.delay} sample(s), as filters themselves delay: nothing to do")


# ----------------------------------------------------------------------------- main

def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.input and not args.target:
        fail("give both INPUT and TARGET (or neither, for the demo)")
    if args.demo and args.input:
        fail("--demo trains on generated audio: leave out INPUT and TARGET")
    demo = args.demo or (args.input is None and not args.resume)
    args.demo = demo
    try:
        xp = get_xp(args.device)
    except BackendError as exc:
        fail(str(exc))
    folder = run_folder(args)
    prepare_folder(folder, args.force, bool(args.resume))

    try:
        if args.resume:
            setup = resume_setup(folder, args)
        else:
            setup = fresh_setup(folder, args, xp)
        return train(folder, setup, xp)
    except (AudioError, ModelFileError, BackendError, ValueError) as exc:
        fail(str(exc))


@dataclass
class Setup:
    options: RunOptions
    model: ModelConfig
    train: TrainConfig
    rule: StopRule
    params: dict
    adam: AdamState
    progress: Progress
    rng: np.random.Generator
    best_params: dict | None = None


def fresh_setup(folder: Path, args, xp) -> Setup:
    if args.demo:
        args.input, args.target = write_demo_pair(folder, args.seed)
        print(f"demo: wrote {args.input} and {args.target} ({DEMO_SECONDS} s at {DEMO_RATE} Hz)")
    processes = args.processes if args.processes is not None else (1 if is_gpu(xp) else available_cores())
    options = RunOptions(args.input, args.target, args.val_input, args.val_target, args.val_fraction, args.segment,
                         args.batch, args.seed, args.channel, args.trim, args.align, processes, args.device)
    validate_options(options)
    model = ModelConfig(hidden_size=args.hidden, num_layers=args.layers, skip=args.skip)
    train = TrainConfig(lr=args.lr, warmup=args.warmup, tbptt=args.tbptt)
    budget = DEMO_BUDGET if args.demo and args.budget is None else args.budget
    rule = StopRule(args.epochs, budget, args.patience)
    rng = np.random.default_rng(args.seed)
    params = {k: to_device(v, xp) for k, v in init_params(model, rng).items()}
    return Setup(options, model, train, rule, params, AdamState(), Progress(), rng)


def resume_setup(folder: Path, args) -> Setup:
    arrays, meta = load_npz(folder / "checkpoint.npz")
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(f"{folder / 'checkpoint.npz'}: not a training checkpoint")
    xp = get_xp(args.device)
    options = RunOptions(**meta["options"])
    if args.input:
        options = RunOptions(**{**asdict(options), "input": args.input, "target": args.target})
    model = ModelConfig.from_dict(meta["model"])
    train = TrainConfig(**meta["train"])
    rule = StopRule(args.epochs, args.budget, args.patience)
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    params = {k: to_device(v, xp) for k, v in arrays.items() if k.startswith("lstm") or k.startswith("out.")}
    best = {k[len("best."):]: to_device(v, xp) for k, v in arrays.items() if k.startswith("best.")}
    adam = AdamState.from_arrays({k: to_device(v, xp) for k, v in arrays.items() if k.startswith("adam.")})
    progress = Progress.from_dict(meta["progress"])
    print(f"resuming {folder} after epoch {progress.epoch} (best val ESR {progress.best_esr:.4g})")
    return Setup(options, model, train, rule, params, adam, progress, rng, best or None)


def validate_options(options: RunOptions):
    if options.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {options.batch}")
    if not options.segment > 0:
        raise ValueError(f"--segment must be a positive number of seconds, got {options.segment}")
    if options.processes < 1:
        raise ValueError(f"--processes must be at least 1, got {options.processes}")


def train(folder: Path, setup: Setup, xp) -> int:
    options, model, train_config = setup.options, setup.model, setup.train
    segment = segment_samples(options.segment, load_rate(options.input), train_config.tbptt)
    x_train, y_train, x_val, y_val, pair = load_data(options, train_config.warmup, segment)
    windows = window_count(x_train.size, segment, train_config.warmup)
    print(f"pair: {pair.input.size / pair.rate:.1f} s at {pair.rate} Hz; training on {x_train.size / pair.rate:.1f} s "
          f"({windows} windows of {train_config.warmup} + {segment} samples), validating on "
          f"{x_val.size / pair.rate:.1f} s")
    params_count = sum(int(np.prod(v.shape)) for v in setup.params.values())
    device = "GPU (CuPy)" if is_gpu(xp) else f"CPU, {options.processes} process(es)"
    print(f"model: LSTM H={model.hidden_size} x {model.num_layers} layer(s), skip {'on' if model.skip else 'off'}, "
          f"{params_count} parameters; training on {device}")

    best_params = setup.best_params or {k: v.copy() for k, v in setup.params.items()}
    extra_meta = {"options": asdict(options), "train": train_config.to_dict(), "segment_samples": segment}

    def validate(params):
        y = process_parallel(params, model, x_val, xp, parts=32, overlap=8192)
        return float(esr(y, y_val))

    def make_batches():
        return epoch_batches(x_train, y_train, segment, train_config.warmup, options.batch, setup.rng)

    bar = ProgressBar(windows * segment)

    def on_epoch(progress: Progress, improved: bool):
        bar.close()
        row = progress.history[-1]
        if improved:
            for name, value in setup.params.items():
                best_params[name] = value.copy()
            save_model(folder / "model.npz", best_params, model, pair.rate,
                       {**extra_meta, "val_esr": progress.best_esr, "epoch": progress.epoch,
                        "trained_seconds": progress.seconds, "date": datetime.now().isoformat(timespec="seconds")})
        save_checkpoint(folder, setup, best_params, pair.rate, extra_meta)
        write_history(folder, progress.history)
        mark = " *" if improved else ""
        print(f"epoch {row['epoch']:4d}  loss {row['train_loss']:.4g}  val ESR {row['val_esr']:.4g} "
              f"({db(row['val_esr']):6.1f} dB){mark}  {row['samples_per_s'] / 1e3:7.0f}k samples/s  "
              f"{row['seconds']:6.1f} s", flush=True)

    if setup.rule.budget is not None and setup.progress.seconds >= setup.rule.budget:
        print(f"the budget of {setup.rule.budget:g} s is already used up by this run")
    trainer = None
    workspace = Workspace()
    step = lambda p, a, x, y, t: train_window(p, model, a, x, y, t, workspace)  # noqa: E731
    if not is_gpu(xp) and options.processes > 1:
        trainer = ParallelTrainer(model, options.processes, train_config.warmup + segment, options.batch)
        step = trainer.train_window
    try:
        reason = fit(setup.params, setup.adam, train_config, setup.progress, setup.rule, xp, make_batches, step,
                     validate, on_epoch=on_epoch, on_batch=bar.update)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted: the last finished epoch is saved; continue with  python train.py --resume {folder}")
        return 130
    finally:
        if trainer is not None:
            trainer.close()
    y_best = process_parallel(best_params, model, x_val, xp, parts=32, overlap=8192)
    write_audio_atomic(folder / "val_prediction.wav", y_best, pair.rate, "FLOAT")
    progress = setup.progress
    print(f"best val ESR {progress.best_esr:.4g} ({db(progress.best_esr):.1f} dB) at epoch {progress.best_epoch}; "
          f"{progress.epoch} epochs, {progress.seconds:.1f} s ({reason}); model: {folder / 'model.npz'}")
    return 0


def save_checkpoint(folder: Path, setup: Setup, best_params: dict, rate: int, extra_meta: dict):
    arrays = dict(setup.params)
    arrays.update({f"best.{k}": v for k, v in best_params.items()})
    arrays.update(setup.adam.to_arrays())
    meta = {"kind": "checkpoint", "version": __version__, "model": setup.model.to_dict(), "sample_rate": rate,
            "rng": setup.rng.bit_generator.state, "progress": setup.progress.to_dict(), **extra_meta}
    save_npz_atomic(folder / "checkpoint.npz", arrays, meta)


def load_rate(path) -> int:
    import soundfile as sf

    if not Path(path).is_file():
        raise AudioError(f"{path}: no such file")
    try:
        return int(sf.info(str(path)).samplerate)
    except Exception as exc:
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from None


def db(value: float) -> float:
    return 10.0 * math.log10(max(value, 1e-12))


class ProgressBar:
    """A tqdm bar per epoch (samples, samples/s, ETA); silent when not on a terminal."""

    def __init__(self, total: int):
        self.total = total
        self._bar = None

    def update(self, done: int, seconds: float, loss):
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=self.total, unit="sample", unit_scale=True, leave=False, disable=None,
                             dynamic_ncols=True)
        if self._bar.disable:
            return                     # no terminal: no bar, and no read of the loss from the device
        self._bar.set_postfix(loss=f"{float(loss):.4g}", refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


if __name__ == "__main__":
    sys.exit(main())
