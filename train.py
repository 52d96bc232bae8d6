"""Train an LSTM to reproduce an audio effect from a pair of recordings.

    python train.py dry.wav wet.wav              # writes runs/wet-<date-time>/model.npz
    python train.py                              # the built-in demo (same as --demo)
    python train.py --resume runs/wet-...        # continue an interrupted run
    python train.py dry.wav wet.wav --init amp.nam   # fine-tune a model (ours, .nam or AIDA-X .json)

Everything of substance lives in the packages (audio_io reads and checks the pair and
cuts windows; lstm_core trains); this file reads the options, makes the run folder,
prints progress and writes the files.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from audio_io.demo import DEMO_FILES, pair_file
from audio_io.files import AudioError, atomic_output, write_audio_atomic
from audio_io.pair import SILENCE_PEAK, Pair, load_pair
from audio_io.windows import epoch_batches, split_validation, window_count
from lstm_core import __version__
from lstm_core.adam import AdamState
from lstm_core.backend import BackendError, get_xp, is_gpu, to_device
from lstm_core.checkpoint import ModelFileError, check_params, load_npz, save_model, save_npz_atomic
from lstm_core.inference import process_parallel
from lstm_core.loop import HISTORY_COLUMNS, Progress, StopRule, fit
from lstm_core.losses import esr
from lstm_core.model import ModelConfig, init_params
from lstm_core.model_files import read_model
from lstm_core.parallel import ParallelTrainer, WorkerError, available_cores
from lstm_core.training import (DEFAULT_BATCH, DEFAULT_SEGMENT_SECONDS, GPU_BATCH, GPU_SEGMENT_SECONDS, TrainConfig,
                                 device_defaults, segment_samples, train_window)
from lstm_core.workspace import Workspace

from command_line import ArgumentParser, fail

DEFAULTS = TrainConfig()
DEFAULT_MODEL = ModelConfig()
DEMO_SECONDS = 40
DEMO_BUDGET = 60.0       # seconds: the demo shows learning within about a minute
DEFAULT_EPOCHS = 1000
DEFAULT_PATIENCE = 25
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
    init: str | None = None   # the model the weights started from (--init), if any


def parse_args(argv):
    return build_parser().parse_args(argv)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Train an LSTM to reproduce the effect that turned INPUT into TARGET.",
        epilog="With no INPUT and TARGET (or with --demo) it makes a demo pair and trains on it.")
    p.add_argument("input", nargs="?", help="the dry recording (any format soundfile reads)")
    p.add_argument("target", nargs="?", help="the same recording through the effect")
    p.add_argument("--out", help="run folder (default: runs/<target name>-<date-time>)")
    p.add_argument("--demo", action="store_true", help="train on a generated demo pair (a plucked-string "
                   "performance through an overdrive and a low-pass), written into the run folder")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint.npz, with its "
                   "settings and stopping rule (--epochs, --budget, --patience given now replace the rule)")
    p.add_argument("--force", action="store_true", help="allow writing into a run folder that already holds "
                   "a model or checkpoint")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=int, help=f"LSTM hidden size H (default {DEFAULT_MODEL.hidden_size})")
    g.add_argument("--layers", type=int, help=f"stacked LSTM layers (default {DEFAULT_MODEL.num_layers})")
    g.add_argument("--skip", action=argparse.BooleanOptionalAction,
                   help="add the input sample to the output (default on; --no-skip for effects whose output "
                        "is far from the input, such as a strong low-pass, and for export to .nam)")
    g.add_argument("--init", metavar="MODEL", help="start from this model's weights and architecture instead of "
                   "random ones: a model.npz, a Neural Amp Modeler .nam or an AIDA-X .json file (fine-tuning)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, help=f"stop after this many epochs in all (default {DEFAULT_EPOCHS})")
    g.add_argument("--budget", type=float, help="stop after this many seconds of training wall time in all, "
                   f"validation included (the demo's default: {DEMO_BUDGET:g})")
    g.add_argument("--patience", type=int,
                   help=f"stop when the val ESR has not improved for this many epochs (default {DEFAULT_PATIENCE})")
    g.add_argument("--lr", type=float, default=DEFAULTS.lr, help=f"Adam learning rate (default {DEFAULTS.lr:g})")
    g.add_argument("--batch", type=int, help=f"windows per batch (default {DEFAULT_BATCH} on the CPU, "
                   f"{GPU_BATCH} on the GPU)")
    g.add_argument("--segment", type=float,
                   help=f"seconds of loss-carrying audio per window, rounded to whole --tbptt slices "
                        f"(default {DEFAULT_SEGMENT_SECONDS} on the CPU, {GPU_SEGMENT_SECONDS} on the GPU)")
    g.add_argument("--warmup", type=int, default=DEFAULTS.warmup,
                   help=f"burn-in samples before each window's segment, no loss (default {DEFAULTS.warmup})")
    g.add_argument("--tbptt", type=int, default=DEFAULTS.tbptt,
                   help=f"time steps per Adam update: truncated BPTT length (default {DEFAULTS.tbptt})")
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
    g.add_argument("--align", action="store_true",
                   help="compensate the delay between input and target found by cross-correlation")
    return p


RESUME_MAY_CHANGE = ("input", "target", "resume", "force", "init", "epochs", "budget", "patience", "device")


def resume_conflicts(argv: list) -> list[str]:
    """The flags typed with --resume that it would not honour: a resumed run keeps the
    settings it was started with (only the stopping rule, the device and, for a moved pair,
    INPUT TARGET may change), so anything else typed, even a default value, is pointed out."""
    parser = build_parser()
    not_given = object()
    parser.set_defaults(**{dest: not_given for dest in vars(parser.parse_args([]))})
    typed = vars(parser.parse_args(argv))
    return [("--no-skip" if value is False else f"--{dest.replace('_', '-')}") for dest, value in typed.items()
            if dest not in RESUME_MAY_CHANGE and value is not not_given]


# ----------------------------------------------------------------------------- the run folder

RUN_FILES = ("model.npz", "checkpoint.npz", "history.csv", "val_prediction.wav", *DEMO_FILES,
             "report.html", "curves.png", "prediction.png")


def run_folder(args) -> Path:
    if args.resume:
        return Path(args.resume)
    if args.out:
        return Path(args.out)
    name = "demo" if args.demo else Path(args.target).stem
    base = Path("runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder, count = base, 1
    while folder.exists():                       # two runs started in the same second
        count += 1
        folder = base.with_name(f"{base.name}-{count}")
    return folder


def prepare_folder(folder: Path, force: bool):
    if folder.exists() and not folder.is_dir():
        fail(f"{folder} exists and is not a folder")
    taken = [name for name in RUN_FILES if (folder / name).exists()]
    if taken and not force:
        fail(f"{folder} already holds {', '.join(taken)}: choose another --out, resume it with --resume, "
             f"or pass --force to replace them")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        fail(f"{folder}: cannot write there (read-only, or not yours): choose another --out")


def write_demo_pair(folder: Path, seed: int) -> tuple[str, str]:
    from audio_io.demo import demo_pair

    dry, wet = demo_pair(DEMO_SECONDS, DEMO_RATE, seed)
    paths = tuple(folder / name for name in DEMO_FILES)
    for path, samples in zip(paths, (dry, wet)):
        write_audio_atomic(path, samples, DEMO_RATE, "PCM_24")
    return absolute(paths[0]), absolute(paths[1])


def absolute(path) -> str | None:
    """The path as an absolute string, so that what the run stores (and the report reads
    back) does not depend on the folder train.py was started from."""
    return None if path is None else str(Path(path).resolve())


def write_history(folder: Path, history: list):
    with atomic_output(folder / "history.csv") as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


# ----------------------------------------------------------------------------- data

@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    pair: Pair
    segment: int              # loss-carrying samples per window (whole TBPTT slices)


MIN_VALIDATION = 1000         # samples


def load_data(options: RunOptions, train: TrainConfig) -> Data:
    """The checked pair, split for validation; prints the notes. Raises AudioError."""
    pair = load_pair(options.input, options.target, options.channel, options.trim, options.align)
    segment = segment_samples(options.segment, pair.rate, train.tbptt)
    window = train.warmup + segment
    for note in pair.notes:
        print(f"note: {note}")
    report_delay(pair)
    if options.val_input or options.val_target:
        if not (options.val_input and options.val_target):
            raise AudioError("--val-input and --val-target go together: give both, or neither")
        val = load_pair(options.val_input, options.val_target, options.channel, options.trim, options.align)
        if val.rate != pair.rate:
            raise AudioError(f"{options.val_input} is {val.rate} Hz but the training pair is {pair.rate} Hz")
        data = Data(pair.input, pair.target, val.input, val.target, pair, segment)
    else:
        data = Data(*split_validation(pair.input, pair.target, options.val_fraction), pair, segment)
    if data.x_train.size < window:
        raise AudioError(f"{options.input}: {data.x_train.size} samples ({data.x_train.size / pair.rate:.2f} s) are "
                         f"left for training, fewer than one window ({train.warmup} + {segment}); use a longer "
                         f"recording, a shorter --segment or --warmup, or --val-input/--val-target")
    if data.x_val.size < MIN_VALIDATION:
        raise AudioError(f"only {data.x_val.size} samples are left for validation; use a larger --val-fraction "
                         f"or --val-input/--val-target")
    if np.abs(data.y_val).max() < SILENCE_PEAK:
        raise AudioError("the validation target is silent: choose other validation audio (--val-input/--val-target "
                         "or --val-fraction)")
    return data


def report_delay(pair: Pair):
    ms = 1000.0 * pair.delay / pair.rate
    if pair.aligned:
        side = "behind" if pair.delay > 0 else "ahead of"
        print(f"alignment: the target was {abs(pair.delay)} samples ({abs(ms):.2f} ms) {side} the input; "
              f"compensated (--align)")
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
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.input and not args.target:
        fail("give both INPUT and TARGET (or neither, for the demo)")
    if args.demo and args.input:
        fail("--demo trains on generated audio: leave out INPUT and TARGET")
    if args.init and args.resume:
        fail("--resume continues from the run's own checkpoint: leave out --init")
    conflicts = resume_conflicts(argv) if args.resume else []
    if conflicts:
        fail(f"--resume continues the run with the settings it was started with: leave out {', '.join(conflicts)} "
             f"(only --epochs, --budget, --patience and --device may change, and INPUT TARGET if the pair moved)")
    args.demo = args.demo or (args.input is None and not args.resume)
    previous = signal.signal(signal.SIGTERM, _terminate)   # `kill` ends a run as Ctrl-C does: state saved, no traceback
    try:
        return run_command(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(args) -> int:
    """Set up (fresh, demo or resumed), train, and turn every expected failure into one line."""
    try:
        folder = run_folder(args)
        if args.resume:
            setup, xp = resume_setup(folder, args)
            data = load_data(setup.options, setup.train)
        else:
            xp = get_xp(args.device or "auto")
            setup = fresh_setup(args, xp)
            data = None if args.demo else load_data(setup.options, setup.train)   # before any folder exists
            prepare_folder(folder, args.force)
            if args.demo:
                demo_input, demo_target = write_demo_pair(folder, args.seed)
                print(f"demo: wrote {demo_input} and {demo_target} ({DEMO_SECONDS} s at {DEMO_RATE} Hz)")
                setup.options = replace(setup.options, input=demo_input, target=demo_target)
                data = load_data(setup.options, setup.train)
            rate = setup.init_rate
            if rate and rate != data.pair.rate:
                print(f"warning: {args.init} was trained at {rate} Hz and the pair is {data.pair.rate} Hz: its "
                      f"weights fit another rate, so fine-tuning starts further from the goal")
        return train(folder, setup, data, xp)
    except (AudioError, ModelFileError, BackendError, WorkerError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:                       # an unwritable folder, a full disk
        fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}")
    except KeyboardInterrupt as exc:             # before the first epoch began, or after the last
        print("\ninterrupted outside the epochs: a finished epoch is saved and can be resumed with --resume; "
              "before the first, run the same command with --force to start again")
        return interrupted_code(exc)


def _terminate(signum, frame):
    raise KeyboardInterrupt("terminated")


def interrupted_code(exc: KeyboardInterrupt) -> int:
    """The exit code of a run ended by Ctrl-C (130) or by SIGTERM (143), as shells report them."""
    return 143 if exc.args == ("terminated",) else 130


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
    init_rate: int | None = None        # the sample rate the --init model names, if any


def check_flags(args):
    """Stop on a flag outside its range, naming the flag."""
    positive = {"--hidden": args.hidden, "--layers": args.layers, "--batch": args.batch}
    for flag, value in positive.items():
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if args.tbptt < 2:      # the pre-emphasised error of a 1-step slice is empty: nothing to learn from
        raise ValueError(f"--tbptt must be at least 2 time steps, got {args.tbptt}")
    if args.seed < 0:
        raise ValueError(f"--seed must be 0 or more, got {args.seed}")
    if args.processes is not None and args.processes < 1:
        raise ValueError(f"--processes must be at least 1, got {args.processes}")
    if args.warmup < 0:
        raise ValueError(f"--warmup must be 0 or more samples, got {args.warmup}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if args.segment is not None and not (math.isfinite(args.segment) and args.segment > 0):
        raise ValueError(f"--segment must be a positive number of seconds, got {args.segment}")
    if not 0.0 < args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")


def stop_rule(args, stored: dict | None = None) -> StopRule:
    """The flags given, over the stored rule of a resumed run, over the defaults."""
    rule = dict(stored or {"epochs": DEFAULT_EPOCHS, "budget": DEMO_BUDGET if args.demo else None,
                           "patience": DEFAULT_PATIENCE})
    for name in ("epochs", "budget", "patience"):
        if getattr(args, name) is not None:
            rule[name] = getattr(args, name)
    return StopRule(**rule)


def fresh_setup(args, xp) -> Setup:
    check_flags(args)
    processes = args.processes if args.processes is not None else (1 if is_gpu(xp) else available_cores())
    window_defaults = device_defaults("gpu" if is_gpu(xp) else "cpu")
    segment = window_defaults["segment"] if args.segment is None else args.segment
    batch = window_defaults["batch"] if args.batch is None else args.batch
    options = RunOptions(absolute(args.input), absolute(args.target), absolute(args.val_input),
                         absolute(args.val_target), args.val_fraction, segment, batch, args.seed, args.channel, args.trim,
                         args.align, processes, args.device or "auto", absolute(args.init))
    train = TrainConfig(lr=args.lr, warmup=args.warmup, tbptt=args.tbptt)
    rng = np.random.default_rng(args.seed)
    init_rate = None
    if args.init:
        model, params, init_rate = initial_model(args)
    else:
        model = ModelConfig(hidden_size=args.hidden or DEFAULT_MODEL.hidden_size,
                            num_layers=args.layers or DEFAULT_MODEL.num_layers,
                            skip=DEFAULT_MODEL.skip if args.skip is None else args.skip)
        params = init_params(model, rng)
    params = {k: to_device(v, xp) for k, v in params.items()}
    return Setup(options, model, train, stop_rule(args), params, AdamState(), Progress(), rng, init_rate=init_rate)


def initial_model(args) -> tuple[ModelConfig, dict, int | None]:
    """(config, params, sample rate) of the --init model; its architecture stands, so model
    flags must agree."""
    loaded = read_model(args.init)
    config = loaded.config
    for note in loaded.notes:
        print(f"note: {note}")
    given = {"--hidden": (args.hidden, config.hidden_size), "--layers": (args.layers, config.num_layers),
             "--skip": (args.skip, config.skip)}
    for flag, (value, stored) in given.items():
        if value is not None and value != stored:
            raise ValueError(f"--init {args.init} brings its own architecture (hidden {config.hidden_size}, layers "
                             f"{config.num_layers}, skip {'on' if config.skip else 'off'}): leave out {flag}")
    if config.input_size != 1:
        raise ValueError(f"{args.init}: a conditioned model ({config.input_size - 1} input(s) besides the audio, such "
                         f"as a knob); train.py trains on audio pairs only, so it cannot fine-tune it")
    print(f"init: starting from {args.init} (LSTM H={config.hidden_size} x {config.num_layers} layer(s), skip "
          f"{'on' if config.skip else 'off'}{f', {loaded.sample_rate} Hz' if loaded.sample_rate else ''})")
    return config, loaded.params, loaded.sample_rate


def resume_setup(folder: Path, args) -> tuple[Setup, object]:
    """The run in ``folder`` as its checkpoint left it, and the array module to go on with
    (--device if given now, else the device the run was started with)."""
    path = folder / "checkpoint.npz"
    if not path.is_file():
        raise ModelFileError(f"{folder}: no checkpoint.npz to resume from")
    arrays, meta = load_npz(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(f"{path}: not a training checkpoint")
    try:
        options = RunOptions(**meta["options"])
        if args.input:
            options = replace(options, input=absolute(args.input), target=absolute(args.target))
        else:                                    # a moved or renamed run folder still holds its demo pair
            options = replace(options, input=pair_file(options.input, folder), target=pair_file(options.target, folder))
        if args.device:
            options = replace(options, device=args.device)
        model = ModelConfig.from_dict(meta["model"])
        train = TrainConfig(**meta["train"])
        StopRule(**meta["rule"])
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        params = check_params(path, arrays, model)
        best = check_params(path, {k[len("best."):]: v for k, v in arrays.items() if k.startswith("best.")}, model)
        adam = AdamState.from_arrays({k: v for k, v in arrays.items() if k.startswith("adam.")})
        progress = Progress.from_dict(meta["progress"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the checkpoint is damaged or from another version ({exc!r})") from None
    rule = stop_rule(args, meta["rule"])         # a flag out of range is the flag's error, not the checkpoint's
    xp = get_xp(options.device)
    adam.m = {k: to_device(v, xp) for k, v in adam.m.items()}
    adam.v = {k: to_device(v, xp) for k, v in adam.v.items()}
    print(f"resuming {folder} after epoch {progress.epoch} (best val ESR {progress.best_esr:.4g})")
    setup = Setup(options, model, train, rule, {k: to_device(v, xp) for k, v in params.items()}, adam, progress, rng,
                  {k: to_device(v, xp) for k, v in best.items()})
    return setup, xp


def train(folder: Path, setup: Setup, data: Data, xp) -> int:
    options, model, train_config, segment = setup.options, setup.model, setup.train, data.segment
    pair, x_val, y_val = data.pair, data.x_val, data.y_val
    windows = window_count(data.x_train.size, segment, train_config.warmup)
    print(f"pair: {pair.input.size / pair.rate:.1f} s at {pair.rate} Hz; training on "
          f"{data.x_train.size / pair.rate:.1f} s ({windows} windows of {train_config.warmup} + {segment} samples), "
          f"validating on {x_val.size / pair.rate:.1f} s")
    params_count = sum(int(np.prod(v.shape)) for v in setup.params.values())
    device = "GPU (CuPy)" if is_gpu(xp) else f"CPU, {options.processes} process(es)"
    print(f"model: LSTM H={model.hidden_size} x {model.num_layers} layer(s), skip {'on' if model.skip else 'off'}, "
          f"{params_count} parameters; training on {device}")

    best_params = setup.best_params or {k: v.copy() for k, v in setup.params.items()}
    facts = {"seconds": pair.input.size / pair.rate, "train_seconds": data.x_train.size / pair.rate,
             "val_seconds": x_val.size / pair.rate, "delay": int(pair.delay), "aligned": bool(pair.aligned),
             "notes": list(pair.notes)}
    extra_meta = {"options": asdict(options), "train": train_config.to_dict(), "segment_samples": segment,
                  "pair": facts, "device": device, "parameters": params_count}

    def validate(params):
        y = process_parallel(params, model, x_val, xp, parts=32, overlap=8192)
        return float(esr(y, y_val))

    def make_batches():
        return epoch_batches(data.x_train, data.y_train, segment, train_config.warmup, options.batch, setup.rng)

    bar = ProgressBar(windows * (train_config.warmup + segment))

    def save_best_model():
        """model.npz: best_params, with the best epoch's facts from setup.progress."""
        progress = setup.progress
        save_model(folder / "model.npz", best_params, model, pair.rate,
                   {**extra_meta, "val_esr": progress.best_esr, "epoch": progress.best_epoch,
                    "trained_seconds": progress.seconds, "date": datetime.now().isoformat(timespec="seconds")})

    def on_epoch(progress: Progress, improved: bool):
        bar.close()
        row = progress.history[-1]
        if improved:
            for name, value in setup.params.items():
                best_params[name] = value.copy()
            save_best_model()
        save_checkpoint(folder, setup, best_params, pair.rate, extra_meta)
        write_history(folder, progress.history)
        mark = " *" if improved else ""
        print(f"epoch {row['epoch']:4d}  loss {row['train_loss']:.4g}  val ESR {row['val_esr']:.4g} "
              f"({db(row['val_esr']):6.1f} dB){mark}  {row['samples_per_s'] / 1e3:7.0f}k samples/s  "
              f"{row['seconds']:6.1f} s", flush=True)

    already = setup.rule.reached(setup.progress)
    if already:
        print(f"this run has already stopped ({already}): raise --epochs, --budget or --patience to go on")
        return 0
    if options.init and setup.progress.epoch == 0:
        measure_starting_model(folder, setup, validate, save_best_model)
    trainer = None
    workspace = Workspace()
    step = lambda p, a, x, y, t: train_window(p, model, a, x, y, t, workspace)  # noqa: E731
    if not is_gpu(xp) and options.processes > 1:
        trainer = ParallelTrainer(model, options.processes, train_config.warmup + segment, options.batch)
        step = trainer.train_window
    try:
        reason = fit(setup.params, setup.adam, train_config, setup.progress, setup.rule, xp, make_batches, step,
                     validate, on_epoch=on_epoch, on_batch=bar.update)
    except KeyboardInterrupt as exc:
        bar.close()
        if setup.progress.epoch > 0:
            print(f"\ninterrupted: the last finished epoch is saved; continue with  python train.py --resume {folder}")
        else:
            print(f"\ninterrupted before the first epoch finished: there is nothing to resume; to start again in "
                  f"{folder}, run the same command with --force")
        return interrupted_code(exc)
    finally:
        if trainer is not None:
            trainer.close()
    y_best = process_parallel(best_params, model, x_val, xp, parts=32, overlap=8192)
    write_audio_atomic(folder / "val_prediction.wav", y_best, pair.rate, "FLOAT")
    write_run_report(folder)
    progress = setup.progress
    print(f"best val ESR {progress.best_esr:.4g} ({db(progress.best_esr):.1f} dB) at epoch {progress.best_epoch}; "
          f"{progress.epoch} epochs, {progress.seconds:.1f} s ({reason}); model: {folder / 'model.npz'}")
    return 0


def measure_starting_model(folder: Path, setup: Setup, validate, save: Callable[[], None]):
    """A fine-tune (--init) starts from a model that may already be good: its own val ESR
    is the best to beat, so that the run's model.npz is never worse than what it started
    from. Saved as epoch 0, it is the run's model until an epoch beats it."""
    start_esr = float(validate(setup.params))
    if not math.isfinite(start_esr):
        print("init: the starting model's val ESR is not a finite number; the first epoch will replace it")
        return
    setup.progress.best_esr, setup.progress.best_epoch = start_esr, 0
    save()
    print(f"init: the starting model's val ESR is {start_esr:.4g} ({db(start_esr):.1f} dB); {folder / 'model.npz'} "
          f"keeps it until an epoch does better")


def write_run_report(folder: Path):
    """report.html for the run; never fails the run: the model and checkpoint are already
    written, so a report that cannot be made costs one line."""
    try:
        from run_report import write_report

        print(f"report: {write_report(folder)}")
    except Exception as exc:                     # noqa: BLE001 - anything at all: the run has succeeded
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"report: not written ({reason}); try again with  python report.py {folder}")


def save_checkpoint(folder: Path, setup: Setup, best_params: dict, rate: int, extra_meta: dict):
    arrays = dict(setup.params)
    arrays.update({f"best.{k}": v for k, v in best_params.items()})
    arrays.update(setup.adam.to_arrays())
    meta = {"kind": "checkpoint", "version": __version__, "model": setup.model.to_dict(), "sample_rate": rate,
            "rng": setup.rng.bit_generator.state, "progress": setup.progress.to_dict(),
            "rule": asdict(setup.rule), **extra_meta}
    save_npz_atomic(folder / "checkpoint.npz", arrays, meta)


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
