"""Model and checkpoint files: NumPy .npz archives of named arrays plus one JSON string.

No pickles anywhere: every file loads with ``allow_pickle=False``. Files are written
through atomic.py, so an interrupted run never leaves a half-written model where a good
one was. (The run's checkpoint itself, what it holds and how a run comes back from it,
is lstm_core/run.py's.)

model.npz holds the parameters by name (``lstm0.W_h`` ...) and ``config.json``: the model
config, the sample rate, and what the trainer chose to record (training options, val
ESR, project version). checkpoint.npz adds the Adam state (``adam.*``), the best
parameters (``best.*``) and the run's progress in its JSON.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__
from ..model import ModelConfig, param_shapes
from .atomic import atomic_output
from .model_file import ModelFileError

JSON_KEY = "config.json"
FORMAT = "lstm-audio-effects model"


def save_npz_atomic(path, arrays: dict, meta: dict):
    """Write arrays (host or device) and a JSON-able dict to ``path`` atomically."""
    payload = {name: _host(value) for name, value in arrays.items()}
    payload[JSON_KEY] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_output(path) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, **payload)


def load_npz(path) -> tuple[dict, dict]:
    """(arrays, meta) of a file written by save_npz_atomic. Raises ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        # NumPy takes anything that is neither .npz nor .npy for a pickle, and suggests loading
        # it unsafely: not advice to pass on.
        reason = "not a NumPy .npz archive" if "pickle" in str(exc) else str(exc)
        raise ModelFileError(f"{path}: not a readable model file ({reason})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable model file ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{path}: a single NumPy array (.npy), not a model file")
    try:
        with data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable model file ({exc})") from None
    if JSON_KEY not in arrays:
        raise ModelFileError(f"{path}: not one of our model files (no {JSON_KEY} inside)")
    try:
        meta = json.loads(str(arrays.pop(JSON_KEY)))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: its {JSON_KEY} is damaged ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: its {JSON_KEY} is damaged (not an object)")
    return arrays, meta


def save_model(path, params: dict, config: ModelConfig, rate: int, extra: dict | None = None):
    """model.npz: parameters, config, sample rate and ``extra`` facts (val ESR, options)."""
    meta = {"format": FORMAT, "version": __version__, "model": config.to_dict(), "sample_rate": int(rate)}
    meta.update(extra or {})
    save_npz_atomic(path, params, meta)


def load_model(path) -> tuple[dict, ModelConfig, dict]:
    """(params as float32 host arrays, config, meta) of a model.npz. Raises ModelFileError."""
    arrays, meta = load_npz(path)
    if meta.get("kind") == "checkpoint":
        raise ModelFileError(f"{path}: a training checkpoint, not a model: use the model.npz beside it")
    if meta.get("format") != FORMAT or not isinstance(meta.get("model"), dict):
        raise ModelFileError(f"{path}: not a model file of this project")
    try:
        config = ModelConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: its model config is damaged ({exc})") from None
    return check_params(path, arrays, config), config, meta


def check_params(path, params: dict, config: ModelConfig) -> dict:
    """The parameters, verified against the config's shapes and for NaN/Inf."""
    expected = param_shapes(config)
    missing = sorted(set(expected) - set(params))
    if missing:
        raise ModelFileError(f"{path}: parameters missing: {', '.join(missing)}")
    checked = {}
    for name, shape in expected.items():
        value = params[name]
        if value.dtype.kind != "f":
            raise ModelFileError(f"{path}: {name} holds {value.dtype} values, not floating point")
        if value.shape != shape:
            raise ModelFileError(f"{path}: {name} has shape {value.shape}, the config says {shape}")
        if not np.isfinite(value).all():
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
        checked[name] = value.astype(np.float32)
    return checked


def _host(value):
    if isinstance(value, np.ndarray):
        return value
    return value.get() if hasattr(value, "get") else np.asarray(value)
