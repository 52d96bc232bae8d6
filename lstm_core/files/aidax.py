"""AIDA-X / RTNeural Keras-style .json model files: read and write.

The file is one JSON object:

    {"in_shape": [null, null, I], "in_skip": 0 or 1,
     "layers": [{"type": "lstm", "activation": "", "shape": [null, null, H],
                 "weights": [W (I, G), U (H, G), b (G,)]},
                ...more lstm layers (input size H)...,
                {"type": "dense", "activation": "", "shape": [null, null, 1],
                 "weights": [W_d (H, 1), b_d (1,)]}],
     "input_batch": [...], "output_batch": [...], "metadata": {...}}

W is PyTorch's W_ih transposed, U is W_hh transposed, b the summed bias, gates in the
order i, f, g, o. With "in_skip": 1 the input sample is added to the output (our skip);
a missing in_skip means 0. "in_gain" and "out_gain" (dB, 0 when missing) are gains AIDA-X
applies around the model: the audio is multiplied by in_gain before it (the skip sees the
scaled audio too) and the output by out_gain after the skip is added; the check vectors
are the model's alone. The state starts at zero. A conditioned model has I > 1: the
audio first, then its knob values. ``input_batch`` / ``output_batch`` are a short input
and the model's output for it (computed in float32), so an implementation can check
itself: we write them on export and check them on import.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from .. import __version__
from ..model import ModelConfig
from .model_file import ModelFile, ModelFileError, finite_number, parse_date, sample_rate_or_none
from .npz import check_params
from .torch_layout import from_torch_layout, to_torch_layout

CHECK_SAMPLES = 2048           # length of the input_batch we write
CHECK_TOLERANCE = 1e-4         # relative error allowed when reproducing a file's output_batch
LSTM_ACTIVATIONS = ("", "tanh")
DENSE_ACTIVATIONS = ("", "linear")
# What the AIDA-X plugin itself plays. Its players compile a fixed list of architectures, a
# recurrent layer and a dense one, pick one by the first layer's type and size and the input
# count alone, and refuse a file that matches none ("Unable to identify a known model
# architecture!"); a file of more layers is matched to a one-layer model and played wrong.
# Read from their sources, not run: AidaDSP/AIDA-X src/model_variant.hpp (two versions:
# LSTMs of 8, 12, 16, 20, 32, 40, 64 and 80 units, one of them 24 too) and MOD devices'
# aidadsp-lv2 rt-neural-generic/src/model_variant.hpp (8 to 64, no 24 or 80); each with 1 to
# 3 inputs. A host that builds RTNeural's model at run time reads any size.
AIDAX_PLAYER_SIZES = (8, 12, 16, 20, 32, 40, 64)    # hidden sizes every one of those builds plays
AIDAX_SOME_BUILDS = (24, 80)                        # hidden sizes only some of them play
AIDAX_PLAYER_INPUTS = 3                             # the audio and up to 2 knobs


def check_signal(samples: int = CHECK_SAMPLES) -> np.ndarray:
    """A short, deterministic test input (samples,): a rising sweep with a loud attack and a
    quiet tail, so that the check vectors exercise the model's range and its memory."""
    t = np.arange(samples) / samples
    sweep = np.sin(2 * np.pi * (5 * t + 60 * t ** 2))
    envelope = 0.9 * np.exp(-3 * t) + 0.05
    return (envelope * sweep).astype(np.float32)


def aidax_document(params: dict, config: ModelConfig, sample_rate: int | None, metadata: dict,
                   input_batch: np.ndarray, output_batch: np.ndarray, gains_db=(0.0, 0.0)) -> dict:
    """The AIDA-X JSON object for our model, with its check vectors (input_batch (N, I) or
    (N,), output_batch (N,): the model alone, without the gains) as computed by the caller,
    and in_gain / out_gain when ``gains_db`` sets them."""
    layers, head_W, head_b = to_torch_layout(params, config)
    H = config.hidden_size
    entries = [{"type": "lstm", "activation": "", "shape": [None, None, H],
                "weights": [_floats(layer["W_ih"].T), _floats(layer["W_hh"].T), _floats(layer["bias"])]}
               for layer in layers]
    entries.append({"type": "dense", "activation": "", "shape": [None, None, 1],
                    "weights": [_floats(head_W.T), _floats(head_b)]})
    return {
        "in_shape": [None, None, config.input_size],
        "in_skip": int(config.skip),
        "layers": entries,
        "input_batch": _floats(input_batch),
        "output_batch": _floats(output_batch),
        "metadata": aidax_metadata(metadata, sample_rate),
        **{key: float(value) for key, value in zip(("in_gain", "out_gain"), gains_db) if value},
    }


def aidax_player_problem(config: ModelConfig) -> str | None:
    """Why the AIDA-X plugin would not play a file of this architecture, and what to train
    for it instead (one line), or None when every build of it plays it (AIDAX_PLAYER_SIZES)."""
    H = config.hidden_size
    sizes = ", ".join(map(str, AIDAX_PLAYER_SIZES[:-1])) + f" or {AIDAX_PLAYER_SIZES[-1]}"
    reasons = []
    if config.num_layers != 1:
        reasons.append(f"{config.num_layers} LSTM layers, where it plays one (train with --layers 1)")
    if H in AIDAX_SOME_BUILDS:
        reasons.append(f"{H} hidden units, which only some builds of it play (every build plays {sizes})")
    elif H not in AIDAX_PLAYER_SIZES:
        below = [size for size in AIDAX_PLAYER_SIZES if size < H][-1:]
        above = [size for size in AIDAX_PLAYER_SIZES if size > H][:1]
        nearest = " or ".join(map(str, below + above))
        reasons.append(f"{H} hidden units, where it plays {sizes} (train with --hidden {nearest})")
    if config.input_size > AIDAX_PLAYER_INPUTS:
        reasons.append(f"{config.input_size - 1} knob inputs, where it plays at most {AIDAX_PLAYER_INPUTS - 1} "
                       f"(capture at most {AIDAX_PLAYER_INPUTS - 1} knobs for it)")
    if not reasons:
        return None
    only_some = len(reasons) == 1 and H in AIDAX_SOME_BUILDS     # the size is all, and some builds play it
    who = "some builds of the AIDA-X plugin" if only_some else "the AIDA-X plugin"
    return (f"{who} cannot play this file: it has {'; '.join(reasons)}. process.py reads it, as does any host that "
            f"builds RTNeural's model at run time")


def aidax_metadata(facts: dict, sample_rate: int | None) -> dict:
    when = parse_date(facts.get("date")) or datetime.now()
    metadata = {"name": facts.get("name"), "samplerate": int(sample_rate) if sample_rate else None,
                "esr": finite_number(facts.get("val_esr")),
                "date": when.isoformat(timespec="seconds"),
                "source": f"lstm-audio-effects {__version__}",
                # A conditioned model's knobs, in input order after the audio: the plugin's 0..1 is min..max.
                "knobs": facts.get("knobs") or None}
    return {k: v for k, v in metadata.items() if v is not None}


def read_aidax(path, document) -> tuple[ModelFile, tuple | None]:
    """(ModelFile, check vectors (input_batch (N, I), output_batch (N,)) or None) from the
    parsed JSON of an AIDA-X file. Raises ModelFileError."""
    if not isinstance(document, dict) or not isinstance(document.get("layers"), list):
        raise ModelFileError(f"{path}: not an AIDA-X/RTNeural model (no \"layers\" list)")
    inputs = _in_size(path, document.get("in_shape"))
    skip = document.get("in_skip", 0)
    if isinstance(skip, bool) or skip not in (0, 1):
        raise ModelFileError(f"{path}: \"in_skip\" is {skip!r}; only 0 and 1 are defined")
    gains = tuple(_gain_db(path, document, key) for key in ("in_gain", "out_gain"))
    entries = document["layers"]
    if not entries:
        raise ModelFileError(f"{path}: \"layers\" is empty")
    for index, entry in enumerate(entries):
        kind = entry.get("type") if isinstance(entry, dict) else None
        wanted = "dense" if index == len(entries) - 1 else "lstm"
        if kind != wanted:
            found = f"a {str(kind).upper()} layer" if kind else "a layer with no type"
            place = "last" if wanted == "dense" else f"number {index}"
            raise ModelFileError(f"{path}: layer {place} is {found}; only models of LSTM layers followed by one "
                                 f"dense output layer can be read here")
    lstm_entries, dense = entries[:-1], entries[-1]
    if not lstm_entries:
        raise ModelFileError(f"{path}: no LSTM layer before the dense layer")
    H = _hidden_size(path, lstm_entries)
    config = ModelConfig(input_size=inputs, hidden_size=H, num_layers=len(lstm_entries), skip=bool(skip))
    layers = []
    for index, entry in enumerate(lstm_entries):
        if entry.get("activation", "") not in LSTM_ACTIVATIONS:
            raise ModelFileError(f"{path}: LSTM layer {index} has activation {entry['activation']!r}; only the "
                                 f"standard tanh LSTM is supported")
        W, U, b = _weights(path, entry, index, [(inputs if index == 0 else H, 4 * H), (H, 4 * H), (4 * H,)])
        layers.append({"W_ih": W.T, "W_hh": U.T, "bias": b})
    if dense.get("activation", "") not in DENSE_ACTIVATIONS:
        raise ModelFileError(f"{path}: the dense layer has activation {dense['activation']!r}; only a linear output "
                             f"layer is supported")
    W_d, b_d = _weights(path, dense, len(lstm_entries), [(H, 1), (1,)])
    params = check_params(path, from_torch_layout(layers, W_d.T, b_d), config)
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    rate = sample_rate_or_none(metadata.get("samplerate", metadata.get("sample_rate", document.get("samplerate"))))
    date = parse_date(metadata.get("date"))
    meta = {"name": metadata.get("name") if isinstance(metadata.get("name"), str) else None,
            "val_esr": finite_number(metadata.get("esr")), "date": date.isoformat() if date else None,
            "metadata": metadata}
    notes = [] if rate else [f"{path}: names no sample rate (metadata \"samplerate\"): use it at the rate it was "
                             f"trained at"]
    if any(gains):
        notes.append(f"{path}: in_gain {gains[0]:g} dB and out_gain {gains[1]:g} dB: the audio is scaled before the "
                     f"model and its output after, as AIDA-X does")
    return ModelFile(params, config, rate, meta, "aidax", None, notes, gains), _check_vectors(path, document, inputs)


def _gain_db(path, document: dict, key: str) -> float:
    """AIDA-X's in_gain or out_gain in dB (0 when absent or null). Raises ModelFileError."""
    value = document.get(key)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ModelFileError(f"{path}: \"{key}\" is {value!r}; it must be a gain in dB (a finite number)")
    return float(value)


def _in_size(path, in_shape) -> int:
    if not isinstance(in_shape, list) or not in_shape:
        raise ModelFileError(f"{path}: no \"in_shape\" (expected [null, null, inputs])")
    size = in_shape[-1]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ModelFileError(f"{path}: \"in_shape\" {in_shape} does not end in a number of inputs")
    return size


def _hidden_size(path, lstm_entries) -> int:
    sizes = []
    for index, entry in enumerate(lstm_entries):
        shape = entry.get("shape")
        if not isinstance(shape, list) or not shape or isinstance(shape[-1], bool) or not isinstance(shape[-1], int) \
                or shape[-1] < 1:
            raise ModelFileError(f"{path}: LSTM layer {index} has no valid \"shape\" (expected [null, null, H])")
        sizes.append(shape[-1])
    if len(set(sizes)) > 1:
        raise ModelFileError(f"{path}: LSTM layers of different sizes {sizes}; this project's models use one hidden "
                             f"size for every layer")
    return sizes[0]


def _weights(path, entry, index: int, shapes: list) -> list:
    """The layer's weight arrays (float64), checked against ``shapes``."""
    weights = entry.get("weights")
    if not isinstance(weights, list) or len(weights) != len(shapes):
        raise ModelFileError(f"{path}: layer {index} ({entry.get('type')}) should hold {len(shapes)} weight arrays, "
                             f"holds {len(weights) if isinstance(weights, list) else 'none'}")
    arrays = []
    for number, (value, shape) in enumerate(zip(weights, shapes)):
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ModelFileError(f"{path}: layer {index} ({entry.get('type')}) weight array {number} is not a "
                                 f"regular array of numbers") from None
        if array.shape != shape:
            raise ModelFileError(f"{path}: layer {index} ({entry.get('type')}) weight array {number} has shape "
                                 f"{array.shape}, expected {shape}: wrong weight count for its layer sizes")
        if not np.isfinite(array).all():
            raise ModelFileError(f"{path}: layer {index} ({entry.get('type')}) holds NaN or infinite weights")
        arrays.append(array)
    return arrays


def _check_vectors(path, document, inputs: int):
    """(input_batch (N, I) float32, output_batch (N,) float32), or None when the file has none."""
    if "input_batch" not in document or "output_batch" not in document:
        return None
    try:
        x = np.array(document["input_batch"], dtype=np.float32).reshape(-1, inputs)
        y = np.array(document["output_batch"], dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise ModelFileError(f"{path}: \"input_batch\"/\"output_batch\" are not arrays of numbers for a model with "
                             f"{inputs} input(s)") from None
    if y.size == 0:
        return None                     # empty vectors check nothing
    if x.shape[0] != y.size:
        raise ModelFileError(f"{path}: \"input_batch\" has {x.shape[0]} steps and \"output_batch\" {y.size}")
    return x, y


def _floats(array) -> list:
    """Nested lists of the float32 values (exact as JSON doubles, so they load back bit for bit)."""
    return np.asarray(array, np.float32).astype(np.float64).tolist()
