"""A conditioned model's knobs: from what a user types to the model's extra inputs.

A model trained on a capture set takes the audio plus one input per knob, each scaled to
0..1 over the knob's range; its model.npz names the knobs and their ranges
(``meta["knobs"]``: [{"name", "min", "max"}, ...]). A user gives settings in the knob's own
units, by name (``gain=7``); a model that names no knobs (an AIDA-X file) takes its inputs
by position, as they are (``0.7``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Knob:
    name: str
    low: float                # the setting that is 0 to the model...
    high: float               # ...and the one that is 1

    def scaled(self, value: float) -> float:
        return (value - self.low) / (self.high - self.low)


def model_knobs(meta: dict) -> list | None:
    """The knobs a model file names (its metadata's "knobs"), or None when it names none."""
    entries = meta.get("knobs") if isinstance(meta, dict) else None
    if not isinstance(entries, list) or not entries:
        return None
    try:
        return [Knob(str(e["name"]), float(e["min"]), float(e["max"])) for e in entries]
    except (KeyError, TypeError, ValueError):
        return None


def knob_inputs(knobs: list | None, count: int, given: list, extrapolate: bool = False, model: str = "the model"
                ) -> tuple:
    """The model's ``count`` extra inputs from the settings ``given`` ("name=value" or
    "value" strings). Raises ValueError with a one-line message: a knob missing, unknown or
    given twice, a value that is not a finite number, or (unless ``extrapolate``) outside
    the range the model was trained on."""
    if count == 0:
        if given:
            raise ValueError(f"{model}: the model takes audio only: leave out --knob")
        return ()
    named = [item for item in given if "=" in item]
    if knobs is None or not named:
        if named:
            raise ValueError(f"{model}: its knobs have no names: give --knob VALUE once per input, in order")
        if len(given) != count:
            listed = f" ({', '.join(k.name for k in knobs)})" if knobs else ""
            raise ValueError(f"{model}: a conditioned model with {count} input(s) besides the audio{listed}: give "
                             f"--knob {'NAME=VALUE' if knobs else 'VALUE'} {count} time(s) (given {len(given)})")
        values = [_finite(item) for item in given]
        if knobs is None:
            return tuple(values)
        settings = dict(zip((k.name for k in knobs), values))
    else:
        if len(named) != len(given):
            raise ValueError(f"{model}: give every knob by name (NAME=VALUE), or every one by position")
        settings = {}
        for item in named:
            name, _, text = item.partition("=")
            if name not in {k.name for k in knobs}:
                raise ValueError(f"{model}: no knob named {name!r} (its knobs: {', '.join(k.name for k in knobs)})")
            if name in settings:
                raise ValueError(f"--knob {name} is given twice")
            settings[name] = _finite(text, name)
        missing = [k.name for k in knobs if k.name not in settings]
        if missing:
            raise ValueError(f"{model}: give --knob {missing[0]}=VALUE too (its knobs: "
                             f"{', '.join(k.name for k in knobs)})")
    inputs = []
    for knob in knobs:
        value = settings[knob.name]
        if not extrapolate and not knob.low <= value <= knob.high:
            raise ValueError(f"--knob {knob.name}={value:g} is outside the range the model was trained on "
                             f"({knob.low:g} to {knob.high:g}); pass --extrapolate to use it anyway")
        inputs.append(knob.scaled(value))
    return tuple(inputs)


def _finite(text: str, name: str | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        what = f"--knob {name}={text}" if name else f"--knob {text}"
        raise ValueError(f"{what}: give a finite number (knobs usually run from 0 to 1)")
    return value
