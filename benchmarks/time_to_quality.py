"""Time to quality: the validation ESR reached against training wall time, on the CPU.

What a user waits for is not samples per second but a good model. This trains on
generated music-like material (audio_io.demo: plucked strings and chords with dynamics
and rests) through several effects and records, after every epoch, the val ESR of the
model so far against the training time spent (the clock stops while validating, for
every system alike). The table gives, at each budget, the best val ESR reached within
it: what early stopping would have kept.

    ours      lstm_core with train.py's defaults (ParallelTrainer over every core)
    recipe    the amp-modelling literature's recipe in PyTorch (when installed): nn.LSTM
              H=32 + Linear + skip, pre-emphasised ESR + DC loss, 0.5 s segments, a
              1000-sample warm-up, TBPTT 2048, Adam 5e-3, batch 40, all cores

Both see the same data, the same validation audio, the same budgets, in the same run.

    python benchmarks/time_to_quality.py                       # budgets 30 60 120 300 s, 4 effects
    python benchmarks/time_to_quality.py --budgets 10 20 --effects overdrive --systems ours
    python benchmarks/time_to_quality.py --write               # append to RESULTS.md, save a plot
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

from audio_io import effects  # noqa: E402
from audio_io.demo import music_like  # noqa: E402
from audio_io.windows import epoch_batches, split_validation  # noqa: E402
from lstm_core.adam import AdamState  # noqa: E402
from lstm_core.backend import is_gpu, to_device  # noqa: E402
from lstm_core.inference import join_chunks, process_parallel, split_into_chunks  # noqa: E402
from lstm_core.losses import esr  # noqa: E402
from lstm_core.model import ModelConfig, init_params  # noqa: E402
from lstm_core.parallel import ParallelTrainer, available_cores  # noqa: E402
from lstm_core.training import (DEFAULT_BATCH, DEFAULT_SEGMENT_SECONDS, TrainConfig, segment_samples,  # noqa: E402
                                 train_window)
from lstm_core.workspace import Workspace  # noqa: E402

RATE = 44100
SECONDS = 60                   # of material: the last 20 % validates
RESULTS = Path(__file__).with_name("RESULTS.md")
PLOT = Path(__file__).with_name("time_to_quality.png")

EFFECTS = {
    "lowpass": lambda x: effects.one_pole_lowpass(x, 800.0, RATE),
    "overdrive": lambda x: effects.demo_effect(x, RATE),
    "resonant": lambda x: effects.resonant_lowpass(x, 1000.0, 4.0, RATE, drive=2.0),
    "compressor": lambda x: effects.compressor(x, RATE, threshold_db=-24.0, ratio=6.0, attack_ms=5.0,
                                               release_ms=60.0, makeup_db=6.0),
}
EFFECT_TEXT = {
    "lowpass": "one-pole low-pass at 800 Hz",
    "overdrive": "the demo pedal: tanh overdrive (gain 4) into a 4 kHz one-pole low-pass",
    "resonant": "resonant low-pass biquad, 1 kHz, Q 4, tanh drive 2 before it",
    "compressor": "compressor, -24 dB threshold, 6:1, 5 ms attack, 60 ms release, +6 dB make-up",
}


def material(effect: str, seed: int = 1, seconds: float = SECONDS):
    """(x_train, y_train, x_val, y_val): ``seconds`` of generated music through the effect,
    the last 20 % held out."""
    dry = music_like(seconds, RATE, seed)
    wet = EFFECTS[effect](dry).astype(np.float32)
    return split_validation(dry, wet, 0.2)


class Clock:
    """Training wall time: runs only between start() and stop()."""

    def __init__(self):
        self.seconds, self._started = 0.0, None

    def start(self):
        self._started = time.perf_counter()

    def stop(self):
        self.seconds += time.perf_counter() - self._started


def run_ours(x_train, y_train, x_val, y_val, budget: float, overrides: dict, xp=np, processes: int | None = None,
             validation_parts: int = 32) -> list:
    """[(training seconds, val ESR)] after each epoch, with train.py's defaults.

    On the CPU (xp numpy) the batch is shared by ``processes`` processes (default: every
    core) through ParallelTrainer, as train.py does; with processes=1, or on the GPU (xp
    cupy), train_window runs in this process with one Workspace, as train.py does there.
    The clock waits for the GPU after every batch, and stops while validating."""
    train = TrainConfig(**{k: v for k, v in overrides.items() if k in TrainConfig.__dataclass_fields__})
    batch = overrides.get("batch", DEFAULT_BATCH)
    segment = segment_samples(overrides.get("segment", DEFAULT_SEGMENT_SECONDS), RATE, train.tbptt)
    config = ModelConfig(hidden_size=overrides.get("hidden", 32))
    rng = np.random.default_rng(0)
    params = {name: to_device(value, xp) for name, value in init_params(config, rng).items()}
    adam, clock, points = AdamState(), Clock(), []
    processes = 1 if is_gpu(xp) else (processes or available_cores())
    synchronize = xp.cuda.Device().synchronize if is_gpu(xp) else (lambda: None)
    with contextlib.ExitStack() as stack:
        if processes > 1:
            trainer = stack.enter_context(ParallelTrainer(config, processes, train.warmup + segment, batch))
            step = trainer.train_window
        else:
            workspace = Workspace()
            step = lambda p, a, x, y, t: train_window(p, config, a, x, y, t, workspace)  # noqa: E731
        while clock.seconds < budget:
            clock.start()
            for x, y in epoch_batches(x_train, y_train, segment, train.warmup, batch, rng):
                step(params, adam, to_device(x, xp), to_device(y, xp), train)
                synchronize()
                if clock.seconds + time.perf_counter() - clock._started >= budget:
                    break
            clock.stop()
            prediction = process_parallel(params, config, x_val, xp, parts=validation_parts, overlap=8192)
            points.append((clock.seconds, float(esr(prediction, y_val))))
    return points


def run_recipe(torch, x_train, y_train, x_val, y_val, budget: float) -> list:
    """[(training seconds, val ESR)] after each epoch, for the literature's recipe in PyTorch."""
    from bench_step import torch_esr_loss

    torch.manual_seed(0)
    torch.set_num_threads(available_cores())
    H, batch, segment, warmup, tbptt = 32, 40, RATE // 2, 1000, 2048
    lstm, linear = torch.nn.LSTM(1, H), torch.nn.Linear(H, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *linear.parameters()], lr=5e-3)
    rng = np.random.default_rng(0)
    clock, points = Clock(), []

    def forward(x, state):                          # x (T, B, 1) -> y (T, B)
        h, state = lstm(x, state)
        return linear(h)[..., 0] + x[..., 0], state

    while clock.seconds < budget:
        clock.start()
        for xw, yw in epoch_batches(x_train, y_train, segment, warmup, batch, rng):
            x = torch.from_numpy(np.ascontiguousarray(xw.transpose(0, 2, 1)))   # (T, B, 1)
            y = torch.from_numpy(yw)
            with torch.no_grad():
                _, state = forward(x[:warmup], None)
            for start in range(warmup, x.shape[0], tbptt):
                state = tuple(s.detach() for s in state)
                prediction, state = forward(x[start : start + tbptt], state)
                optimizer.zero_grad(set_to_none=True)
                torch_esr_loss(torch, prediction, y[start : start + tbptt]).backward()
                optimizer.step()
            if clock.seconds + time.perf_counter() - clock._started >= budget:
                break
        clock.stop()
        with torch.no_grad():
            prediction = recipe_validate(torch, forward, x_val)
        points.append((clock.seconds, float(esr(prediction, y_val))))
    return points


def recipe_validate(torch, forward, x_val, parts: int = 32, overlap: int = 8192) -> np.ndarray:
    """The recipe model over the validation audio in the same parallel chunks as ours."""
    window, plan = split_into_chunks(x_val, parts, overlap)                 # (steps, P)
    y_window = forward(torch.from_numpy(window[:, :, None]), None)[0].numpy()
    return join_chunks(y_window, plan)


def best_within(points: list, budget: float) -> float:
    values = [value for seconds, value in points if seconds <= budget + 1e-9]
    return min(values) if values else math.nan


def table(results: dict, budgets: list) -> str:
    systems = sorted({system for (_, system) in results}, key=["ours", "recipe"].index)
    header = ["effect"] + [f"{s} {b:g} s" for b in budgets for s in systems]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for effect in dict.fromkeys(e for (e, _) in results):
        row = [effect]
        for b in budgets:
            for s in systems:
                row.append(f"{best_within(results[(effect, s)], b):.3g}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    effects_run = list(dict.fromkeys(e for (e, _) in results))
    figure, axes = plt.subplots(1, len(effects_run), figsize=(4.2 * len(effects_run), 3.6), squeeze=False)
    for axis, effect in zip(axes[0], effects_run):
        for system, style in (("ours", "-"), ("recipe", "--")):
            if (effect, system) in results:
                points = results[(effect, system)]
                best = np.minimum.accumulate([v for _, v in points])
                axis.plot([s for s, _ in points], best, style, label=system)
        axis.set_yscale("log")
        axis.set_title(effect)
        axis.set_xlabel("training time (s)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("best val ESR so far")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Val ESR against training wall time, ours and the PyTorch recipe.")
    p.add_argument("--budgets", type=float, nargs="+", default=[30, 60, 120, 300])
    p.add_argument("--effects", nargs="+", choices=list(EFFECTS), default=list(EFFECTS))
    p.add_argument("--systems", nargs="+", choices=["ours", "recipe"], default=["ours", "recipe"])
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override one of our settings (lr, tbptt, warmup, batch, segment, hidden) for a sweep")
    p.add_argument("--write", action="store_true", help=f"append to {RESULTS.name} and save {PLOT.name}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in ("lr", "tbptt", "warmup", "batch", "segment", "hidden"):
            sys.exit(f"--set {item}: unknown setting {name!r}")
        overrides[name] = int(value) if name in ("tbptt", "warmup", "batch", "hidden") else float(value)
    torch = None
    if "recipe" in args.systems:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: the recipe is skipped")
            args.systems = [s for s in args.systems if s != "recipe"]
    ours_text = (f"train.py's defaults (TrainConfig {TrainConfig().to_dict()}, batch {DEFAULT_BATCH}, "
                 f"segment {DEFAULT_SEGMENT_SECONDS} s){', overrides ' + str(overrides) if overrides else ''}, "
                 f"{available_cores()} processes")
    print(f"{SECONDS} s of generated music at {RATE} Hz (48 s train, 12 s validation); budgets {args.budgets}")
    print(f"ours: {ours_text}", flush=True)
    horizon = max(args.budgets)
    results = {}
    for effect in args.effects:
        x_train, y_train, x_val, y_val = material(effect)
        for system in args.systems:
            started = time.perf_counter()
            if system == "ours":
                points = run_ours(x_train, y_train, x_val, y_val, horizon, overrides)
            else:
                points = run_recipe(torch, x_train, y_train, x_val, y_val, horizon)
            results[(effect, system)] = points
            summary = "  ".join(f"{b:g}s {best_within(points, b):.3g}" for b in args.budgets)
            print(f"{effect:10s} {system:6s} {summary}   ({len(points)} epochs, "
                  f"{time.perf_counter() - started:.0f} s with validation)", flush=True)
    text = table(results, args.budgets)
    print("\nbest val ESR within each training-time budget\n")
    print(text)
    if args.write:
        plot(results, PLOT)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "CPU")
        effects_text = "\n".join(f"- {e}: {EFFECT_TEXT[e]}" for e in args.effects)
        with RESULTS.open("a") as stream:
            stream.write(f"\n## Time to quality: {cpu}, {os.cpu_count()} cores, {stamp}\n\n"
                         f"`{shlex.join(['python', *sys.argv])}`\n\n"
                         f"{SECONDS} s of generated music-like audio at {RATE} Hz (seed 1), the last 20 % held out. "
                         f"Best val ESR within each training-time budget (validation not counted). "
                         f"ours: {ours_text}. recipe: PyTorch {torch.__version__ if torch else '-'}, "
                         f"nn.LSTM H=32 + Linear + skip, pre-emphasised ESR + DC, 0.5 s segments, warm-up 1000, "
                         f"TBPTT 2048, Adam 5e-3, batch 40. Plot: `{PLOT.name}`.\n\n{effects_text}\n\n{text}\n")
        print(f"\nappended to {RESULTS}; plot in {PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
