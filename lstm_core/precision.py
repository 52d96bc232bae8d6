"""The float type offline processing computes in: float32, or float64 for a model that amplifies rounding.

Offline processing has two ways (inference.py): sequential, and parallel chunks corrected
until each starts where the one before it ends, to the rounding of their float type
(chunks.py). In float32 both round differently from each other, and from the model's
exact output, by 2^-24 a step. On most models that stays near the output's own rounding
(-140 dB). But
a model whose recurrence amplifies small differences carries it much further: trained
amp-like models here and every community AIDA-X capture tried differ from a float64 run
of the same weights by -80 to -130 dB in float32, whichever way computes them, and the
two ways then differ from each other by up to as much (RESULTS.md, "Offline precision").

So a model is first tried on a probe signal, in float32 and in float64 (4096 steps, 16
columns at once: 0.06 to 0.4 s for one layer of H = 12 to 64, more for deeper models).
When float32 moves the probe's output by more than LIMIT_DB, the model runs in float64:
both ways then give its exact output to float64 rounding (unless the model is chaotic:
chunks.py), and the file's float32 samples are that output rounded once.
That costs about two and a half to three times the float32 time in the parallel way
(wider arithmetic, and more correction passes to agree to float64 rounding: two trained
amp-like models ran at 35x and 29x real time against 90x and 81x, RESULTS.md "Offline
blocks"), and little in the sequential way, whose time goes to the calls' own overhead.
On a GPU float64 is as fast as half of float32 on data-centre cards (H100, H200) but a
thirty-second or less on most consumer ones; it has not been measured here on either.

The probe: each column a run of decaying notes (three partials each, struck every 1024
samples) at its own level, from -24 dBFS to -1 dBFS, over a little noise; the same
signal every time (a fixed seed), so both ways of processing a file choose alike.
"""

from __future__ import annotations

import numpy as np

from .inference import model_input, run, start_state
from .model import ModelConfig

LIMIT_DB = -130.0       # float32's effect on the probe above which a model runs in float64
PROBE_COLUMNS = 16
PROBE_STEPS = 4096
NOTE_STEPS = 1024       # a new note every NOTE_STEPS samples


def probe_signal() -> np.ndarray:
    """(PROBE_STEPS, PROBE_COLUMNS) float32: the probe (module doc)."""
    rng = np.random.default_rng(19)
    t = np.arange(NOTE_STEPS)
    columns = []
    for column in range(PROBE_COLUMNS):
        peak = 10 ** ((-24.0 + 23.0 * column / (PROBE_COLUMNS - 1)) / 20)
        notes = []
        for _ in range(PROBE_STEPS // NOTE_STEPS):
            pitch = rng.uniform(0.004, 0.04)                  # cycles per sample: 180 Hz to 1.8 kHz at 44.1 kHz
            partials = sum(np.sin(2 * np.pi * pitch * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
            notes.append(partials * np.exp(-t / rng.uniform(150, 900)))
        note_run = np.concatenate(notes) + 0.01 * rng.standard_normal(PROBE_STEPS)
        columns.append(peak * note_run / np.abs(note_run).max())
    return np.stack(columns, axis=1).astype(np.float32)


def rounding_effect_db(params: dict, config: ModelConfig, initial=None, controls=()) -> float:
    """How far float32 moves the model's output on the probe from float64's, in dB
    (20 log10 of the difference's norm over the output's). ``params`` on the host;
    ``initial`` and ``controls`` as inference.process_sequential takes them."""
    x = model_input(probe_signal(), config, controls)
    outputs = []
    with np.errstate(all="ignore"):                  # a model that overflows is answered below
        for dtype in (np.float32, np.float64):
            cast = {name: np.asarray(value, dtype) for name, value in params.items()}
            y, _ = run(cast, config, x.astype(dtype), start_state(config, PROBE_COLUMNS, np, initial, dtype))
            outputs.append(y.astype(np.float64))
        difference = np.linalg.norm(outputs[0] - outputs[1]) / max(np.linalg.norm(outputs[1]), 1e-30)
    if not np.isfinite(difference):                  # a model that overflows in float32 only: float64 it is
        return float("inf")
    return float(20 * np.log10(max(difference, 1e-30)))


def offline_dtype(params: dict, config: ModelConfig, initial=None, controls=()):
    """(np.float32 or np.float64, the probe's dB): the type to process this model in."""
    effect = rounding_effect_db(params, config, initial, controls)
    return (np.float64 if effect > LIMIT_DB else np.float32), effect
