"""One conditioned model against separate models, for the same settings and the same total time.

A pedal with a drive knob (audio_io.effects.knob_pedal, tone fixed) is captured at 5
trained settings and 2 held-out ones between them, 30 s of generated music each at
44.1 kHz (the last 20 % validating). Then, on the CPU with train.py's defaults:

    conditioned   one model (input: audio + drive scaled to 0..1) trained on all 5
                  settings for the whole budget (lstm_core.run.train_run on a
                  CaptureDataset, as train.py --captures trains)
    separate      5 models, one per trained setting, each for a fifth of the budget;
                  a held-out setting is played by the model of the nearest trained one
                  (what a user without knobs has)

The table gives the val ESR at every setting, and the medians the issue's targets use.

    python benchmarks/knobs.py                     # a 150 s budget in all, each way
    python benchmarks/knobs.py --budget 60 --write
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

from audio_io.capture_set import read_capture_set  # noqa: E402
from audio_io.dataset import Dataset, PairOptions, load_capture_dataset  # noqa: E402
from audio_io.demo import music_like  # noqa: E402
from audio_io.effects import knob_pedal  # noqa: E402
from audio_io.files import write_audio_atomic  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.common import RATE, RESULTS  # noqa: E402
from lstm_core.devices import device_settings  # noqa: E402
from lstm_core.model import ModelConfig  # noqa: E402
from lstm_core.run import StopRule, ValidationPart, new_run, train_run, validation_errors  # noqa: E402
from lstm_core.training import TrainConfig, default_input_level, input_gain_for  # noqa: E402

TRAINED = (0.0, 2.5, 5.0, 7.5, 10.0)      # drive settings trained on
HELD_OUT = (1.25, 6.25)                   # settings between them, never trained on
TONE = 6.0
SECONDS = 30


def write_capture_set(folder: Path) -> Path:
    """The dry take, a target per setting, and set.csv listing them (held-out rows named held*)."""
    dry = music_like(SECONDS, RATE, seed=7)
    write_audio_atomic(folder / "dry.wav", dry, RATE, "FLOAT")
    lines = ["input,target,drive,name"]
    for drive in TRAINED + HELD_OUT:
        name = f"{'held' if drive in HELD_OUT else 'drive'}{drive:g}"
        write_audio_atomic(folder / f"{name}.wav", knob_pedal(dry, RATE, drive, TONE), RATE, "FLOAT")
        lines.append(f"dry.wav,{name}.wav,{drive:g},{name}")
    (folder / "set.csv").write_text("\n".join(lines) + "\n")
    return folder / "set.csv"


def train(data, model: ModelConfig, budget: float, folder: Path):
    level = default_input_level(*data.linear_esrs)                    # as train.py sets it
    train = TrainConfig(input_gain=input_gain_for(data.input_rms, level))
    state = new_run(model, train, StopRule(epochs=1_000_000, budget=budget, patience=None), {}, seed=0)
    train_run(state, data, device_settings("cpu"), folder, {})
    return state.best_params


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="One conditioned model against separate ones, at equal total time.")
    p.add_argument("--budget", type=common.positive_float, default=150.0, help="seconds in all, each way")
    p.add_argument("--write", action="store_true", help=f"append the table to {RESULTS.name}")
    args = p.parse_args(argv)
    device = device_settings("cpu")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        capture_set = read_capture_set(write_capture_set(work))
        held = tuple(f"held{d:g}" for d in HELD_OUT)
        data = load_capture_dataset(capture_set, PairOptions("", ""), holdout=held)
        parts = {part.name: part for part in data.validation}
        conditioned = train(data, ModelConfig(input_size=2), args.budget, work / "conditioned")
        _, esr_conditioned = validation_errors(conditioned, ModelConfig(input_size=2), data.validation, device, np)

        esr_separate, models = {}, {}
        for r in data.training:                  # the same row as a plain pair: the audio alone, no knob input
            alone = Dataset(r.x_train, r.y_train, r.x_val, r.y_val, r.pair)
            models[r.knobs[0]] = train(alone, ModelConfig(), args.budget / len(data.training), work / r.name)
        for recording in data.recordings:
            nearest = min(models, key=lambda drive: abs(drive - recording.knobs[0]))
            part = parts[recording.name]
            _, each = validation_errors(models[nearest], ModelConfig(), [ValidationPart(part.x, part.y, part.history,
                                                                                          (), part.name)], device, np)
            esr_separate[recording.name] = each[recording.name]

    rows, trained_c, trained_s, held_c = [], [], [], []
    for recording in data.recordings:
        c, s = esr_conditioned[recording.name], esr_separate[recording.name]
        rows.append([recording.name, f"{recording.knobs[0]:g}", "held out" if recording.held_out else "trained",
                     f"{c:.3g}", f"{s:.3g}"])
        (held_c if recording.held_out else trained_c).append(c)
        if not recording.held_out:
            trained_s.append(s)
    table = common.markdown_table(["setting", "drive", "", "conditioned", "separate (nearest)"], rows, text_columns=3)
    median = {"conditioned, trained": statistics.median(trained_c), "separate, trained": statistics.median(trained_s),
              "conditioned, held out": statistics.median(held_c)}
    lines = [f"- median val ESR, {k}: {v:.3g}" for k, v in median.items()]
    ratio = median["conditioned, trained"] / median["separate, trained"]
    lines.append(f"- conditioned / separate at the trained settings: {ratio:.2f} (target: within 1.5)")
    ratio = median["conditioned, held out"] / median["conditioned, trained"]
    lines.append(f"- held out / trained, conditioned: {ratio:.2f} (target: within 2)")
    text = f"{table}\n\n" + "\n".join(lines)
    print(text)
    if args.write:
        common.append_section(
            RESULTS, f"Knobs: one conditioned model against separate ones, {common.cpu_model()}, {common.utc_now()}",
            common.command_line("knobs.py", argv),
            f"A pedal with a drive knob (audio_io.effects.knob_pedal, tone {TONE:g}), {SECONDS} s of generated music "
            f"a setting at {RATE} Hz, the last 20 % validating; trained settings {', '.join(f'{d:g}' for d in TRAINED)}, "
            f"held out {', '.join(f'{d:g}' for d in HELD_OUT)}. Conditioned: one model on every trained setting for "
            f"{args.budget:g} s; separate: one model per trained setting for {args.budget / len(TRAINED):g} s each, a "
            f"held-out setting played by the nearest trained setting's model. train.py's CPU defaults.\n\n{text}")
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
