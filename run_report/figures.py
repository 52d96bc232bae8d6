"""The report's plots, as PNG bytes (matplotlib, drawn off-screen with the Agg canvas).

    curves      training loss and validation ESR per epoch, log scale, best epoch marked
    prediction  a short stretch around a transient: target and prediction overlaid, the
                error below; and the spectra of target, prediction and error
    comparison  several runs' validation ESR curves on one plot, each best marked

Figures are built with the object API (Figure + FigureCanvasAgg), never pyplot, so
nothing depends on a display or on global state.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .run import Run, ValidationAudio

DPI = 100
STRETCH_SECONDS = 0.04           # the waveform overlay's length
SPECTRUM_FRAME = 4096            # samples per FFT frame of the spectra


def png_bytes(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def curves_figure(run: Run) -> Figure:
    epochs = [row["epoch"] for row in run.history]
    figure = Figure(figsize=(8, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.semilogy(epochs, finite_or_gap(run.history, "train_loss"), label="training loss", color="tab:gray")
    axes.semilogy(epochs, finite_or_gap(run.history, "val_esr"), label="validation ESR", color="tab:blue",
                  marker="o" if len(epochs) < 40 else None, markersize=3)
    best = run.best_epoch
    axes.axvline(best, color="tab:green", linestyle="--", linewidth=1)
    axes.plot([best], [run.val_esr], marker="*", markersize=14, color="tab:green", linestyle="none",
              label=f"best: {run.val_esr:.3g} " + (f"at epoch {best}" if best else "(the starting model)"))
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss / ESR (log scale)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    axes.set_title("Learning curves")
    return figure


def finite_or_gap(history: list, column: str) -> np.ndarray:
    """A history column with NaN where an epoch diverged (the plot shows a gap)."""
    values = np.array([row[column] for row in history], dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


LOUD_DB = 30.0                   # the transient is sought among frames this close to the loudest


def transient_start(target: np.ndarray, rate: int) -> int:
    """Where the stretch to show begins: a little before the largest jump in the target's
    short-time energy (a note's attack, where models most often differ). The jump is
    measured in dB, but only into frames within LOUD_DB of the loudest, so a faint click
    after silence does not beat a real attack."""
    hop = max(1, rate // 200)                                    # 5 ms frames
    frames = target[: target.size // hop * hop].reshape(-1, hop)
    if frames.shape[0] < 3:
        return 0
    energy = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12)
    rise = np.diff(energy)
    rise[energy[1:] < energy.max() - LOUD_DB] = -np.inf
    jump = int(np.argmax(rise)) + 1
    length = int(STRETCH_SECONDS * rate)
    return int(np.clip(jump * hop - length // 4, 0, max(0, target.size - length)))


def spectrum_db(signal: np.ndarray) -> np.ndarray:
    """Average magnitude spectrum in dB (Hann-windowed frames, half-overlapping)."""
    frame = min(SPECTRUM_FRAME, signal.size)
    window = np.hanning(frame)
    starts = range(0, signal.size - frame + 1, frame // 2)
    power = np.mean([np.abs(np.fft.rfft(window * signal[s : s + frame])) ** 2 for s in starts], axis=0)
    return 10 * np.log10(power / (window.sum() ** 2 / 4) + 1e-20)


def prediction_figure(audio: ValidationAudio) -> Figure:
    rate = audio.rate
    start = transient_start(audio.target, rate)
    stop = min(audio.target.size, start + int(STRETCH_SECONDS * rate))
    t_ms = 1000.0 * np.arange(start, stop) / rate
    target, prediction = audio.target[start:stop], audio.prediction[start:stop]
    figure = Figure(figsize=(10, 8), layout="constrained")
    wave, error, spectra = figure.subplots(3, 1, height_ratios=[2, 1, 2])
    wave.plot(t_ms, target, label="target", color="black", linewidth=1.2)
    wave.plot(t_ms, prediction, label="prediction", color="tab:orange", linewidth=1, linestyle="--")
    wave.set_title(f"Prediction against target around a transient ({t_ms[0] / 1000:.2f} s into the validation audio)")
    wave.set_ylabel("amplitude")
    wave.legend(loc="upper right")
    wave.grid(True, alpha=0.3)
    error.plot(t_ms, prediction - target, color="tab:red", linewidth=1)
    error.set_ylabel("error")
    error.set_xlabel("time (ms)")
    error.grid(True, alpha=0.3)
    frequencies = np.fft.rfftfreq(min(SPECTRUM_FRAME, audio.target.size), 1.0 / rate)
    # The target is drawn wide and under the prediction, so it shows at the edges even where
    # the two are equal (a good model): otherwise the prediction hides it.
    for signal, label, color, width in ((audio.target, "target", "black", 2.5),
                                        (audio.prediction, "prediction", "tab:orange", 0.8),
                                        (audio.prediction - audio.target, "error", "tab:red", 0.8)):
        spectra.semilogx(frequencies[1:], spectrum_db(signal)[1:], label=label, color=color, linewidth=width)
    spectra.set_xlim(20, rate / 2)
    spectra.set_xlabel("frequency (Hz)")
    spectra.set_ylabel("level (dBFS)")
    spectra.set_title("Spectra of the whole validation audio: where the error is (lows, highs, noise floor)")
    spectra.legend(loc="lower left")
    spectra.grid(True, which="both", alpha=0.3)
    return figure


def comparison_figure(runs: list, names: list) -> Figure:
    """Val ESR against training time, a line per run, labelled with ``names``."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for run, name in zip(runs, names):
        seconds = [row["seconds"] for row in run.history]
        line, = axes.semilogy(seconds, finite_or_gap(run.history, "val_esr"), label=f"{name} ({run.val_esr:.3g})")
        best = [s for s, row in zip(seconds, run.history) if row["epoch"] == run.best_epoch]
        axes.plot(best[:1], [run.val_esr] * len(best[:1]), marker="*", markersize=12, color=line.get_color(),
                  linestyle="none")
    axes.set_xlabel("training time (s)")
    axes.set_ylabel("validation ESR (log scale)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    axes.set_title("Validation ESR against training time")
    return figure


def knob_figure(settings: list, knob_names: list) -> Figure:
    """Val ESR against each knob's value, one panel a knob: trained settings filled,
    held-out ones hollow (how well the settings between come out)."""
    figure = Figure(figsize=(4.5 * max(1, len(knob_names)), 3.8), layout="constrained")
    panels = figure.subplots(1, max(1, len(knob_names)), squeeze=False)[0]
    for axes, knob in zip(panels, knob_names):
        for held_out, style in ((False, dict(marker="o", color="tab:blue", label="trained")),
                                (True, dict(marker="s", markerfacecolor="none", color="tab:red",
                                            label="held out (never trained on)"))):
            points = [(s.knobs.get(knob), s.esr) for s in settings if s.held_out == held_out and np.isfinite(s.esr)]
            if points:
                axes.semilogy([p[0] for p in points], [p[1] for p in points], linestyle="none", markersize=8, **style)
        axes.set_xlabel(knob)
        axes.set_ylabel("validation ESR (log scale)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
        axes.set_title(f"ESR against {knob}")
    return figure
