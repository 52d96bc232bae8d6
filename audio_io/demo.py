"""Generated music-like material for the demo: plucked strings in E minor, and its pedal version.

``music_like`` plays phrases of single notes, strummed chords and palm-muted chugs on a
Karplus-Strong string model, with soft and loud phrases, crescendos and diminuendos, and
silent rests between some phrases: a wide range of levels and spectra, so a model trained
on it meets most of what a real guitar take holds. Everything is drawn from one seeded
generator, so a seed always gives the same samples.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .effects import demo_effect

E_MINOR = (0, 2, 3, 5, 7, 8, 10)     # natural minor, semitones above E
LOWEST, HIGHEST = 40, 76             # MIDI notes E2 and E5
PEAK = 0.8                           # the mix is scaled to this peak
FADE_SECONDS = 0.015                 # a note ends with a fade this long (a finger damping the string)
MAX_SECONDS_WITHOUT_REST = 10.0      # so that every stretch of material teaches silence in, silence out


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def scale_notes(low: int = LOWEST, high: int = HIGHEST) -> np.ndarray:
    """MIDI numbers of E minor from ``low`` to ``high``, inclusive, ascending."""
    notes = np.arange(low, high + 1)
    return notes[np.isin((notes - 40) % 12, E_MINOR)]


def pluck(rng, frequency: float, seconds: float, rate: int, velocity: float, decay_s: float,
          brightness: float) -> np.ndarray:
    """One plucked note, Karplus-Strong: (round(seconds rate),) float64, peak about ``velocity``.

    A noise burst fills the first P + 1 samples; then
        y[n] = loss (y[n-P] + y[n-P-1]) / 2,
    whose averaging damps the highs a little more each round trip, as a real string does.
    Every sample of one period depends only on the period before it, so the loop runs once
    per period on NumPy slices, never per sample. The averager delays by half a sample, so
    the string sounds at rate / (P + 1/2); P is the smallest period whose pitch is at or
    below ``frequency``, and the note is then read slightly faster (linear interpolation)
    to land exactly on it. ``decay_s`` is the time to fall by 60 dB; ``brightness`` in (0, 1]
    shapes the burst (1: a bright pick, lower: a softer, darker one).
    """
    length = int(round(seconds * rate))
    exact_period = rate / frequency
    period = max(int(math.ceil(exact_period - 0.5)), 2)            # P + 1/2 >= exact period
    speed = (period + 0.5) / exact_period                          # >= 1: read this much faster
    generated = int(math.ceil(length * speed)) + 2
    loss = 10.0 ** (-3.0 / (decay_s * frequency))                  # -60 dB after decay_s seconds

    burst = rng.uniform(-1.0, 1.0, period + 1)
    smoothing = 2 + int(round((1.0 - brightness) * 10))            # a moving average darkens the pick
    burst = np.convolve(burst, np.ones(smoothing) / smoothing, mode="same")
    burst -= burst.mean()                                          # no DC thump
    burst *= velocity / max(np.abs(burst).max(), 1e-9)

    y = np.zeros(max(generated, period + 1))
    y[: period + 1] = burst
    for start in range(period + 1, y.shape[0], period):
        stop = min(start + period, y.shape[0])
        count = stop - start
        np.add(y[start - period : start - period + count], y[start - period - 1 : start - period - 1 + count],
               out=y[start:stop])
        y[start:stop] *= 0.5 * loss
    note = np.interp(np.arange(length) * speed, np.arange(y.shape[0]), y)
    fade = min(int(FADE_SECONDS * rate), length)
    if fade:
        note[length - fade :] *= np.linspace(1.0, 0.0, fade)
    return note


def _phrase_levels(rng, events: int) -> np.ndarray:
    """Velocities (events,) for one phrase: steady, a crescendo or a diminuendo, soft to loud."""
    shape = rng.choice(["steady", "crescendo", "diminuendo"], p=[0.5, 0.3, 0.2])
    soft, loud = rng.uniform(0.06, 0.25), rng.uniform(0.6, 1.0)
    if shape == "crescendo":
        levels = np.geomspace(soft, loud, events)
    elif shape == "diminuendo":
        levels = np.geomspace(loud, soft, events)
    else:
        levels = np.full(events, math.exp(rng.uniform(math.log(0.06), 0.0)))
    return levels * rng.uniform(0.85, 1.0, events)                 # no two plucks alike


def _chord(rng, scale: np.ndarray) -> list:
    """MIDI notes of a diatonic triad voiced like a guitar chord: root, fifth, octave, third above."""
    roots = scale[(scale >= 40) & (scale <= 57)]
    root = int(rng.choice(roots))
    degree = np.searchsorted(scale, root)
    third = int(scale[degree + 2]) + 12
    fifth = int(scale[degree + 4])
    voicing = [root, fifth, root + 12, third]
    return [n for n in voicing if n <= HIGHEST][: int(rng.integers(3, 5))]


def _phrase(rng, start: float, scale: np.ndarray) -> tuple[list, float]:
    """Notes (onset s, midi, length s, velocity, decay s, brightness) of one phrase, and its end."""
    kind = rng.choice(["melody", "chords", "chugs"], p=[0.45, 0.35, 0.2])
    events = int(rng.integers(3, 9))
    levels = _phrase_levels(rng, events)
    notes, time = [], start
    position = int(rng.integers(len(scale) // 3, 2 * len(scale) // 3))
    for velocity in levels:
        if kind == "melody":
            position = int(np.clip(position + rng.choice([-3, -2, -1, 1, 1, 2, 3, 5]), 0, len(scale) - 1))
            length = float(rng.choice([0.15, 0.3, 0.45, 0.6, 0.9, 1.5]))
            notes.append((time, int(scale[position]), length, velocity, rng.uniform(1.5, 4.0), velocity ** 0.3))
            time += length * rng.uniform(0.8, 1.0)
        elif kind == "chords":
            length = float(rng.choice([0.5, 1.0, 1.5, 2.5]))
            chord = _chord(rng, scale)
            if rng.random() < 0.4:
                chord = chord[::-1]                               # an up-strum starts from the high string
            strum = rng.uniform(0.006, 0.025)
            for string, note in enumerate(chord):
                notes.append((time + string * strum, note, length - string * strum,
                              velocity * rng.uniform(0.8, 1.0), rng.uniform(2.0, 4.0), velocity ** 0.3))
            time += length
        else:                                                      # palm-muted chugs: short, dull, quick decay
            root = int(rng.choice(scale[scale <= 52]))
            for _ in range(int(rng.integers(2, 6))):
                length = float(rng.choice([0.1, 0.15, 0.2]))
                for note in (root, root + 7):
                    notes.append((time, note, length, velocity, rng.uniform(0.08, 0.2), 0.3 * velocity ** 0.3))
                time += length
    return notes, time


def music_like(seconds: float, rate: int, seed: int) -> np.ndarray:
    """(round(seconds rate),) float32, mono, peak PEAK (0.8): plucked-string phrases with rests.

    Phrases of 3 to 8 events (a melody of single notes on E2..E5, strummed triads, or
    palm-muted power-chord chugs), each steady, swelling or fading between -24 dB and 0 dB;
    after about half of the phrases (and after any phrase that ends 10 s or more after the
    last rest), 0.3 to 1 s of digital silence: every string damped.
    """
    rng = np.random.default_rng(seed)
    total = int(round(seconds * rate))
    scale = scale_notes()
    mix = np.zeros(total)
    time = last_rest = 0.05
    while time * rate < total:
        notes, end = _phrase(rng, time, scale)
        rest = rng.random() < 0.5 or end - last_rest > MAX_SECONDS_WITHOUT_REST
        for onset, midi, length, velocity, decay, brightness in notes:
            first = int(round(onset * rate))
            if first >= total or length * rate < 2:
                continue
            note = pluck(rng, midi_to_hz(midi), length, rate, velocity, decay, brightness)
            last = min(first + note.shape[0], total)
            mix[first:last] += note[: last - first]
        if rest:                        # damp every string, this phrase's and any still ringing before it
            damp_from = int(round(end * rate))
            fade = mix[damp_from : damp_from + int(FADE_SECONDS * rate)]
            fade *= np.linspace(1.0, 0.0, fade.shape[0])
            mix[damp_from + fade.shape[0] :] = 0.0                 # nothing after the rest has been played yet
            time = last_rest = end + rng.uniform(0.3, 1.0)
        else:
            time = end
    peak = np.abs(mix).max()
    if peak > 0:
        mix *= PEAK / peak
    return mix.astype(np.float32)


DEMO_FILES = ("demo_input.wav", "demo_target.wav")   # the names train.py gives the pair in a demo's run folder


def pair_file(path: str, run_folder) -> str:
    """Where a file of a run's pair is now. The path as the run stored it; but a file that
    lay in the run folder itself (the demo pair, by name, or any file whose folder had the
    run folder's name) and is gone from there is read from the run folder as it is now, so
    that a moved or renamed run can be resumed and reported on (the knob demo's CSV too:
    its rows name their files relative to it, so they move with it)."""
    stored, folder = Path(path), Path(run_folder)
    here = folder / stored.name
    was_inside = stored.name in DEMO_FILES + KNOB_DEMO_FILES or stored.parent.name == folder.resolve().name
    if not stored.is_file() and was_inside and here.is_file():
        return str(here.resolve())
    return path


KNOB_DEMO_SETTINGS = ((0, 0), (0, 10), (5, 5), (10, 0), (10, 10), (5, 0), (5, 10))   # (drive, tone): corners, middle
KNOB_DEMO_KNOBS = ("drive", "tone")           # the knob demo's knobs, the model's inputs after the audio
KNOB_DEMO_FILES = ("demo_knobs.csv",)      # besides demo_input.wav and a target per setting


def knob_demo(folder, seconds: float, rate: int, seed: int) -> Path:
    """A capture set in ``folder``: one music_like take (demo_input.wav) through the knob
    demo's pedal (effects.knob_pedal) at KNOB_DEMO_SETTINGS, a target WAV each, and
    demo_knobs.csv listing them. Returns the CSV's path."""
    from lstm_core.files.atomic import write_text_atomic

    from .effects import knob_pedal
    from .files import write_audio_atomic

    folder = Path(folder)
    dry = music_like(seconds, rate, seed)
    write_audio_atomic(folder / "demo_input.wav", dry, rate, "PCM_24")
    lines = [",".join(["input", "target", *KNOB_DEMO_KNOBS, "name"])]
    for drive, tone in KNOB_DEMO_SETTINGS:
        name = f"drive{drive}_tone{tone}"
        write_audio_atomic(folder / f"demo_{name}.wav", knob_pedal(dry, rate, drive, tone), rate, "PCM_24")
        lines.append(f"demo_input.wav,demo_{name}.wav,{drive},{tone},{name}")
    path = folder / "demo_knobs.csv"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def demo_pair(seconds: float, rate: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(dry, wet), each (round(seconds rate),) float32: music_like and demo_effect of it."""
    dry = music_like(seconds, rate, seed)
    return dry, demo_effect(dry, rate)
