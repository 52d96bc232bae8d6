"""Time to quality: the validation ESR reached against training wall time, on the CPU.

What a user waits for is not samples per second but a good model. This trains on
generated music-like material (audio_io.demo: plucked strings and chords with dynamics
and rests) through several effects and records, after every epoch, the val ESR of the
model so far against the training time spent (the clock stops while validating, for
every system alike). The table gives, at each budget, the best val ESR reached within
it: what early stopping would have kept.

    ours      lstm_core.race.train_to_end, what train.py runs, with train.py's CPU settings
              (lstm_core.devices: ParallelTrainer over every core) and its defaults: the
              start raced where the budget is long enough (since 2026-12-02: a run per
              budget, as the race's heats are a share of it, or 3 epochs if those come
              first; lstm_core/race.py), the
              input trained as if at 0 dBFS RMS (--input-level), or as it is for a pair a
              linear filter explains (since 2026-12-01 14:00 UTC: the low-pass), or as if at
              +6 dBFS RMS for a pair that no linear filter comes close to (a high-gain one,
              since 2026-12-01 16:30 UTC: the amp-like effect), and the model size train.py
              picks (since 2026-12-03: 40 units for a high-gain pair at a budget of 300 s or
              more, training.default_hidden_size, so a run per budget where the sizes
              differ); run_ours takes any DeviceSettings (cpu_vs_gpu.py runs it on the GPU
              too, unraced)
    unguarded the same without the batch guard (TrainConfig.guard_batches off: a batch
              whose loss jumps is kept), as the defaults were before it (2026-11-30)
    unaveraged the same without the running average of the parameters (TrainConfig.average
              0: the model kept is Adam's parameters as they are at the end of an epoch),
              as the defaults were before it (2026-11-30)
    norollback the same without rolling back an epoch whose val ESR spikes (TrainConfig.
              rollback_above 0), as the constant schedule's runs were before it (2026-11-30)
    probe     the same with the probe after each batch or few (TrainConfig.probe_batches on:
              lstm_core/probe.py); ours since 2026-12-03 17:00 UTC, before which it was off
    noprobe   the same without it (probe_batches off), as the defaults were until then
    nofloor   the same with no floor under the batch guard's cuts of the rate (TrainConfig.
              undo_floor 0: schedule.undo_cut), as the defaults were until 2026-12-04
    noprewarm the same with each window's warm-up started from zero (--prewarm 0), as
              until 2026-12-01 noon
    chrono    the same from the chrono initialisation over 1 to 50 samples (--chrono 50,
              training.ENVELOPE_CHRONO), unraced
    norace    the same from the forget-gate bias +1, unraced (--chrono 0): the defaults
              until 2026-12-02
    h32       the same with 32 units whatever the pair and the budget: the defaults until
              2026-12-03
    previous  train.py's defaults until 2026-12-01 09:30 UTC (32 units): pre-emphasis 0.95, a
              1000-sample warm-up from zero, the input as it is (--input-level off), no probe,
              no floor under the batch guard's cuts
    before    the same without any of the three (guard, average, roll-back): train.py's
              defaults when issue 15 was filed, as far as today's code has switches for them
              (the fixes since, such as the warmed-up validation, apply to every system)
    budget    the same with --schedule budget: the learning rate falls to 2 % as the
              budget runs out (lstm_core/schedule.py), a run per budget, as a user's
              --budget would set it
    recipe    the amp-modelling literature's recipe in PyTorch (when installed): nn.LSTM
              H=32 + Linear + skip, pre-emphasised ESR + DC loss, 0.5 s segments, a
              1000-sample warm-up, TBPTT 2048, Adam 5e-3, batch 40, all cores

All see the same data, the same validation audio (scored after a warm-up on the audio
before it, forward only, as train_run scores it), the same budgets, in the same run. The
recipe's clock stops while it validates; ours runs on train_run's clock, which counts
validation as train.py's --budget does (about a tenth of an epoch here): a handicap for ours.

    python benchmarks/time_to_quality.py                       # budgets 30 60 120 300 s, 5 effects
    python benchmarks/time_to_quality.py --budgets 10 20 --effects overdrive --systems ours
    python benchmarks/time_to_quality.py --budgets 30 60 120 --systems before previous ours
    python benchmarks/time_to_quality.py --write               # append to RESULTS.md, save a plot
    python benchmarks/time_to_quality.py --budgets 120 --effects amp --systems before ours --seeds 0 1 2 3 4

Single runs of the amp-like effect at 120 s differ by 1.1 to 1.6 times from one model
seed to another, and the same seed's by up to 1.18 times from one session to another
(RESULTS.md "The amp-like effect over five model seeds"), so one run a system says little
about effects smaller than that; --seeds repeats every system with each model seed (the
systems in turn) and gives the mean, the range and each seed's ratio.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

from audio_io import effects  # noqa: E402
from audio_io.amp import amp  # noqa: E402
from audio_io.dataset import Dataset, rms  # noqa: E402
from audio_io.demo import music_like  # noqa: E402
from audio_io.linearity import linear_fit_esr  # noqa: E402
from audio_io.pair import Pair  # noqa: E402
from audio_io.windows import epoch_batches, split_validation  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.common import CORES, RATE, RESULTS  # noqa: E402
from capture.config import read_input_level  # noqa: E402
from lstm_core.devices import CPU, DeviceSettings, device_settings  # noqa: E402
from lstm_core.files.history import write_history  # noqa: E402
from lstm_core.inference import join_chunks, split_into_chunks  # noqa: E402
from lstm_core.losses import esr  # noqa: E402
from lstm_core.model import ModelConfig  # noqa: E402
from lstm_core.race import HEAT_AUDIO, HEAT_EPOCHS, HEAT_SHARE, MIN_RACE_BUDGET, train_to_end  # noqa: E402
from lstm_core.run import StopRule, new_run  # noqa: E402
from lstm_core.training import (DEFAULT_INPUT_LEVEL, ENVELOPE_CHRONO, HIGH_GAIN_HIDDEN,  # noqa: E402
                                HIGH_GAIN_HIDDEN_BUDGET, HIGH_GAIN_INPUT_LEVEL, LINEAR_ESR, SATURATED_ESR, TrainConfig,
                                default_hidden_size, default_input_level, input_gain_for)

SECONDS = 60                   # of material: the last 20 % validates
PLOT = Path(__file__).with_name("time_to_quality.png")
SETTINGS = {"lr": float, "tbptt": int, "warmup": int, "batch": int, "segment": float, "hidden": int,  # --set
            "layers": int, "schedule": str, "average": float, "pre_emphasis": float, "prewarm": int,
            "chrono": float, "input_level": read_input_level}                  # dBFS RMS, or off
SYSTEMS = ("ours", "unaveraged", "unguarded", "norollback", "probe", "noprobe", "nofloor", "noprewarm", "chrono",
           "norace", "h32", "previous", "before", "budget", "recipe")
OURS = SYSTEMS[:-1]                                                     # lstm_core's runs; recipe is PyTorch
LINE_STYLES = {"ours": "-", "unaveraged": (0, (5, 1, 1, 1)), "unguarded": "-.", "norollback": (0, (3, 1)),
               "probe": (0, (3, 1, 1, 1, 1, 1, 1, 1)), "noprobe": (0, (3, 2, 1, 2)),
               "nofloor": (0, (1, 2, 4, 2)),
               "noprewarm": (0, (5, 2)), "chrono": (0, (2, 1, 2, 3)), "norace": (0, (4, 1, 1, 1, 1, 1)),
               "h32": (0, (6, 1, 2, 1)),
               "previous": (0, (8, 2, 1, 2)), "before": (0, (1, 1)), "budget": ":",
               "recipe": "--"}                                          # the plot's, one for every system
assert set(LINE_STYLES) == set(SYSTEMS)

EFFECTS = {      # name: (what it is, dry -> wet)
    "lowpass": ("one-pole low-pass at 800 Hz", lambda x: effects.one_pole_lowpass(x, 800.0, RATE)),
    "overdrive": ("the demo pedal: tanh overdrive (gain 4) into a 4 kHz one-pole low-pass",
                  lambda x: effects.demo_effect(x, RATE)),
    "resonant": ("resonant low-pass biquad, 1 kHz, Q 4, tanh drive 2 before it",
                 lambda x: effects.resonant_lowpass(x, 1000.0, 4.0, RATE, drive=2.0)),
    "compressor": ("compressor, -24 dB threshold, 6:1, 5 ms attack, 60 ms release, +6 dB make-up",
                   lambda x: effects.compressor(x, RATE, threshold_db=-24.0, ratio=6.0, attack_ms=5.0,
                                                release_ms=60.0, makeup_db=6.0)),
    "amp": ("amp-like (audio_io.amp): two triode stages with level-dependent bias, the Bassman tone stack, a "
            "sagging power stage, a 4x12-like cabinet; high gain", lambda x: amp(x, RATE)),
}


def material(effect: str, seed: int = 1, seconds: float = SECONDS):
    """(x_train, y_train, x_val, y_val): ``seconds`` of generated music through the effect,
    the last 20 % held out."""
    dry = music_like(seconds, RATE, seed)
    wet = EFFECTS[effect][1](dry).astype(np.float32)
    return split_validation(dry, wet, 0.2)


def train_for(budget: float, epoch, train_batch, validate, y_val) -> list:
    """[(training seconds, val ESR)] after each epoch: train_batch(x, y) for each batch of
    epoch() (a fresh epoch each call) until the training clock reaches ``budget`` (checked
    after every batch), then validate() -> the prediction for y_val, off the clock."""
    seconds, points = 0.0, []
    while seconds < budget:
        started = time.perf_counter()
        for x, y in epoch():
            train_batch(x, y)
            if seconds + time.perf_counter() - started >= budget:
                break
        seconds += time.perf_counter() - started
        points.append((seconds, float(esr(validate(), y_val))))
    return points


def run_ours(x_train, y_train, x_val, y_val, budget: float, device: DeviceSettings, train: TrainConfig,
             hidden: int = 32, layers: int = 1, input_level: float | None = None, seed: int = 0,
             race: bool = False, history: Path | None = None) -> list:
    """[(seconds, val ESR)] after each epoch of lstm_core.race.train_to_end (what train.py
    runs: the race, the schedule, the roll-backs, the validation) on ``device``, with ``budget`` as its
    time budget, in a temporary run folder. Seconds are train_run's: validation included.
    The input gain is set from ``input_level`` (dBFS RMS; -inf: off; None: as train.py
    picks it for the pair, training.default_input_level) as train.py sets it. ``seed``
    draws the model's start and the windows (train.py's --seed). ``race``: the start is
    raced first (lstm_core/race.py, train.py's default); the points are then the winner's,
    at the run's wall time (the losing heat's seconds counted). ``history``: where to write
    the run's history.csv (the winner's epochs; train.py's columns and events)."""
    if input_level is None:
        input_level = default_input_level(linear_fit_esr(x_train, y_train))
    train = replace(train, input_gain=input_gain_for(rms(x_train), input_level))
    data = Dataset(x_train, y_train, x_val, y_val, Pair(np.concatenate([x_train, x_val]),
                                                         np.concatenate([y_train, y_val]), RATE))
    state = new_run(ModelConfig(hidden_size=hidden, num_layers=layers), train,
                    StopRule(epochs=1_000_000, budget=budget, patience=None), {}, seed=seed)

    with tempfile.TemporaryDirectory() as folder:
        state, _ = train_to_end(state, seed, data, device, folder, {}, race=race)
    if history is not None:
        write_history(history, state.progress.history)
    return [(row["seconds"], row["val_esr"]) for row in state.progress.history]


def run_recipe(torch, x_train, y_train, x_val, y_val, budget: float, seed: int = 0) -> list:
    """[(training seconds, val ESR)] after each epoch, for the literature's recipe in PyTorch."""
    torch.manual_seed(seed)
    torch.set_num_threads(CORES)
    H, batch, segment, warmup, tbptt = 32, 40, RATE // 2, 1000, 2048
    lstm, linear = torch.nn.LSTM(1, H), torch.nn.Linear(H, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *linear.parameters()], lr=5e-3)
    rng = np.random.default_rng(seed)

    def forward(x, state):                          # x (T, B, 1) -> y (T, B)
        h, state = lstm(x, state)
        return linear(h)[..., 0] + x[..., 0], state

    def train_batch(xw, yw):
        x = torch.from_numpy(np.ascontiguousarray(xw.transpose(0, 2, 1)))   # (T, B, 1)
        y = torch.from_numpy(yw)
        with torch.no_grad():
            _, state = forward(x[:warmup], None)
        for start in range(warmup, x.shape[0], tbptt):
            state = tuple(s.detach() for s in state)
            prediction, state = forward(x[start : start + tbptt], state)
            optimizer.zero_grad(set_to_none=True)
            common.torch_esr_loss(torch, prediction, y[start : start + tbptt]).backward()
            optimizer.step()

    def validate() -> np.ndarray:                   # in the same parallel chunks as ours, warmed up alike
        window, plan = split_into_chunks(x_val, CPU.validation_parts, CPU.validation_warmup, x_train)   # (steps, P)
        with torch.no_grad():
            y_window = forward(torch.from_numpy(window[:, :, None]), None)[0].numpy()
        return join_chunks(y_window, plan)

    return train_for(budget, lambda: epoch_batches(x_train, y_train, segment, warmup, batch, rng), train_batch,
                     validate, y_val)


def best_within(points: list, budget: float) -> float:
    """The best val ESR of the epochs that ended within the budget; a diverged epoch's NaN
    is no one's best (nan: no finite epoch within it)."""
    values = [value for seconds, value in points if seconds <= budget + 1e-9 and math.isfinite(value)]
    return min(values) if values else math.nan


def worst_spike(points: list) -> float:
    """The largest val ESR after the third epoch over the best before it (1: no epoch worse
    than the best so far); the issue's limit for a spike is 10. A diverged epoch (a val ESR
    that is not finite, rolled back by the run) after the third counts as inf, even in a run
    with no finite epoch before it; a finite epoch with no finite best before it is not judged."""
    values = [value for _, value in points]
    best = np.fmin.accumulate(values)                  # fmin: a NaN is never the best so far
    ratios = [math.inf if not math.isfinite(value) else value / best[i - 1]
              for i, value in enumerate(values) if i >= 3 and (math.isfinite(best[i - 1]) or not math.isfinite(value))]
    return max(ratios, default=1.0)


def spike_lines(results: dict, seeds: list) -> str:
    """One line per effect and system: the worst spike of each of its runs.
    results[(effect, system)]: {budget: [points of each seed's run]}, the runs that serve
    several budgets listed once."""
    def label(b, i):
        return f"{b:g} s run" + (f" (seed {seeds[i]})" if len(seeds) > 1 else "")
    return "\n".join(f"- {effect}, {system}: " + ", ".join(f"{label(b, i)} {worst_spike(points):.3g}"
                                                          for b, runs_of_seeds in runs.items()
                                                          for i, points in enumerate(runs_of_seeds))
                     for (effect, system), runs in results.items())


def seed_bests(results: dict, key, budget: float) -> list:
    """The best val ESR within ``budget`` of each seed's run."""
    return [best_within(points, budget) for points in results[key][budget]]


def cell(values: list) -> str:
    """One seed's value; several seeds' mean, with their range."""
    if len(values) == 1 or not all(math.isfinite(v) for v in values):   # a seed with no epoch within it: nan
        return f"{np.mean(values):.3g}"
    return f"{np.mean(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def table(results: dict, budgets: list) -> str:
    """results[(effect, system)][budget]: the points of each seed's run that had that
    budget; a cell is the mean of the seeds' best val ESRs (and their range)."""
    systems = sorted({system for (_, system) in results}, key=SYSTEMS.index)
    header = ["effect"] + [f"{s} {b:g} s" for b in budgets for s in systems]
    rows = [[effect] + [cell(seed_bests(results, (effect, s), b)) for b in budgets for s in systems]
            for effect in dict.fromkeys(e for (e, _) in results)]
    return common.markdown_table(header, rows, text_columns=1)


def ratio_lines(results: dict, budgets: list, seeds: list) -> str:
    """How many times better ours is than each other system, per effect and budget: the
    ratio of the mean best val ESRs over the seeds, and each seed's own ratio (single runs
    differ by up to 1.6 times: the module's docstring)."""
    lines = []
    for (effect, system) in results:
        if system == "ours" or (effect, "ours") not in results:
            continue
        parts = []
        for b in budgets:
            theirs, ours = seed_bests(results, (effect, system), b), seed_bests(results, (effect, "ours"), b)
            each = ", ".join(f"{t / o:.2f}" for t, o in zip(theirs, ours))
            parts.append(f"{b:g} s {np.mean(theirs) / np.mean(ours):.2f}" + (f" (seeds: {each})" if len(seeds) > 1
                                                                            else ""))
        lines.append(f"- {effect}, {system} over ours: " + "; ".join(parts))
    return "\n".join(lines)


def budget_aware(system: str, train: TrainConfig, raced: bool = False) -> bool:
    """Whether a run depends on its budget (the budget schedule's rate, a race's heats and
    whether there is one): then each budget gets its own run, as a user's --budget would;
    otherwise one run serves them all."""
    return system in OURS and (train.schedule == "budget" or raced)


def plot(results: dict, path: Path) -> bool:
    plt = common.pyplot()
    if plt is None:
        return False
    effects_run = list(dict.fromkeys(e for (e, _) in results))
    figure, axes = plt.subplots(1, len(effects_run), figsize=(4.2 * len(effects_run), 3.6), squeeze=False)
    for axis, effect in zip(axes[0], effects_run):
        for system, style in LINE_STYLES.items():
            if (effect, system) in results:
                for i, points in enumerate(results[(effect, system)][max(results[(effect, system)])]):
                    best = np.fmin.accumulate([v for _, v in points])   # a diverged epoch's NaN: no best
                    axis.plot([s for s, _ in points], best, linestyle=style, color=f"C{SYSTEMS.index(system)}",
                              label=None if i else system)
        axis.set_yscale("log")
        axis.set_title(effect)
        axis.set_xlabel("training time (s)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("best val ESR so far")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Val ESR against training wall time, ours and the PyTorch recipe.")
    p.add_argument("--budgets", type=float, nargs="+", default=[30, 60, 120, 300])
    p.add_argument("--effects", nargs="+", choices=list(EFFECTS), default=list(EFFECTS))
    p.add_argument("--systems", nargs="+", choices=SYSTEMS,
                   default=[system for system in SYSTEMS if system != "probe"])   # probe: ours since 2026-12-03
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="model seeds (train.py's --seed): each system runs once per seed, the systems in turn; "
                        "tables give the mean and range (default 0)")
    p.add_argument("--music", type=int, default=1, help="seed of the generated music (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help=f"override one of our settings ({', '.join(SETTINGS)}) for a sweep")
    p.add_argument("--write", action="store_true", help=f"append to {RESULTS.name} and save {PLOT.name}")
    p.add_argument("--histories", type=Path, metavar="FOLDER",
                   help="keep the history.csv of each of our runs (every epoch: val ESR, rate, roll-backs) in "
                        "FOLDER as EFFECT-SYSTEM-seedN-Bs.csv, to trace a spike the table shows")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.histories:
        args.histories.mkdir(parents=True, exist_ok=True)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in SETTINGS:
            sys.exit(f"--set {item}: unknown setting {name!r}")
        try:
            overrides[name] = SETTINGS[name](value)
        except ValueError:
            sys.exit(f"--set {item}: not a valid {name}")
    try:
        train = TrainConfig(**{name: overrides[name] for name in ("lr", "tbptt", "warmup", "schedule", "average",
                                                                  "pre_emphasis", "prewarm", "chrono")
                               if name in overrides})
    except ValueError as error:
        sys.exit(f"--set: {error}")
    device = device_settings("cpu", batch=overrides.get("batch"), segment=overrides.get("segment"))
    torch = None
    if "recipe" in args.systems:
        torch = common.import_torch()
        if torch is None:
            print("PyTorch is not installed: the recipe is skipped")
            args.systems = [s for s in args.systems if s != "recipe"]
    level = overrides.get("input_level")                # None: train.py's choice for each effect's pair
    # the defaults until 2026-12-01: pre-emphasis 0.95, warm-up 1000, no prewarm and the forget bias +1 where --set
    # leaves them, the level off, no probe, no floor under the batch guard's cuts
    old = replace(train, **{name: value for name, value in (("pre_emphasis", 0.95), ("warmup", 1000), ("prewarm", 0),
                                                            ("chrono", 0.0), ("probe_batches", False),
                                                            ("undo_floor", 0.0))
                            if name not in overrides})
    race = "chrono" not in overrides                    # train.py races the start unless --chrono is given
    # the model size: --set's, else train.py's for the pair and the budget (training.default_hidden_size; a stack
    # of --set layers keeps 32, as train.py's --layers does), else the one given here
    chosen = overrides.get("hidden", 32 if "layers" in overrides else None)
    fixed = overrides.get("hidden", 32)                 # the systems of 32 units whatever the pair
    systems = {"ours": (train, level, race, chosen), "unaveraged": (replace(train, average=0.0), level, race, chosen),
               "unguarded": (replace(train, guard_batches=False), level, race, chosen),
               "norollback": (replace(train, rollback_above=0.0), level, race, chosen),
               "probe": (replace(train, probe_batches=True), level, race, chosen),
               "noprobe": (replace(train, probe_batches=False), level, race, chosen),
               "nofloor": (replace(train, undo_floor=0.0), level, race, chosen),
               "noprewarm": (replace(train, prewarm=0), level, race, chosen),
               "chrono": (replace(train, chrono=ENVELOPE_CHRONO), level, False, chosen),
               "norace": (train, level, False, chosen),
               "h32": (train, level, race, fixed),
               "previous": (old, -math.inf, False, fixed),
               "before": (replace(old, guard_batches=False, average=0.0, rollback_above=0.0), -math.inf, False, fixed),
               "budget": (replace(train, schedule="budget"), level, race, chosen)}
    # (TrainConfig, input level, race, hidden size or None: train.py's) each
    level_text = (f"{DEFAULT_INPUT_LEVEL:g} dBFS RMS, or as it is where a linear filter explains the pair to an "
                  f"ESR below {LINEAR_ESR:g}, or {HIGH_GAIN_INPUT_LEVEL:+g} dBFS RMS where it leaves at least "
                  f"{SATURATED_ESR:g}, as train.py picks it")
    race_text = (f", the start raced where the budget is {MIN_RACE_BUDGET:g} s or more (the forget-gate bias +1 "
                 f"against chrono {ENVELOPE_CHRONO:g}, {HEAT_EPOCHS} epochs of at most {HEAT_AUDIO:g} s each, "
                 f"or {HEAT_SHARE * 100:g} % of the budget if that comes first; a run per budget)") if race else ""
    size_text = (f"H={chosen}" if chosen else f"H=32, or {HIGH_GAIN_HIDDEN} for a high-gain pair (a linear fit "
                 f"leaving {SATURATED_ESR:g} or more) at a budget of {HIGH_GAIN_HIDDEN_BUDGET:g} s or more, as train.py picks it")
    ours_text = (f"train.py's defaults ({size_text}; TrainConfig {TrainConfig().to_dict()}, batch {CPU.batch}, "
                 f"segment {CPU.segment} s, the input trained as if at "
                 f"{level_text if level is None else format(level, 'g') + ' dBFS RMS'}{race_text})"
                 f"{', overrides ' + str(overrides) if overrides else ''}, {CORES} processes")
    print(f"{SECONDS} s of generated music (seed {args.music}) at {RATE} Hz (48 s train, 12 s validation); "
          f"budgets {args.budgets}; model seeds {args.seeds}")
    print(f"ours: {ours_text}", flush=True)
    horizon = max(args.budgets)
    runs_made = {}                         # {(effect, system): {budget run: [points of each seed]}}
    for effect in args.effects:
        x_train, y_train, x_val, y_val = material(effect, seed=args.music)
        linear = linear_fit_esr(x_train, y_train)
        picked = default_input_level(linear)                                # train.py's level for this pair
        for seed in args.seeds:            # the systems in turn within a seed: the machine's drift hits all alike
            for system in args.systems:
                started = time.perf_counter()
                if system in OURS:
                    settings, input_level, raced, size = systems[system]
                    input_level = picked if input_level is None else input_level
                    sizes = {b: size or default_hidden_size(b, linear) for b in args.budgets}
                    budgets = (args.budgets if budget_aware(system, settings, raced) or len(set(sizes.values())) > 1
                               else [horizon])
                    kept = ({b: {"history": args.histories / f"{effect}-{system}-seed{seed}-{b:g}s.csv"}
                             for b in budgets} if args.histories else {})   # history= only when asked for
                    runs = {b: run_ours(x_train, y_train, x_val, y_val, b, device, settings, sizes[b],
                                        overrides.get("layers", 1), input_level, seed, raced, **kept.get(b, {}))
                            for b in budgets}
                else:
                    runs = {horizon: run_recipe(torch, x_train, y_train, x_val, y_val, horizon, seed)}
                for b, points in runs.items():
                    runs_made.setdefault((effect, system), {}).setdefault(b, []).append(points)
                summary = "  ".join(f"{b:g}s {best_within(runs.get(b, runs[horizon]), b):.3g}" for b in args.budgets)
                print(f"{effect:10s} {system:11s} seed {seed}  {summary}   ({sum(len(p) for p in runs.values())} "
                      f"epochs in {len(runs)} run(s), {time.perf_counter() - started:.0f} s)", flush=True)
    # every budget's runs: its own where the system ran one per budget, else the longest run's
    results = {key: {b: made.get(b, made[horizon]) for b in args.budgets} for key, made in runs_made.items()}
    text = table(results, args.budgets)
    ratios = ratio_lines(results, args.budgets, args.seeds)
    if ratios:
        text += f"\n\nOurs against the others (their mean best val ESR over ours):\n\n{ratios}"
    spikes = spike_lines(runs_made, args.seeds)
    text += ("\n\nThe worst spike of each run: its largest val ESR after epoch 3 over the best before it "
             f"(10 or more counts as a spike):\n\n{spikes}")
    print("\nbest val ESR within each training-time budget\n")
    print(text)
    if args.write:
        plotted = plot(results, PLOT)
        effects_text = "\n".join(f"- {e}: {EFFECTS[e][0]}" for e in args.effects)
        common.append_section(
            RESULTS, f"Time to quality: {common.cpu_model()}, {os.cpu_count()} cores, {common.utc_now()}",
            common.command_line("time_to_quality.py", argv),
            f"{SECONDS} s of generated music-like audio at {RATE} Hz (seed {args.music}), the last 20 % held out; "
            f"model seeds {', '.join(map(str, args.seeds))}"
            f"{' (a cell: the mean over the seeds, and their range)' if len(args.seeds) > 1 else ''}. "
            f"Best val ESR within each training-time budget (validation scored after a warm-up on the audio "
            f"before it; counted in ours' time, not in the recipe's). ours: {ours_text}; unaveraged: the same without "
            f"the running average of the parameters (average 0); unguarded: the same without "
            f"the batch guard (guard_batches off); norollback: the same without rolling back spiked or climbing "
            f"epochs; probe: the same with the probe after each batch or few (probe_batches on); noprobe: the same "
            f"without it (probe_batches off); nofloor: the same with no floor under the batch guard's cuts of "
            f"the rate (undo_floor 0); "
            f"noprewarm: the same with the warm-up from zero (prewarm 0); "
            f"chrono: the same from the chrono initialisation over 1 to {ENVELOPE_CHRONO:g} samples (--chrono "
            f"{ENVELOPE_CHRONO:g}); "
            f"norace: the same from the forget-gate bias +1, no race (the defaults until 2026-12-02); "
            f"h32: the same with 32 units whatever the pair and budget (the size until 2026-12-03); "
            f"previous: the defaults until 2026-12-01 (pre-emphasis 0.95, warm-up 1000 from zero, the input as it "
            f"is, no probe, no floor under the batch guard's cuts); "
            f"before: previous without any of the three; "
            f"budget: the same with --schedule budget, a run per budget, as "
            f"--budget would be given. "
            f"recipe: PyTorch {torch.__version__ if torch else '-'}, "
            f"nn.LSTM H=32 + Linear + skip, pre-emphasised ESR + DC, 0.5 s segments, warm-up 1000, "
            f"TBPTT 2048, Adam 5e-3, batch 40. Plot: `{PLOT.name}`.\n\n{effects_text}\n\n{text}")
        print(f"\nappended to {RESULTS}" + (f"; plot in {PLOT}" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
