"""Many captures: one sweep on Ray against the same captures trained one after another.

Eight captures (generated music-like audio, a different take for each, through eight
effects: filters, drives, a compressor, the amp-like effect), SECONDS s each at 44.1 kHz.
Each gets the same training budget two ways, on this machine:

    sweep       python sweep.py PLAN --budget B           Ray Tune, one core per trial, as many
                                                          trials at a time as there are cores
    one by one  python train.py IN TARGET --budget B      each in turn, every core (train.py's default)

Reported: the wall time of each (whole commands: Ray's start included), each capture's best
val ESR both ways, Ray's overhead per trial, and capacity on paper. The overhead is read
from the trials' own clocks (trial.json: when run_capture began and ended): per trial, the
time its slot stood idle before it began (after the previous trial's end, or after the
sweep started), Ray's start-up counted apart.

    python benchmarks/many_captures.py                   # 8 captures x 30 s
    python benchmarks/many_captures.py --budget 30 --write
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

from audio_io import effects  # noqa: E402
from audio_io.amp import amp  # noqa: E402
from audio_io.demo import music_like  # noqa: E402
from audio_io.files import write_audio_atomic  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.common import RATE, RESULTS  # noqa: E402
from lstm_core.files.history import read_history  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 20
EFFECTS = {
    "lowpass": lambda x: effects.one_pole_lowpass(x, 800.0, RATE),
    "overdrive": lambda x: effects.demo_effect(x, RATE),
    "resonant": lambda x: effects.resonant_lowpass(x, 1000.0, 4.0, RATE, drive=2.0),
    "compressor": lambda x: effects.compressor(x, RATE, threshold_db=-24.0, ratio=6.0, attack_ms=5.0,
                                               release_ms=60.0, makeup_db=6.0),
    "amp": lambda x: amp(x, RATE),
    "crunch": lambda x: effects.knob_pedal(x, RATE, 5.0, 5.0),
    "fuzz": lambda x: effects.knob_pedal(x, RATE, 10.0, 8.0),
    "clean": lambda x: effects.knob_pedal(x, RATE, 0.0, 3.0),
}


def write_plan(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for seed, (name, effect) in enumerate(EFFECTS.items(), start=1):
        dry = music_like(SECONDS, RATE, seed)
        write_audio_atomic(folder / f"{name}_input.wav", dry, RATE, "FLOAT")
        write_audio_atomic(folder / f"{name}_target.wav", effect(dry), RATE, "FLOAT")
    return folder


def timed(command: list) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def best_esr(folder: Path) -> float:
    return min(row["val_esr"] for row in read_history(folder / "history.csv"))


def idle_gaps(trials: list, start: float, slots: int) -> tuple[float, list]:
    """(when the first trial began, after ``start``; each later trial's wait after a slot freed)."""
    spans = sorted((t["started"], t["ended"]) for t in trials)
    free = [start] * slots                      # when each slot last became free
    gaps = []
    for began, ended in spans:
        slot = min(range(slots), key=lambda s: free[s])
        gaps.append(began - free[slot])
        free[slot] = ended
    return gaps[0], gaps[slots:]                # the first trials of every slot waited for Ray's start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="A sweep of 8 captures on Ray against train.py one by one.")
    p.add_argument("--budget", type=common.positive_float, default=30.0, help="training seconds per capture")
    p.add_argument("--write", action="store_true", help=f"append the results to {RESULTS.name}")
    args = p.parse_args(argv)
    slots = common.CORES
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        plan = write_plan(work / "plan")
        began = time.time()
        sweep_wall = timed([sys.executable, "sweep.py", str(plan), "--budget", f"{args.budget:g}",
                            "--out", str(work / "sweep")])
        trials = {name: json.loads((work / "sweep" / name / "trial.json").read_text()) for name in EFFECTS}
        sweep_esr = {name: best_esr(work / "sweep" / name) for name in EFFECTS}
        one_wall, one_esr = 0.0, {}
        for name in EFFECTS:
            one_wall += timed([sys.executable, "train.py", str(plan / f"{name}_input.wav"),
                               str(plan / f"{name}_target.wav"), "--budget", f"{args.budget:g}",
                               "--out", str(work / "one" / name)])
            one_esr[name] = best_esr(work / "one" / name)

    startup, gaps = idle_gaps(list(trials.values()), began, slots)
    run_seconds = [t["ended"] - t["started"] for t in trials.values()]
    ideal = len(EFFECTS) * args.budget / slots
    rows = [[name, f"{sweep_esr[name]:.3g}", f"{one_esr[name]:.3g}"] for name in EFFECTS]
    table = common.markdown_table(["capture", f"sweep ({slots} at a time, 1 core each)",
                                   f"one by one (train.py, {slots} processes)"], rows, text_columns=1)
    per_trial = statistics.mean(gaps) if gaps else 0.0
    trial_hour = 3600 / (statistics.mean(run_seconds) + per_trial)     # per core, one core a trial
    lines = [
        f"- wall time: sweep {sweep_wall:.1f} s, one by one {one_wall:.1f} s ({one_wall / sweep_wall:.2f} times "
        f"the sweep's)",
        f"- the sweep against the sum of the budgets over the {slots} slots ({ideal:g} s): {sweep_wall / ideal:.3f} "
        f"times (target: within 1.15)",
        f"- Ray's start-up, until the first trial began: {startup:.1f} s (once per sweep)",
        f"- Ray's overhead per trial (a slot idle between one trial's end and the next one's start, "
        f"{len(gaps)} trials): mean {per_trial:.2f} s, largest {max(gaps, default=0):.2f} s (target: below 2 s)",
        f"- a trial's run_capture, budget {args.budget:g} s: {statistics.mean(run_seconds):.1f} s on average "
        f"(reading the pair, the final validation, the report)",
        f"- capacity on paper: {trial_hour:.0f} trials of {args.budget:g} s per hour per core, so "
        f"{trial_hour * slots:.0f} per hour on this {slots}-core machine; a 10-node cluster of 16-core machines "
        f"(one core a trial) runs 160 at a time: 100 captures at a {args.budget:g} s budget in one round, about "
        f"{statistics.mean(run_seconds) + per_trial + startup:.0f} s, and at train.py's 120 s, one round of about "
        f"{120 + statistics.mean(run_seconds) - args.budget + per_trial + startup:.0f} s",
    ]
    text = f"{table}\n\n" + "\n".join(lines)
    print(text)
    if args.write:
        common.append_section(
            RESULTS, f"Many captures: a sweep on Ray against one by one, {common.cpu_model()}, {common.utc_now()}",
            common.command_line("many_captures.py", argv),
            f"{len(EFFECTS)} captures ({', '.join(EFFECTS)}: audio_io.effects, audio_io.amp), {SECONDS} s of "
            f"generated music each (a different seed each) at {RATE} Hz, the last 20 % validating, train.py's "
            f"defaults and a {args.budget:g} s budget each. Best val ESR:\n\n{text}")
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
