"""Export a trained model to the files real-time plugins load.

    python export.py runs/amp-.../model.npz amp.nam     # Neural Amp Modeler (train with --no-skip)
    python export.py runs/amp-.../model.npz amp.json    # AIDA-X / RTNeural (Keras-style JSON)

MODEL may also be a .nam or AIDA-X .json file, to convert between the two. The format
comes from OUTPUT's extension; what a format cannot express (a skip connection in .nam)
stops with a message saying what to do instead.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from audio_io.files import output_problem
from lstm_core.files.atomic import atomic_output
from lstm_core.files.model_file import ModelFileError
from lstm_core.files.formats import export_document, read_model
from command_line import ArgumentParser, fail

FORMATS = {".nam": "Neural Amp Modeler", ".json": "AIDA-X / RTNeural"}


def parse_args(argv):
    p = ArgumentParser(description="Export a model to a plugin format: .nam (Neural Amp Modeler) or .json "
                                   "(AIDA-X / RTNeural).")
    p.add_argument("model", help="a model.npz written by train.py (or a .nam / AIDA-X .json file)")
    p.add_argument("output", help="the file to write: NAME.nam or NAME.json")
    p.add_argument("--name", help="the model's name in the file's metadata (default: OUTPUT's name)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--input-level-dbu", type=float, metavar="DBU",
                   help=".nam only: the analog level (dBu) that digital full scale was at the capture's input, so that "
                        "NAM plays it at its real loudness (NAM's level calibration)")
    p.add_argument("--output-level-dbu", type=float, metavar="DBU",
                   help=".nam only: the same at the capture's output")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    source, destination = Path(args.model), Path(args.output)
    if destination.suffix.lower() not in FORMATS:
        fail(f"{destination}: the extension picks the format: .nam (Neural Amp Modeler) or .json (AIDA-X / RTNeural)")
    problem = output_problem(destination, args.force, source, "the model file itself")
    if problem:
        fail(problem)
    try:
        model = read_model(source)
        try:
            levels = {"input_level_dbu": args.input_level_dbu, "output_level_dbu": args.output_level_dbu}
            for flag, value in levels.items():
                if value is not None and not math.isfinite(value):
                    fail(f"--{flag.replace('_', '-')} {value}: give a finite number of dBu")
            document = export_document(model, destination, args.name, levels)
        except ModelFileError as exc:
            raise ModelFileError(f"{source}: {exc}") from None
        with atomic_output(destination) as temporary, open(temporary, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
    except ModelFileError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or destination}: {exc.strerror or exc}")
    for note in model.notes:
        print(f"note: {note}")
    config = model.config
    print(f"{destination}: {FORMATS[destination.suffix.lower()]} model, LSTM H={config.hidden_size} x "
          f"{config.num_layers} layer(s), skip {'on' if config.skip else 'off'}, "
          f"{model.sample_rate or 'unknown'} Hz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
