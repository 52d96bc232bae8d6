"""A model from any file it can live in, and out to the plugin formats.

    ours          model.npz       (npz.py)       read
    NAM           name.nam        (nam.py)       read, write (no skip, audio input only)
    AIDA-X        name.json       (aidax.py)     read, write
    CoreAudioML   name.json       (coreaudioml.py) read (AIDA-X's trainer's PyTorch files)

The file's extension picks the format. Reading gives a ModelFile (model_file.py): our
parameter dict and config whatever the source, plus the sample rate and initial state
the file carries, so process.py and train.py --init treat every format alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..inference import model_input, process_sequential, rest_state, run, start_state
from ..knobs import model_knobs
from .aidax import CHECK_TOLERANCE, aidax_document, aidax_player_problem, check_signal, read_aidax
from .coreaudioml import is_core_audio_ml, read_core_audio_ml
from .model_file import ModelFile, ModelFileError, sample_rate_or_none
from .nam import DEFAULT_NAM_RATE, LEVEL_KEYS, NAM_BURN_IN, check_nam_expressible, nam_document, read_nam
from .npz import load_model

KINDS = {".npz": "npz", ".nam": "nam", ".json": "aidax"}
DEFAULT_CONTROL = 0.5          # the knob position of the check vectors written for a conditioned model


def read_model(path) -> ModelFile:
    """The model in ``path`` (.npz ours, .nam, AIDA-X .json). Raises ModelFileError.
    An AIDA-X file's check vectors are verified; a mismatch is an error, since the file
    would then not sound as it does in the plugin."""
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ModelFileError(f"{path}: unknown model format {path.suffix!r}: give a model.npz from train.py, a .nam "
                             f"(Neural Amp Modeler) or an AIDA-X .json file")
    if kind == "npz":
        params, config, meta = load_model(path)
        return ModelFile(params, config, sample_rate_or_none(meta.get("sample_rate")), meta, "npz")
    document = _read_json(path)
    if kind == "nam":
        return read_nam(path, document)
    if is_core_audio_ml(document):
        return read_core_audio_ml(path, document)
    model, vectors = read_aidax(path, document)
    if vectors is not None:
        error = check_vector_error(model, *vectors)
        if not error < CHECK_TOLERANCE:
            raise ModelFileError(f"{path}: the model does not reproduce the file's own output_batch from its "
                                 f"input_batch (relative error {error:.2g}): the file is damaged or uses a convention "
                                 f"this reader does not know")
        model.notes.append(f"{path}: reproduces its check vectors (relative error {error:.1e})")
    return model


def check_vector_error(model: ModelFile, input_batch: np.ndarray, output_batch: np.ndarray) -> float:
    """Relative RMS error of the model's output for input_batch (N, I) against output_batch (N,),
    from the file's initial state."""
    x = np.ascontiguousarray(input_batch, np.float32)[:, :, None]              # (N, I, 1)
    y, _ = run(model.params, model.config, x, start_state(model.config, 1, np, model.initial_state))
    y = y[:, 0].astype(np.float64)
    reference = output_batch.astype(np.float64)
    return float(np.linalg.norm(y - reference) / max(np.linalg.norm(reference), 1e-30))


def export_document(model: ModelFile, path, name: str | None = None, levels: dict | None = None) -> dict:
    """The JSON object of ``model`` in the format ``path``'s extension names (.nam or .json).
    ``levels``: a .nam's level calibration ({"input_level_dbu": ..., "output_level_dbu": ...});
    a .nam read in keeps its own. Raises ModelFileError for what the format cannot express."""
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    knobs = model_knobs(model.meta)
    facts = {"name": name or model.meta.get("name") or path.stem, "val_esr": model.meta.get("val_esr"),
             "knobs": [{"name": k.name, "min": k.low, "max": k.high} for k in knobs] if knobs else None,
             "date": model.meta.get("date")}
    given = {key: value for key, value in (levels or {}).items() if value is not None}
    if given and kind != "nam":
        raise ModelFileError("--input-level-dbu and --output-level-dbu are written into .nam files only")
    if kind == "nam":
        carried = model.meta.get("metadata") if isinstance(model.meta.get("metadata"), dict) else {}
        facts.update({key: carried.get(key) for key in LEVEL_KEYS}, **given)
        if any(model.gains_db):
            raise ModelFileError(f"sets in_gain/out_gain ({model.gains_db[0]:g} / {model.gains_db[1]:g} dB), which a .nam "
                                 f"file cannot hold: export to AIDA-X .json instead")
        check_nam_expressible(model.config)
        if not model.sample_rate:
            model.notes.append(f"the model names no sample rate: the .nam file says {DEFAULT_NAM_RATE} Hz, NAM's "
                               f"default")
        rate = model.sample_rate or DEFAULT_NAM_RATE
        initial = model.initial_state or rest_state(model.params, model.config, NAM_BURN_IN)
        return nam_document(model.params, model.config, initial, rate, facts)
    if kind == "aidax":
        if model.initial_state is not None and np.abs(np.asarray(model.initial_state)).max() > 0:
            model.notes.append("AIDA-X starts from zero state, not the initial state this model carries: the first "
                               "few milliseconds of output differ from the original's")
        problem = aidax_player_problem(model.config)
        if problem:
            model.notes.append(problem)
        x = check_signal()
        controls = (DEFAULT_CONTROL,) * (model.config.input_size - 1)
        y, _ = process_sequential(model.params, model.config, x, controls=controls)
        # input_batch: the audio alone (N,), or with its knob columns (N, I) for a conditioned model
        input_batch = x if not controls else model_input(x[:, None], model.config, controls)[:, :, 0]
        return aidax_document(model.params, model.config, model.sample_rate, facts, input_batch, y, model.gains_db)
    raise ModelFileError(f"{path}: export writes .nam (Neural Amp Modeler) or .json (AIDA-X / RTNeural) files, "
                         f"not {path.suffix or 'files without an extension'!r}")


def _read_json(path: Path):
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not a text (JSON) file") from None
    except json.JSONDecodeError as exc:
        ending = exc.doc.rstrip()
        cut = exc.pos >= len(ending) or not ending.endswith(("}", "]"))
        where = "the file may be truncated" if cut else "the file is damaged there"
        raise ModelFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                             f"{where}") from None
