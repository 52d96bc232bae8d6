"""A first look: the core learns a one-pole low-pass filter of noise, and prints its error falling.

    python -m lstm_core.example

Arrays only, no files: ``train.py`` does the same for WAV pairs.
"""

from __future__ import annotations

import time

import numpy as np

from .adam import AdamState
from .losses import esr
from .model import ModelConfig, init_params
from .workspace import Workspace
from .inference import process_sequential
from .training import TrainConfig, train_window


def one_pole_lowpass(x: np.ndarray, pole: float) -> np.ndarray:
    """y[n] = (1 - pole) x[n] + pole y[n-1]: the simplest low-pass filter there is."""
    y, state = np.empty_like(x), 0.0
    for n, sample in enumerate(x):
        state = (1.0 - pole) * sample + pole * state
        y[n] = state
    return y


def random_windows(rng, x: np.ndarray, y: np.ndarray, length: int, batch: int):
    """``batch`` windows of ``length`` steps at random places: x (T, 1, B), y (T, B)."""
    starts = rng.integers(0, x.size - length, batch)
    xw = np.stack([x[s : s + length] for s in starts], axis=1)[:, None, :]
    yw = np.stack([y[s : s + length] for s in starts], axis=1)
    return xw, yw


def validation_esr(params, config, x, y) -> float:
    return float(esr(process_sequential(params, config, x)[0], y))


def learn_lowpass(seed: int = 7, max_windows: int = 600, target_esr: float = 1e-3, report=None):
    """Train a small model on a low-pass of noise until val ESR < target_esr.

    Returns (initial val ESR, best val ESR, windows used, seconds).
    """
    rng = np.random.default_rng(seed)
    x = (0.5 * rng.standard_normal(48_000)).astype(np.float32)
    y = one_pole_lowpass(x, 0.9).astype(np.float32)
    x_train, y_train, x_val, y_val = x[:40_000], y[:40_000], x[40_000:], y[40_000:]

    # A low-pass output is far from its input, so the skip connection does not help here.
    config = ModelConfig(hidden_size=8, skip=False)
    params = init_params(config, rng)
    # a 64-step warm-up from the state the window's last 64 steps leave (TrainConfig.prewarm)
    train = TrainConfig(lr=1e-2, warmup=64, prewarm=64, tbptt=256, pre_emphasis=0.0, dc_weight=0.0)
    adam, workspace = AdamState(), Workspace()
    initial = best = validation_esr(params, config, x_val, y_val)
    started = time.perf_counter()
    for window in range(1, max_windows + 1):
        train_window(params, config, adam, *random_windows(rng, x_train, y_train, 64 + 512, 32), train, workspace)
        if window % 25 == 0:
            best = min(best, validation_esr(params, config, x_val, y_val))
            if report:
                report(window, best, time.perf_counter() - started)
            if best < target_esr:
                break
    return initial, best, window, time.perf_counter() - started


def main():
    print("Learning a one-pole low-pass filter (pole 0.9) of white noise, H=8, on the CPU")
    initial, best, windows, seconds = learn_lowpass(
        report=lambda w, e, s: print(f"  {w:4d} windows  {s:5.1f} s  val ESR {e:.2e} ({10 * np.log10(e):6.1f} dB)"))
    print(f"val ESR {initial:.3f} -> {best:.2e} in {seconds:.1f} s ({windows} windows of 32 x 576 samples)")


if __name__ == "__main__":
    main()
