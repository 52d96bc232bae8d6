"""Apply a trained model to an audio file of any length.

    python process.py model.npz guitar_di.wav guitar_amped.wav
    python process.py amp.nam guitar_di.wav guitar_amped.wav      # a Neural Amp Modeler LSTM
    python process.py pedal.json di.wav out.wav --knob 0.7        # an AIDA-X model, knob at 0.7
    python process.py runs/pedal-.../model.npz di.wav out.wav --knob drive=7 --knob tone=3   # trained with --captures

The file is read and written in equal blocks (at least 2 minutes each on the CPU, 5 minutes
on the GPU, or the whole file when shorter), so memory does not grow with its length. By
default each block runs as parallel chunks, corrected until each starts where the one
before it ends (lstm_core/chunks.py): fast, and equal to --sequential, the sample-by-sample
recurrence, to rounding (see README). A model that amplifies float32 rounding runs in
float64 (lstm_core/precision.py; --precision). Each channel of a multi-channel file is
processed as its own stream. A model from another tool starts each stream from the state
its file carries (a .nam file's initial state; zeros otherwise).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io.files import output_problem
from lstm_core.files.atomic import atomic_output
from lstm_core.backend import BackendError, get_xp, is_gpu, to_device
from lstm_core.files.model_file import ModelFileError
from lstm_core.devices import DeviceSettings, device_settings
from lstm_core.inference import block_length, process_chunks, process_sequential, start_state
from lstm_core.knobs import knob_inputs, model_knobs
from lstm_core.precision import LIMIT_DB, offline_dtype
from lstm_core.split_run import SplitRun
from lstm_core.files.formats import read_model
from command_line import ArgumentParser, fail


def parse_args(argv):
    p = ArgumentParser(description="Apply a trained model (model.npz, .nam or AIDA-X .json) to an audio file.")
    p.add_argument("model", help="a model.npz written by train.py, a Neural Amp Modeler LSTM (.nam) or an AIDA-X / "
                                 "RTNeural LSTM (.json)")
    p.add_argument("input", help="the audio to process (any format soundfile reads)")
    p.add_argument("output", help="where to write the result (format from the extension: .wav, .flac, ...)")
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="auto",
                   help="cpu (NumPy), gpu (CuPy; an error without one), auto (default)")
    p.add_argument("--sequential", action="store_true",
                   help="the exact sample-by-sample recurrence (slower) instead of parallel chunks")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE|VALUE",
                   help="for a conditioned model (inputs besides the audio, such as a gain knob): a knob's setting. "
                        "A model trained here with --captures takes each knob by name in its own units (--knob gain=7, "
                        "within the range it was trained on); an AIDA-X file takes each input by position, as is "
                        "(--knob 0.7, usually 0 to 1); give one per knob")
    p.add_argument("--extrapolate", action="store_true",
                   help="allow knob settings outside the range the model was trained on")
    p.add_argument("--precision", choices=("auto", "float32", "float64"), default="auto",
                   help="the float type the model runs in. auto (default): float32, or float64 for a model that "
                        "amplifies float32 rounding (tried on a probe signal first; lstm_core/precision.py), so that "
                        "both ways of processing give the same output to rounding. On a GPU without fast float64 (most "
                        "consumer cards) float32 is much faster")
    return p.parse_args(argv)


def output_subtype(info, output: Path) -> tuple[str | None, str | None]:
    """(format, subtype) for the output: the input's subtype where the output format takes
    it, 16-bit for 8-bit input (too coarse for the model's output), else the default."""
    fmt = {".wav": "WAV", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF", ".ogg": "OGG"}.get(output.suffix.lower())
    if fmt is None:
        raise ValueError(f"{output}: unknown output format {output.suffix!r}: use .wav, .flac, .aiff or .ogg")
    subtype = info.subtype
    if subtype in ("PCM_U8", "PCM_S8"):
        subtype = "PCM_16"
    if not sf.check_format(fmt, subtype):
        subtype = sf.default_subtype(fmt)
    return fmt, subtype


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    source, destination = Path(args.input), Path(args.output)
    try:
        xp = get_xp(args.device)
        model = read_model(args.model)
        config = model.config
        for note in model.notes:
            print(f"note: {note}")
        if not source.is_file():
            fail(f"{source}: no such file")
        problem = output_problem(destination, args.force, source)
        if problem:
            fail(problem)
        try:
            info = sf.info(str(source))
        except Exception as exc:
            fail(f"{source}: cannot be read as audio ({exc})")
        fmt, subtype = output_subtype(info, destination)
        knobs = model_knobs(model.meta) if model.kind == "npz" else None     # other formats: inputs by position
        controls = knob_inputs(knobs, config.input_size - 1, args.knob, args.extrapolate, args.model)
        rate = model.sample_rate
        if rate and rate != info.samplerate:
            print(f"warning: the model was trained at {rate} Hz and {source} is {info.samplerate} Hz: the effect "
                  f"will sound different; resample the input to {rate} Hz for the trained sound", file=sys.stderr)
        dtype = choose_precision(args.precision, model, controls)
        params = {k: to_device(np.asarray(v, dtype), xp) for k, v in model.params.items()}
        device = device_settings("gpu" if is_gpu(xp) else "cpu")
        seconds, clipped = process_file(params, config, xp, device, source, destination, info, fmt, subtype,
                                        args.sequential, model.initial_state, controls, model.gains)
    except (ModelFileError, BackendError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:                       # an unwritable folder, a full disk
        fail(f"{exc.filename or destination}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        print(f"\ninterrupted: {destination} was not written (a file already there is untouched)", file=sys.stderr)
        return 130
    duration = info.frames / info.samplerate
    mode = "sequential" if args.sequential else "parallel chunks"
    print(f"{destination}: {duration:.1f} s of audio in {seconds:.2f} s ({duration / max(seconds, 1e-9):.0f}x real "
          f"time, {mode}, {'GPU' if is_gpu(xp) else 'CPU'}; {subtype} at {info.samplerate} Hz)")
    if clipped:
        print(f"note: {clipped} samples beyond full scale were clipped by the {subtype} format")
    return 0


def choose_precision(choice: str, model, controls):
    """The float type to run ``model`` in: ``choice``, or for "auto" precision.py's
    (saying so when it is float64)."""
    if choice != "auto":
        return np.dtype(choice).type
    dtype, effect = offline_dtype(model.params, model.config, model.initial_state, controls)
    if dtype is np.float64:
        moved = (f"by {effect:.1f} dB (more than {LIMIT_DB:.0f} dB)" if np.isfinite(effect)
                 else "to infinity (it overflows in float32)")
        print(f"note: float32 rounding moves this model's output {moved} on a probe signal: it runs in float64, "
              f"slower, so that both ways of processing give the same output (--precision float32 for speed)")
    return dtype


def process_file(params, config, xp, device: DeviceSettings, source: Path, destination: Path, info, fmt, subtype,
                 sequential: bool, initial=None, controls=(), gains=(1.0, 1.0)):
    """Stream source -> destination block by block (``device``'s blocks, chunks, warm-up
    and processes); returns (seconds, clipped samples). ``initial``: the state (h, c), each
    (L, H), streams start from; ``controls``: knob values."""
    nominal = max(1, int(device.block_seconds * info.samplerate))
    # Equal blocks need the length; a header that understates it must not make them tiny.
    block = max(nominal, block_length(info.frames, nominal))
    started, clipped = time.perf_counter(), 0
    integer = subtype.startswith("PCM")
    # On the CPU the chunks' columns are shared by one process per core (split_run.py).
    split = not sequential and not is_gpu(xp) and device.processes > 1
    with atomic_output(destination) as temporary, \
            (SplitRun(params, config, device.processes) if split else contextlib.nullcontext()) as runner:
        with sf.SoundFile(str(source)) as reader, \
                sf.SoundFile(temporary, "w", info.samplerate, info.channels, subtype, format=fmt) as writer:
            state = None
            channel_states = [start_state(config, 1, xp, initial, params["out.W"].dtype) for _ in range(info.channels)]
            while True:
                x = reader.read(block, dtype="float32", always_2d=True)     # (n, C)
                if x.shape[0] == 0:
                    break
                if not np.isfinite(x).all():
                    raise ValueError(f"{source}: holds NaN or infinite samples")
                if gains[0] != 1.0:
                    x = (x * gains[0]).astype(np.float32)          # AIDA-X's in_gain: before the model and its skip
                if sequential:
                    y, state = process_sequential(params, config, x, xp, state, initial, controls, device.gpu_loop)
                else:
                    y = np.empty_like(x)
                    for channel in range(x.shape[1]):          # each channel's exact state carried to its next block
                        y[:, channel], channel_states[channel], _ = process_chunks(
                            params, config, x[:, channel], xp, channel_states[channel], device.parts, device.overlap,
                            controls, device.gpu_loop, runner)
                if integer:
                    clipped += int((np.abs(y) > 1.0).sum())
                if gains[1] != 1.0:
                    y = y * gains[1]                                 # AIDA-X's out_gain: after the skip
                writer.write(y)
    return time.perf_counter() - started, clipped


if __name__ == "__main__":
    sys.exit(main())
