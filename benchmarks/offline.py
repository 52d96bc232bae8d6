"""Offline inference speed: x real time of process.py's two ways, against PyTorch and NAM's C++ core.

One model per H (one layer, input size 1, skip on, initialised with seed H: common.model),
or each model file given with --model, runs over --seconds of generated 44.1 kHz mono
audio, the way process.py runs a file. Measure trained models too: an initialised one
forgets its state at once and does not amplify rounding, so its chunks need one pass and
it runs in float32, where a trained amp-like model needs many passes and float64
(RESULTS.md, "Offline precision").

    default      process.py's precision (lstm_core/precision.py: float32, or float64 for a
                 model that amplifies rounding); equal blocks of at least
                 CPU.block_seconds (inference.block_length), each as CPU.parts exact
                 parallel chunks (inference.process_chunks, chunks.py) shared by one
                 process per core (split_run.SplitRun), the state carried from block to
                 block
    sequential   process.py --sequential: the recurrence one sample after the other, in
                 the same precision as the default
    PyTorch CPU  nn.LSTM + Linear + skip with the same weights (float32), one stream, block by block
                 with the state carried, under torch.no_grad() (only when torch imports)
    NAM C++      NAM's own benchmark tool, tools/benchmodel, on a .nam file of the same
                 size (skip off: .nam has none; the cost is the same), with --nam-benchmodel

Each system runs once untimed on 2 s of audio (workers, caches), then once timed over
the whole signal. "x real time" is seconds of audio per second of wall time at 44.1 kHz
(NAM's tool times 96000 samples, 2 s at its 48 kHz; its figure here is converted to
samples/s and then to 44.1 kHz). "vs sequential" is the default's difference from the
sequential output, 20 log10(||y - y_seq|| / ||y_seq||), and the largest sample
difference relative to the output's peak, in dB.

    python benchmarks/offline.py                         # H 16/32/64, 155 s (several minutes)
    python benchmarks/offline.py --seconds 20 --hidden 32
    python benchmarks/offline.py --model runs/amp-.../model.npz --model pedal.json
    python benchmarks/offline.py --nam-benchmodel ~/NeuralAmpModelerCore/build/tools/benchmodel
    python benchmarks/offline.py --write                 # also append the table to RESULTS.md

Building NAM's benchmodel, with CMake and the repository's Eigen submodule:

    git clone --recursive https://github.com/sdatkinson/NeuralAmpModelerCore
    cd NeuralAmpModelerCore && cmake -B build -DCMAKE_BUILD_TYPE=Release \\
        -DCMAKE_CXX_FLAGS="-O3 -march=native" && cmake --build build --target benchmodel -j
    # the tool is build/tools/benchmodel; it prints the milliseconds its run took

or, as on the 2-core build machine (no CMake, no git access; RESULTS.md, 2026-11-30), with
Eigen 3.4 and nlohmann-json from PyPI and one g++ line over the sources an LSTM needs,
the repository's Release flags (C++20, -Ofast, LTO) plus -march=native:

    pip install --target deps cmeel-eigen nlohmann-json
    g++ -std=c++20 -O3 -march=native -DNDEBUG -Ofast -flto -fvisibility=hidden \\
        -include lastN.h -I . -I NAM -I deps/nlohmann_json/include \\
        -I deps/nlohmann_json/include/nlohmann -I deps/cmeel.prefix/include/eigen3 \\
        tools/benchmodel.cpp NAM/dsp.cpp NAM/get_dsp.cpp NAM/lstm.cpp NAM/activations.cpp -o benchmodel

where lastN.h holds `#include <Eigen/Core>` and `namespace Eigen { namespace placeholders
{ using Eigen::lastN; } }`: the repository's Eigen has lastN under placeholders, Eigen 3.4
in Eigen itself. The ConvNet and WaveNet sources are left out, so the tool runs LSTMs only.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

from benchmarks import rerun_without_blas_overrides  # noqa: E402  (loads nothing)

if __name__ == "__main__":
    rerun_without_blas_overrides()      # before anything imports NumPy

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.common import positive_float, positive_int  # noqa: E402
from lstm_core.devices import CPU, device_settings  # noqa: E402
from lstm_core.files.formats import export_document, read_model  # noqa: E402
from lstm_core.files.model_file import ModelFile  # noqa: E402
from lstm_core.inference import block_length, process_chunks, process_sequential, start_state  # noqa: E402
from lstm_core.model import ModelConfig  # noqa: E402
from lstm_core.precision import offline_dtype  # noqa: E402
from lstm_core.split_run import SplitRun  # noqa: E402

RATE = common.RATE
NAM_SAMPLES = 96000         # what tools/benchmodel processes: (48000 / 64) * 2 buffers of 64


def signal(seconds: float) -> np.ndarray:
    """(N,) float32: a 110 Hz tone swelling at 0.3 Hz plus noise, about -12 dBFS."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    noise = np.random.default_rng(0).standard_normal(n)
    return (0.3 * np.sin(2 * np.pi * 110 * t) * np.sin(2 * np.pi * 0.3 * t) + 0.05 * noise).astype(np.float32)


def blocks(x: np.ndarray, seconds: float):
    """x (N,) cut as process.py cuts a file: equal blocks from ``seconds`` to under twice it, or
    all of x when shorter (inference.block_length)."""
    step = block_length(x.size, int(seconds * RATE))
    return [x[start : start + step] for start in range(0, x.size, step)]


def default_runner(params, config, settings, runner):
    """x (N,) -> y (N,) as process.py's default: exact chunks, block by block, in the
    parameters' float type."""
    def run(x):
        state, out = start_state(config, 1, np, None, params["out.W"].dtype), []
        for block in blocks(x, settings.block_seconds):
            y, state, _ = process_chunks(params, config, block, np, state, settings.parts, settings.overlap,
                                         runner=runner)
            out.append(y)
        return np.concatenate(out)

    return run


def sequential_runner(params, config, settings):
    def run(x):
        state, out = None, []
        for block in blocks(x, settings.block_seconds):
            y, state = process_sequential(params, config, block, np, state)
            out.append(y)
        return np.concatenate(out)

    return run


def torch_runner(torch, params, config, settings):
    """nn.LSTM with our weights, one stream, block by block, the state carried."""
    lstm, linear = common.torch_modules(torch, params, config)

    def run(x):
        state, out = None, []
        with torch.no_grad():
            for block in blocks(x, settings.block_seconds):
                piece = torch.from_numpy(block)[:, None, None]              # (T, 1, 1)
                h, state = lstm(piece, state)                               # (T, 1, H)
                out.append((linear(h)[:, 0, 0] + piece[:, 0, 0]).numpy())
        return np.concatenate(out)

    return run


def nam_real_time(benchmodel: str, H: int) -> float:
    """x real time at 44.1 kHz of NAM's tools/benchmodel on a .nam LSTM 1 x H."""
    config = ModelConfig(hidden_size=H, skip=False)
    _, params = common.model(H)
    model = ModelFile(params, config, 48000, {}, "npz")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"lstm{H}.nam"
        path.write_text(json.dumps(export_document(model, path)))
        result = subprocess.run([benchmodel, str(path)], capture_output=True, text=True, check=True)
    milliseconds = float(re.findall(r"([0-9.]+)ms", result.stdout)[-1])
    return NAM_SAMPLES / (milliseconds / 1e3) / RATE


def difference_db(y, reference) -> tuple:
    """(20 log10 of the relative 2-norm error, 20 log10 of the largest |difference| / peak);
    -inf for outputs that are equal bit for bit."""
    y, reference = y.astype(np.float64), reference.astype(np.float64)
    if np.array_equal(y, reference):
        return -np.inf, -np.inf
    tiny = 1e-300
    return (20 * np.log10(max(np.linalg.norm(y - reference), tiny) / np.linalg.norm(reference)),
            20 * np.log10(max(np.abs(y - reference).max(), tiny) / np.abs(reference).max()))


def db_text(value: float) -> str:
    return "equal" if value == -np.inf else f"{value:.0f}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Offline inference x real time: process.py's default and "
                                                 "--sequential, PyTorch, NAM's C++ core.")
    parser.add_argument("--seconds", type=positive_float, default=155.0,
                        help="seconds of generated 44.1 kHz audio (default 155)")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[16, 32, 64],
                        help="hidden sizes H (default 16 32 64)")
    parser.add_argument("--nam-benchmodel", default=None, metavar="PATH",
                        help="NAM's tools/benchmodel, built from NeuralAmpModelerCore (see this file's docstring)")
    parser.add_argument("--model", action="append", default=[], metavar="PATH",
                        help="a model file (a model.npz from train.py, .nam, AIDA-X .json; audio input only) to "
                             "measure instead of the initialised models of --hidden; give it more than once for more")
    parser.add_argument("--precision", choices=("auto", "float32", "float64"), default="auto",
                        help="the float type ours runs in, as process.py's --precision (default auto)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    parser.add_argument("--write", action="store_true",
                        help=f"append the table, with the machine and command, to {common.RESULTS.name}")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = None if args.no_torch else common.import_torch()
    settings = device_settings("cpu")
    facts = common.machine_facts(torch)
    common.print_facts(facts)
    x, warm = signal(args.seconds), signal(2.0)
    cut = blocks(x, settings.block_seconds)
    described = (f"{args.seconds:g} s of audio; equal blocks of at least {settings.block_seconds:g} s (here "
                 f"{len(cut)} x {cut[0].size / RATE:.4g} s), {settings.parts} chunks, "
                 f"{settings.overlap}-sample warm-up, {settings.processes} process(es)")
    print(f"{'measuring:':20s}{described}\n", flush=True)
    other_work = common.watch_other_work()
    header = ["model", "precision", "default (x real time)", "sequential", "default / sequential"]
    if torch is not None:
        header += ["PyTorch CPU", "default / PyTorch"]
    if args.nam_benchmodel:
        header += ["NAM C++", "default / NAM"]
    header += ["vs sequential (dB, norm)", "(dB, largest sample)"]
    rows, worst = [], -np.inf
    for label, config, params in models(args):
        H = config.hidden_size
        # process.py's precision (auto: lstm_core/precision.py); PyTorch keeps float32.
        dtype, effect = offline_dtype(params, config)
        if args.precision != "auto":
            dtype = np.dtype(args.precision).type
        precision = f"{np.dtype(dtype).name} ({effect:.0f} dB)"
        torch_params, params = params, {name: np.asarray(value, dtype) for name, value in params.items()}
        with SplitRun(params, config, settings.processes) if settings.processes > 1 else _nothing() as runner:
            calls = {"default": default_runner(params, config, settings, runner),
                     "sequential": sequential_runner(params, config, settings)}
            if torch is not None:
                calls["PyTorch CPU"] = torch_runner(torch, torch_params, config, settings)
            seconds, outputs = common.take_turns({name: (lambda run=run: run(x)) for name, run in calls.items()}, 1,
                                                 warm_ups={name: (lambda run=run: run(warm)) for name, run in
                                                           calls.items()})
        speed = {name: args.seconds / times[0] for name, times in seconds.items()}
        norm, largest = difference_db(outputs["default"], outputs["sequential"])
        worst = max(worst, norm, largest)
        row = [label, precision, f"{speed['default']:.1f}", f"{speed['sequential']:.1f}",
               f"{speed['default'] / speed['sequential']:.1f}"]
        if torch is not None:
            row += [f"{speed['PyTorch CPU']:.1f}", f"{speed['default'] / speed['PyTorch CPU']:.2f}"]
        if args.nam_benchmodel:
            nam = nam_real_time(args.nam_benchmodel, H)
            row += [f"{nam:.1f}", f"{speed['default'] / nam:.2f}"]
        rows.append(row + [db_text(norm), db_text(largest)])
        print("  ".join(f"{name}: {value}" for name, value in zip(header, rows[-1])), file=sys.stderr, flush=True)
    table = common.markdown_table(header, rows)
    table += f"\n\nLargest difference from sequential, any model: {db_text(worst)}{'' if worst == -np.inf else ' dB'}."
    note = other_work()
    if note:
        table += f"\n\n{note}"
    print(f"\n{table}")
    if args.write:
        machine = f"{facts['CPU']}, {facts['cores'].split()[0]} cores"
        common.append_section(common.RESULTS, f"Offline inference, {machine}, {facts['date']}",
                              common.command_line("offline.py", argv),
                              f"{common.facts_list(facts)}\n- measuring: {described}\n\n{table}")
        print(f"\nappended to {common.RESULTS}")
    return 0


def models(args):
    """[(label, config, parameters on the host)]: the files of --model, or the initialised
    models of --hidden. A file's initial state (a .nam file's) is left out: every system
    here starts from zeros."""
    if not args.model:
        return [(str(H), *common.model(H)) for H in args.hidden]
    found = []
    for path in args.model:
        model = read_model(path)
        if model.config.input_size != 1 or model.config.num_layers != 1:
            raise SystemExit(f"{path}: this benchmark runs one-layer, audio-only models (its PyTorch and NAM columns "
                             f"are built that way)")
        label = f"{Path(path).parent.name}/{Path(path).name}" if Path(path).name == "model.npz" else Path(path).name
        found.append((f"{label} (H {model.config.hidden_size})", model.config, model.params))
    return found


class _nothing:
    """A context manager standing for no SplitRun (one process): gives None."""

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
