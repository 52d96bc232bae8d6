"""CoreAudioML JSON: the PyTorch model files of Automated-GuitarAmpModelling, read.

AIDA-X's trainer (AidaDSP's fork of Automated-GuitarAmpModelling) saves its SimpleRNN
this way, and the AIDA-X model collections hold some files in this form beside the
RTNeural ones the plugin loads (its modelToKeras.py converts one into the other):

    {"model_data": {"model": "SimpleRNN", "unit_type": "LSTM", "input_size": I,
                    "hidden_size": H, "num_layers": L, "output_size": 1, "skip": 0 or 1,
                    "bias_fl": true},
     "state_dict": {"rec.weight_ih_l0": (4H, I), "rec.weight_hh_l0": (4H, H),
                    "rec.bias_ih_l0": (4H,), "rec.bias_hh_l0": (4H,), ...one set per layer...,
                    "lin.weight": (1, H), "lin.bias": (1,)}}

The LSTM is PyTorch's (gate blocks i, f, g, o; two biases, summed here, as RTNeural's
conversion sums them); SimpleRNN adds input channel 0 to the output when skip is 1
(``res = x[:, :, 0:skip]``), which is this project's skip. The file names no sample
rate and no gains.
"""

from __future__ import annotations

import numpy as np

from ..model import ModelConfig
from .model_file import ModelFile, ModelFileError
from .npz import check_params
from .torch_layout import from_torch_layout


def is_core_audio_ml(document) -> bool:
    return isinstance(document, dict) and "model_data" in document and "state_dict" in document


def read_core_audio_ml(path, document: dict) -> ModelFile:
    """A ModelFile from the parsed JSON of a CoreAudioML file. Raises ModelFileError."""
    data, weights = document["model_data"], document["state_dict"]
    if not isinstance(data, dict) or not isinstance(weights, dict):
        raise ModelFileError(f"{path}: \"model_data\" and \"state_dict\" must be JSON objects")
    model, unit = data.get("model"), data.get("unit_type")
    if model != "SimpleRNN":
        raise ModelFileError(f"{path}: a CoreAudioML {model!r} model; only SimpleRNN (one recurrent block and a "
                             f"linear output) can be read here")
    if unit != "LSTM":
        raise ModelFileError(f"{path}: its recurrent unit is {unit!r}; only LSTM models can be read here")
    I, H, L = (_count(path, data, key) for key in ("input_size", "hidden_size", "num_layers"))
    if data.get("output_size", 1) != 1:
        raise ModelFileError(f"{path}: \"output_size\" is {data.get('output_size')!r}; only one output is supported")
    skip = data.get("skip", 0)
    if isinstance(skip, bool) or skip not in (0, 1):
        raise ModelFileError(f"{path}: \"skip\" is {skip!r}; only 0 and 1 (the first input added to the output) "
                             f"are supported")
    biased = bool(data.get("bias_fl", True))       # the output layer's bias (the LSTM's are always there)
    layers = []
    for layer in range(L):
        W_ih = _array(path, weights, f"rec.weight_ih_l{layer}", (4 * H, I if layer == 0 else H))
        W_hh = _array(path, weights, f"rec.weight_hh_l{layer}", (4 * H, H))
        bias = (_array(path, weights, f"rec.bias_ih_l{layer}", (4 * H,))
                + _array(path, weights, f"rec.bias_hh_l{layer}", (4 * H,)))
        layers.append({"W_ih": W_ih, "W_hh": W_hh, "bias": bias})
    head_W = _array(path, weights, "lin.weight", (1, H))
    head_b = _array(path, weights, "lin.bias", (1,)) if biased else np.zeros(1)
    config = ModelConfig(input_size=I, hidden_size=H, num_layers=L, skip=bool(skip))
    params = check_params(path, from_torch_layout(layers, head_W, head_b), config)
    notes = [f"{path}: a CoreAudioML (PyTorch) file; it names no sample rate: use it at the rate it was trained at"]
    return ModelFile(params, config, None, {"name": None, "metadata": {}}, "aidax", None, notes)


def _count(path, data: dict, key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelFileError(f"{path}: \"model_data\" \"{key}\" is {value!r}; it must be a positive whole number")
    return value


def _array(path, weights: dict, name: str, shape: tuple) -> np.ndarray:
    """state_dict[name] as float64, checked against ``shape``. Raises ModelFileError."""
    if name not in weights:
        raise ModelFileError(f"{path}: \"state_dict\" has no \"{name}\"")
    try:
        array = np.array(weights[name], dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f"{path}: \"{name}\" is not a regular array of numbers") from None
    if array.shape != shape:
        raise ModelFileError(f"{path}: \"{name}\" has shape {array.shape}, expected {shape} for the sizes in "
                             f"\"model_data\"")
    if not np.isfinite(array).all():
        raise ModelFileError(f"{path}: \"{name}\" holds NaN or infinite weights")
    return array
