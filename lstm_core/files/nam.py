"""Neural Amp Modeler's .nam files, architecture "LSTM": read and write.

A .nam file is one JSON object:

    {"version": "0.5.4", "architecture": "LSTM",
     "config": {"input_size": I, "hidden_size": H, "num_layers": L},
     "weights": [...one flat list of floats...],
     "sample_rate": 48000, "metadata": {...}}

``weights`` holds, for each layer l in turn (input size I_l = I for the first, H after):

    [W_ih | W_hh]   (G, I_l + H), row-major, gates i, f, g, o (PyTorch's layout)
    b_ih + b_hh     (G,)
    h0              (H,)   the initial hidden state
    c0              (H,)   the initial cell state

then the head: its weight (H values) and bias (1 value). The output is head(h_t) alone:
the architecture has no input skip connection. The initial state is where the plugin
starts its stream; NAM's trainer sets it to the state reached after 48000 samples of
silence, and so does our exporter (inference.rest_state).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from .. import __version__
from ..model import ModelConfig
from .model_file import ModelFile, ModelFileError, finite_number, parse_date, sample_rate_or_none
from .npz import check_params
from .torch_layout import from_torch_layout, to_torch_layout

NAM_VERSION = "0.5.4"          # the file-format version written (the plugin checks its major.minor)
DEFAULT_NAM_RATE = 48000       # what NAM assumes when a file names no sample rate
NAM_BURN_IN = 48000            # samples of silence NAM's trainer runs to find the initial state
# The level calibration: the analog level (dBu) that digital full scale meant at the input
# and at the output of the capture, so that a plugin plays the capture at its real loudness.
LEVEL_KEYS = ("input_level_dbu", "output_level_dbu")


def weight_count(config: ModelConfig) -> int:
    """How many numbers ``weights`` holds for this architecture."""
    H, G = config.hidden_size, 4 * config.hidden_size
    total = 0
    for layer in range(config.num_layers):
        inputs = config.input_size if layer == 0 else H
        total += G * (inputs + H) + G + 2 * H
    return total + H + 1


def check_nam_expressible(config: ModelConfig):
    """Raise ModelFileError, saying what to do instead, for what a .nam LSTM cannot hold."""
    if config.skip:
        raise ModelFileError("the .nam LSTM architecture has no skip connection (input added to the output), and "
                             "this model uses one: train it with --no-skip to export it to .nam, or export to "
                             "AIDA-X .json, which has one")
    if config.input_size != 1:
        raise ModelFileError(f"this model takes {config.input_size} inputs per sample (a conditioned model); NAM "
                             f"LSTM files take audio only: export to AIDA-X .json instead")


def nam_document(params: dict, config: ModelConfig, initial_state, sample_rate: int, metadata: dict) -> dict:
    """The .nam JSON object for our model. ``initial_state``: (h, c), each (L, H)."""
    check_nam_expressible(config)
    layers, head_W, head_b = to_torch_layout(params, config)
    h0, c0 = (np.asarray(part, np.float32) for part in initial_state)
    pieces = []
    for index, layer in enumerate(layers):
        pieces += [np.concatenate([layer["W_ih"], layer["W_hh"]], axis=1).ravel(), layer["bias"], h0[index], c0[index]]
    pieces += [head_W.ravel(), head_b.ravel()]
    weights = np.concatenate([np.asarray(p, np.float32) for p in pieces])
    return {
        "version": NAM_VERSION,
        "architecture": "LSTM",
        "config": {"input_size": config.input_size, "hidden_size": config.hidden_size,
                   "num_layers": config.num_layers},
        "weights": [float(w) for w in weights],     # float32 values, exact as doubles
        "sample_rate": int(sample_rate),
        "metadata": nam_metadata(metadata),
    }


def nam_metadata(facts: dict) -> dict:
    """NAM's metadata block from our facts: name, date (as NAM's fields), validation ESR."""
    when = parse_date(facts.get("date")) or datetime.now()
    metadata = {
        "date": {"year": when.year, "month": when.month, "day": when.day, "hour": when.hour,
                 "minute": when.minute, "second": when.second},
        "name": facts.get("name"),
        "modeled_by": facts.get("modeled_by") or f"lstm-audio-effects {__version__}",
    }
    esr = finite_number(facts.get("val_esr"))
    if esr is not None:
        metadata["training"] = {"validation_esr": esr}
    for key in LEVEL_KEYS:                   # the level calibration NAM's trainer writes (since 0.10)
        metadata[key] = finite_number(facts.get(key))
    return {k: v for k, v in metadata.items() if v is not None}


def read_nam(path, document) -> ModelFile:
    """A ModelFile from the parsed JSON of a .nam file. Raises ModelFileError."""
    if not isinstance(document, dict):
        raise ModelFileError(f"{path}: not a .nam model (the JSON is not an object)")
    architecture = document.get("architecture")
    if architecture is None:
        raise ModelFileError(f"{path}: not a .nam model (no \"architecture\")")
    if architecture != "LSTM":
        raise ModelFileError(f"{path}: a {architecture} model; only LSTM .nam files can be read here (this project "
                             f"trains and runs LSTMs)")
    settings = document.get("config")
    try:
        config = ModelConfig(input_size=_integer(settings.get("input_size", 1)),
                             hidden_size=_integer(settings["hidden_size"]),
                             num_layers=_integer(settings.get("num_layers", 1)), skip=False)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: its \"config\" is damaged ({exc!r}); it needs hidden_size, num_layers and "
                             f"input_size") from None
    weights = document.get("weights")
    if not isinstance(weights, list):
        raise ModelFileError(f"{path}: no \"weights\" list")
    try:
        weights = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f"{path}: \"weights\" holds something other than numbers") from None
    expected = weight_count(config)
    if weights.ndim != 1:
        raise ModelFileError(f"{path}: \"weights\" must be one flat list of numbers, not nested lists")
    if weights.size != expected:
        raise ModelFileError(f"{path}: {weights.size} weights, but an LSTM with input_size {config.input_size}, "
                             f"hidden_size {config.hidden_size} and {config.num_layers} layer(s) has {expected}: "
                             f"the file is damaged or its config is wrong")
    if not np.isfinite(weights).all():
        raise ModelFileError(f"{path}: the weights hold NaN or infinite values")
    params, initial_state = _unpack(weights, config)
    rate = document.get("sample_rate")
    notes = []
    rate = sample_rate_or_none(rate)
    if rate is None:
        notes.append(f"{path}: names no usable sample rate; NAM then assumes {DEFAULT_NAM_RATE} Hz")
        rate = DEFAULT_NAM_RATE
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    training = metadata.get("training") if isinstance(metadata.get("training"), dict) else {}
    name = metadata.get("name") if isinstance(metadata.get("name"), str) else None
    meta = {"name": name, "val_esr": finite_number(training.get("validation_esr")),
            "date": _nam_date(metadata.get("date")), "version": document.get("version"), "metadata": metadata}
    return ModelFile(check_params(path, params, config), config, int(rate), meta, "nam", initial_state, notes)


def _unpack(weights: np.ndarray, config: ModelConfig):
    """(params, (h0, c0)) from the flat weight list, in the order the module doc gives."""
    H, G = config.hidden_size, 4 * config.hidden_size
    position = 0

    def take(count: int) -> np.ndarray:
        nonlocal position
        position += count
        return weights[position - count : position]

    layers, h0, c0 = [], [], []
    for layer in range(config.num_layers):
        inputs = config.input_size if layer == 0 else H
        joined = take(G * (inputs + H)).reshape(G, inputs + H)
        layers.append({"W_ih": joined[:, :inputs], "W_hh": joined[:, inputs:], "bias": take(G)})
        h0.append(take(H))
        c0.append(take(H))
    head_W, head_b = take(H), take(1)
    params = from_torch_layout(layers, head_W, head_b)
    return params, (np.array(h0, np.float32), np.array(c0, np.float32))


def _integer(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _nam_date(date) -> str | None:
    if not isinstance(date, dict):
        return None
    try:
        return datetime(*(int(date[k]) for k in ("year", "month", "day", "hour", "minute", "second"))).isoformat()
    except (KeyError, TypeError, ValueError):
        return None
