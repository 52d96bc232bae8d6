"""CPU against GPU in one run: training throughput, offline inference speed, time to quality.

The systems are common.SYSTEMS, whichever are present (--systems picks): NumPy, NumPy xN,
PyTorch CPU, CuPy with lstm_core's default GPU loop (the window loop) and "CuPy step loop"
with the other (gpu_loop passed as an argument, so one run says which wins), PyTorch CUDA (cuDNN, strict
FP32) and PyTorch CUDA TF32. Three parts, each a Markdown table (with --write, appended to
RESULTS.md under a heading naming the GPU, the CPU, the date and the command):

    throughput  samples/s of bench_step.py's training step at H in 16 32 64 128 and B in
                40 512 1024 4096 (H = 32, B = 1024: the issue's target), each with the
                fraction of its device's FLOP ceiling: forward + backward cost about 24 H^2
                flops a sample (8 H^2 for W_h h forward, 16 H^2 for the two backward
                products; the input, the gates and the read-out are ignored), so the ceiling
                is peak FLOP/s / (24 H^2). Large batches get shorter windows (T * B <=
                --window-samples), and a system stops timing after --budget seconds (at
                least one step), so the slow CPU cells do not eat the run; the notes say
                where. --write also plots samples/s against B, one panel per H.
    inference   x real time of a 3-minute 44.1 kHz mono signal (generated in memory) through
                lstm_core.inference.process_parallel with process.py's settings
                (lstm_core.devices: 128 chunks on the CPU, 4096 on the GPU, 256 samples of
                warm-up each), and through nn.LSTM + Linear with the same weights over the
                same chunks; the largest differences between PyTorch's output and ours, and
                between the GPU loops, check that all run the same model.
    quality     time_to_quality.run_ours on one generated pair, the CPU and the GPU each
                with train.py's settings for it (lstm_core.devices.device_settings; both
                from the forget-gate bias +1, unraced, so that the devices alone differ; the
                probe after each batch, lstm_core/probe.py, runs on the CPU only), the GPU
                once for each --gpu-batch: val ESR after every epoch against training
                seconds (validation off the clock), the best within each budget, and when
                each reached the CPU's best.

No audio file is read or written (soundfile is not needed), so it runs on a GPU machine
from a plain checkout:

    python benchmarks/cpu_vs_gpu.py --quick                 # smoke run, a few seconds
    python benchmarks/cpu_vs_gpu.py                         # everything (too long for a lent machine: gpu_session.sh lease)
    python benchmarks/cpu_vs_gpu.py --part throughput       # one part: throughput, inference, quality
    python benchmarks/cpu_vs_gpu.py --write                 # append to RESULTS.md, plot throughput_vs_batch.png

Peak FLOP/s: the GPU's from a table of datasheet figures keyed by its name (FP32 without
tensor cores), the CPU's estimated as cores x clock x 32 (AVX2: two 8-wide FMA units, 2
flops each, per cycle; AVX-512 machines may reach twice that); --cpu-peak-tflops and
--gpu-peak-tflops replace either.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from a checkout, no install needed

from audio_io.demo import music_like  # noqa: E402
from benchmarks import common, rerun_without_blas_overrides, time_to_quality  # noqa: E402
from benchmarks.bench_step import measure_grid  # noqa: E402
from benchmarks.common import CORES, PARALLEL, RATE, SYSTEM, SYSTEMS, k, positive_float, positive_int  # noqa: E402
from lstm_core.cuda_kernels import DEFAULT_LOOP  # noqa: E402
from lstm_core.devices import CPU, GPU, device_settings  # noqa: E402
from lstm_core.inference import STEPS_PER_CALL  # noqa: E402
from lstm_core.training import TrainConfig  # noqa: E402

PLOT = Path(__file__).with_name("throughput_vs_batch.png")
FLOPS_PER_SAMPLE = 24         # x H^2: forward + backward of the recurrent products (module docstring)
CPU_FLOPS_PER_CYCLE = 32      # per core, FP32: two AVX2 FMA units x 8 lanes x 2 flops

# FP32 peak (no tensor cores) in TFLOP/s by GPU name; the first entry contained in the name wins.
# H100 SXM 67, H100 PCIe 51: NVIDIA's H100 datasheet, as tabulated at
#   https://archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html (and 66.9 FP32 "VFMA" at
#   https://glennklockwood.com/garden/processors/h100).
# H200 (SXM) 67: the same GH100 silicon with more memory, compute unchanged
#   (https://glennklockwood.com/garden/processors/h100, https://yobitel.com/knowledge-base/nvidia-h200).
# The NVL boards run at other clocks and the sources found disagree: give --gpu-peak-tflops there.
# CUDA names: "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100 PCIe", "NVIDIA H200".
GPU_PEAK_TFLOPS = (("H100 PCIe", 51.0), ("NVL", None), ("H100", 67.0), ("H200", 67.0))

PARTS = ("throughput", "inference", "quality")
CUPY_PEERS = ("NumPy", PARALLEL, "PyTorch CUDA", "PyTorch CUDA TF32")   # CuPy's speed over: our CPU paths, cuDNN
TARGET_H, TARGET_B = 32, 1024            # the training target: CuPy >= 20x NumPy, >= PyTorch cuDNN
TARGET_REAL_TIME = 1000                  # the inference target on the GPU, x real time


# --- peaks and ceilings --------------------------------------------------------------------

def cpu_clock_ghz() -> tuple[float | None, str]:
    """(GHz, where it was read): the highest clock the kernel reports, else the current one."""
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz / 1e6, "cpufreq maximum"
    except (OSError, ValueError):
        pass
    try:
        mhz = [float(line.split(":", 1)[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("cpu MHz")]
    except (OSError, ValueError):
        mhz = []
    if mhz:
        return max(mhz) / 1e3, "/proc/cpuinfo 'cpu MHz'"
    return None, "unknown"


def cpu_peak(override_tflops: float | None) -> tuple[float | None, str]:
    """(FP32 FLOP/s of every core this process may use, how it was found)."""
    if override_tflops is not None:
        return override_tflops * 1e12, f"{override_tflops:g} TFLOP/s (--cpu-peak-tflops)"
    ghz, source = cpu_clock_ghz()
    if ghz is None:
        return None, "unknown (no clock found): give --cpu-peak-tflops"
    peak = CORES * ghz * 1e9 * CPU_FLOPS_PER_CYCLE
    return peak, (f"{peak / 1e12:.2f} TFLOP/s, an estimate: {CORES} cores x {ghz:.2f} GHz ({source}) x "
                  f"{CPU_FLOPS_PER_CYCLE} FP32 flops/cycle (AVX2 FMA)")


def gpu_peak(name: str, override_tflops: float | None) -> tuple[float | None, str]:
    """(FP32 FLOP/s without tensor cores, how it was found) for the GPU called ``name``."""
    if override_tflops is not None:
        return override_tflops * 1e12, f"{override_tflops:g} TFLOP/s (--gpu-peak-tflops)"
    if not name:
        return None, "no GPU"
    for key, tflops in GPU_PEAK_TFLOPS:
        if key in name:
            if tflops is None:
                break
            return tflops * 1e12, f"{tflops:g} TFLOP/s FP32 without tensor cores (datasheet, {key})"
    return None, f"unknown for {name!r}: give --gpu-peak-tflops"


def on_gpu(name: str) -> bool:
    return SYSTEM[name].device == "gpu"


def ceiling(peak: float | None, H: int) -> float | None:
    """Samples/s at which the recurrent products alone would keep the device at its peak."""
    return None if peak is None else peak / (FLOPS_PER_SAMPLE * H * H)


# --- the parts -----------------------------------------------------------------------------

def window_steps(args, B: int) -> int:
    """T for batch B: --steps, shortened so that T * B <= --window-samples (at least 16)."""
    return max(16, min(args.steps, args.window_samples // B))


def compared_pairs(names: list) -> list:
    """(system, reference) pairs whose outputs should agree: each of ours and its peer, the
    reference being ours (PyTorch against NumPy and CuPy, each other GPU loop against CuPy)."""
    pairs = [(name, SYSTEM[name].peer) for name in names if SYSTEM[name].runner and SYSTEM[name].peer in names]
    return [(a, b) if SYSTEM[b].ours else (b, a) for a, b in pairs]


def run_inference(args, torch, names: list) -> list:
    """[(H, {name: [seconds of each timed run]}, {(name, reference): largest |y - y_reference|})]
    for every H: a warm-up on 2 s each, then the systems take turns (common.take_turns)."""
    audio = music_like(args.audio_seconds, RATE, 3)             # (N,) float32
    warm = audio[: 2 * RATE]
    results = []
    for H in args.hidden:
        started = time.perf_counter()
        runners = {name: SYSTEM[name].runner(torch, H) for name in names}
        seconds, outputs = common.take_turns({name: partial(run, audio) for name, run in runners.items()},
                                             args.repeats, args.budget,
                                             {name: partial(run, warm) for name, run in runners.items()})
        differences = {(a, b): float(abs(outputs[a] - outputs[b]).max()) for a, b in compared_pairs(names)}
        results.append((H, seconds, differences))
        summary = ", ".join(f"{name} {args.audio_seconds / statistics.median(s):.0f}x" for name, s in seconds.items())
        print(f"H={H:<3d} {summary}  ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    return results


def run_quality(args, use_gpu: bool) -> dict:
    """{device: (settings text, [(training seconds, val ESR)])}: the CPU, and the GPU if used,
    each with train.py's settings for it (validating, on the GPU, in process.py's chunks);
    the GPU once for each --gpu-batch."""
    x_train, y_train, x_val, y_val = time_to_quality.material(args.effect, seconds=args.quality_seconds)
    settings = {"CPU": device_settings("cpu")}
    if use_gpu:
        for batch in dict.fromkeys(args.gpu_batch or [GPU.batch]):     # each batch once
            label = "GPU" if batch == GPU.batch else f"GPU, batch {batch}"
            settings[label] = device_settings("gpu", validation_parts=GPU.parts, batch=batch)
    runs = {}
    for label, device in settings.items():
        backend = f"CuPy ({device.gpu_loop} loop)" if device.device == "gpu" else f"NumPy x{device.processes}"
        started = time.perf_counter()
        points = time_to_quality.run_ours(x_train, y_train, x_val, y_val, max(args.budgets), device, TrainConfig())
        runs[label] = (f"{backend}, batch={device.batch}, segment={device.segment}", points)
        print(f"quality {label}: {len(points)} epochs, best val ESR {min(v for _, v in points):.3g} "
              f"({time.perf_counter() - started:.0f} s with validation)", file=sys.stderr, flush=True)
    return runs


# --- tables --------------------------------------------------------------------------------

def millions(rate: float) -> str:
    return f"{rate / 1e6:,.0f}" if rate >= 1e8 else f"{rate / 1e6:.3g}"


def percent(value: float) -> str:
    return f"{value:.2g} %" if value < 10 else f"{value:.0f} %"


def throughput_table(results: list, names: list, peaks: dict) -> str:
    """One row per (H, B): each system's median k samples/s (% of its device's ceiling),
    the ceilings, and ratios: CuPy (the faster of its loops) against NumPy, NumPy xN and
    PyTorch CUDA, NumPy against PyTorch CPU, and the other GPU loops against the default."""
    cupy_names = [name for name in names if SYSTEM[name].gpu_loop]
    best = "CuPy" if len(cupy_names) < 2 else "CuPy (faster loop)"
    ratios = [(best, peer) for peer in CUPY_PEERS if cupy_names and peer in names]
    ratios += [(name, "CuPy") for name in cupy_names if name != "CuPy" and "CuPy" in names]
    ratios += [("NumPy", "PyTorch CPU")] if "NumPy" in names and "PyTorch CPU" in names else []
    devices = [device for device in ("CPU", "GPU") if any(on_gpu(name) == (device == "GPU") for name in names)]
    header = ["H", "B", "T"] + [f"{name} k/s (% ceiling)" for name in names]
    header += [f"{device} ceiling M/s" for device in devices] + [f"{ours} / {peer}" for ours, peer in ratios]
    rows = []
    for H, B, T, rates in results:
        medians = {name: statistics.median(rates[name]) for name in names}
        if cupy_names:
            medians[best] = max(medians[name] for name in cupy_names)
        row = [str(H), str(B), str(T)]
        for name in names:
            limit = ceiling(peaks["GPU" if on_gpu(name) else "CPU"], H)
            row.append(k(medians[name]) + (f" ({percent(100 * medians[name] / limit)})" if limit else ""))
        for device in devices:
            limit = ceiling(peaks[device], H)
            row.append(millions(limit) if limit else "-")
        rows.append(row + [ratio(medians[ours] / medians[peer]) for ours, peer in ratios])
    return common.markdown_table(header, rows)


def throughput_notes(args, results: list, names: list) -> str:
    short = [f"{name} {len(rates[name])} at H={H} B={B}" for H, B, T, rates in results for name in names
             if len(rates[name]) < args.repeats]
    notes = (f"Median of up to {args.repeats} timed steps after one warm-up, the systems taking turns; "
             f"T = {args.steps} time steps a window, shortened where T * B would pass {args.window_samples}; "
             f"a system stops timing after {args.budget:g} s of timed steps.")
    if short:
        notes += " Fewer timed steps (that cap): " + "; ".join(short) + "."
    return notes


def target_lines(args, throughput: list, inference: list) -> list:
    """The issue's targets, as far as this run measured them, for each GPU loop."""
    lines = []
    target = next((rates for H, B, T, rates in throughput if (H, B) == (TARGET_H, TARGET_B)), None)
    cupy_names = [name for name in (target or {}) if SYSTEM[name].gpu_loop]
    for name in cupy_names:
        cupy = statistics.median(target[name])
        for peer in CUPY_PEERS:
            if peer in target:
                goal = "target >= 20 against the 2-core machine" if peer.startswith("NumPy") else "target >= 1"
                lines.append(f"{name} / {peer} at H={TARGET_H} B={TARGET_B}: "
                             f"{cupy / statistics.median(target[peer]):.2f} ({goal}; {peer} on this machine)")
        if args.numpy_reference:
            lines.append(f"{name} / NumPy of the reference machine ({k(args.numpy_reference)} k samples/s, "
                         f"--numpy-reference) at H={TARGET_H} B={TARGET_B}: {cupy / args.numpy_reference:.1f} "
                         f"(target >= 20)")
    if throughput and not cupy_names:
        lines.append(f"training target (H={TARGET_H}, B={TARGET_B}, CuPy): not measured in this run")
    for H, seconds, _ in inference:
        for name in seconds:
            if SYSTEM[name].gpu_loop:
                speed = args.audio_seconds / statistics.median(seconds[name])
                lines.append(f"{name} inference at H={H}: {speed:,.0f}x real time (target >= {TARGET_REAL_TIME})")
    return lines


def ratio(value: float) -> str:
    """Two decimals, or two significant digits below 0.1 (NumPy against a GPU can be
    0.003, which two decimals would print as 0.00)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def times_real_time(speed: float) -> str:
    """'1,324x', '12x', '0.31x': a slow run under load is not '0x'."""
    return f"{speed:,.0f}x" if speed >= 10 else f"{speed:.2g}x"


def inference_table(args, results: list, names: list) -> str:
    """One row per H: x real time of each system, then the largest output differences."""
    pairs = compared_pairs(names)
    header = ["H"] + [f"{name} ({(GPU if on_gpu(name) else CPU).parts} chunks)" for name in names]
    header += [f"max abs {a} - {b}" for a, b in pairs]
    rows = [[str(H)] + [times_real_time(args.audio_seconds / statistics.median(seconds[name])) for name in names]
            + [f"{differences[pair]:.1e}" for pair in pairs] for H, seconds, differences in results]
    return common.markdown_table(header, rows)


def first_reached(points: list, value: float) -> float | None:
    """The training seconds at which the val ESR first got to ``value`` or below."""
    return next((seconds for seconds, esr in points if esr <= value), None)


def quality_table(args, runs: dict) -> str:
    horizon = max(args.budgets)
    cpu_best = time_to_quality.best_within(runs["CPU"][1], horizon)
    header = ["device", "settings"] + [f"best {b:g} s" for b in args.budgets]
    header += ["epochs", f"seconds to {cpu_best:.3g} (the CPU's best in {horizon:g} s)"]
    rows = []
    for label, (settings, points) in runs.items():
        reached = first_reached(points, cpu_best)
        row = [label, settings] + [f"{time_to_quality.best_within(points, b):.3g}" for b in args.budgets]
        rows.append(row + [str(len(points)), f"{reached:.1f}" if reached is not None else "-"])
    return common.markdown_table(header, rows, text_columns=2)


def quality_points(runs: dict) -> str:
    """Every (training seconds, val ESR) point, one line per device."""
    return "\n".join(f"- {label}: " + ", ".join(f"{s:.1f} s {v:.3g}" for s, v in points)
                     for label, (_, points) in runs.items())


def plot_throughput(results: list, names: list, peaks: dict, path: Path, title: str = "") -> bool:
    """samples/s against B (log-log), one panel per H, one line per system; dotted: ceilings."""
    plt = common.pyplot()
    if plt is None:
        return False
    from matplotlib.ticker import NullLocator

    hidden = list(dict.fromkeys(H for H, *_ in results))
    columns = min(2, len(hidden))
    rows_ = -(-len(hidden) // columns)
    figure, axes = plt.subplots(rows_, columns, figsize=(5.2 * columns, 3.9 * rows_), squeeze=False, sharey=True)
    for axis in axes.flat[len(hidden):]:
        axis.set_visible(False)
    for axis, H in zip(axes.flat, hidden):
        rows = [(B, rates) for h, B, T, rates in results if h == H]
        batches = [B for B, _ in rows]
        for name in names:
            axis.plot(batches, [statistics.median(rates[name]) for _, rates in rows], marker="o", label=name,
                      linestyle="--" if on_gpu(name) else "-")
        for device, peak in peaks.items():
            if peak is not None and any(on_gpu(name) == (device == "GPU") for name in names):
                axis.axhline(ceiling(peak, H), linestyle=":", color="gray")
                axis.annotate(f"{device} ceiling", (batches[0], ceiling(peak, H)), fontsize=7, va="bottom")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(batches, [str(B) for B in batches])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_title(f"H = {H}")
        axis.set_xlabel("batch B (segments a step)")
        axis.grid(True, which="both", alpha=0.3)
    for row in axes:
        row[0].set_ylabel("training samples/s")
    axes[0][0].legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# --- the command line ----------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Training samples/s, inference speed and time to quality on every "
                                            "backend present: NumPy, CuPy, PyTorch CPU and CUDA.")
    p.add_argument("--part", nargs="+", choices=PARTS, default=list(PARTS),
                   help="which parts to run (default all three)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run in seconds: H 8, B 8 and 40, T 64, one timed step or run, 3 s of audio, "
                        "a 2 s quality budget on 8 s of material (options given explicitly still win)")
    p.add_argument("--systems", nargs="+", choices=[system.option for system in SYSTEMS],
                   help="backends to run (default: every one present); one that is absent is an error")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even where it is installed")
    g = p.add_argument_group("throughput")
    g.add_argument("--hidden", type=positive_int, nargs="+", help="hidden sizes H (default 16 32 64 128)")
    g.add_argument("--batch", type=positive_int, nargs="+", help="batch sizes B (default 40 512 1024 4096)")
    g.add_argument("--steps", type=positive_int, help="time steps T of a training window (default 1024)")
    g.add_argument("--window-samples", type=positive_int,
                   help="largest T * B of a training window: bigger batches get shorter windows (default 262144)")
    g.add_argument("--repeats", type=positive_int, help="timed steps (inference: runs) after one warm-up (default 5)")
    g.add_argument("--budget", type=positive_float,
                   help="seconds of timed steps (or runs) after which a system stops timing a configuration, "
                        "after at least one (default 3)")
    g.add_argument("--cpu-peak-tflops", type=positive_float, help="the CPU's FP32 peak, instead of the estimate")
    g.add_argument("--gpu-peak-tflops", type=positive_float, help="the GPU's FP32 peak, instead of the table's")
    g.add_argument("--numpy-reference", type=positive_float, metavar="SAMPLES_PER_S",
                   help=f"our NumPy samples/s at H={TARGET_H} B={TARGET_B} on the reference (2-core) machine, "
                        f"for the target ratio CuPy / NumPy")
    g = p.add_argument_group("inference")
    g.add_argument("--audio-seconds", type=positive_float, help="length of the generated signal (default 180)")
    g = p.add_argument_group("quality")
    g.add_argument("--effect", choices=list(time_to_quality.EFFECTS), default="overdrive",
                   help="the effect that makes the pair (default overdrive, the demo pedal)")
    g.add_argument("--budgets", type=positive_float, nargs="+",
                   help="training-time budgets in seconds; the largest is each device's run (default 15 30 60)")
    g.add_argument("--gpu-batch", type=positive_int, nargs="+",
                   help=f"the GPU's batch sizes to compare, one run each (default {GPU.batch}, train.py's)")
    g.add_argument("--quality-seconds", type=positive_float,
                   help="seconds of generated material, the last 20 %% validating (default 60)")
    g = p.add_argument_group("output")
    g.add_argument("--write", action="store_true", help="append the tables to --results and plot to --plot")
    g.add_argument("--results", type=Path, default=common.RESULTS,
                   help=f"where --write appends (default {common.RESULTS})")
    g.add_argument("--plot", type=Path, default=PLOT, help=f"where --write saves the plot (default {PLOT})")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "hidden": [8] if quick else [16, 32, 64, 128],
        "batch": [8, 40] if quick else [40, 512, TARGET_B, 4096],
        "steps": 64 if quick else 1024,
        "window_samples": 262144,
        "repeats": 1 if quick else 5,
        "budget": 3.0,
        "audio_seconds": 3.0 if quick else 180.0,
        "budgets": [2.0] if quick else [15.0, 30.0, 60.0],
        "quality_seconds": 8.0 if quick else 60.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = None if args.no_torch else common.import_torch()
    by_option = {system.option: system for system in SYSTEMS}
    wanted = args.systems or [system.option for system in SYSTEMS if not system.absent(torch)]
    missing = [option for option in wanted if by_option[option].absent(torch)]
    if missing:
        sys.exit("not present on this machine: " + ", ".join(f"{option} ({by_option[option].absent(torch)})"
                                                             for option in missing))
    names = [system.name for system in SYSTEMS if system.option in wanted]

    facts = common.machine_facts(torch)
    peaks = {}
    peaks["CPU"], facts["CPU peak"] = cpu_peak(args.cpu_peak_tflops)
    gpu_name = facts["GPU"] if facts["GPU"] != "none" else ""
    peaks["GPU"], facts["GPU peak"] = gpu_peak(gpu_name, args.gpu_peak_tflops)
    loops = [SYSTEM[name] for name in names if SYSTEM[name].gpu_loop]
    if loops:
        facts["GPU loops"] = (", ".join(f"{system.name} = gpu_loop {system.gpu_loop!r}" for system in loops)
                              + f" (lstm_core's default: {DEFAULT_LOOP!r})")
    facts["systems"] = ", ".join(names)
    common.print_facts(facts)
    print(flush=True)

    sections, timings, throughput, inference = [], [], [], []
    if "throughput" in args.part:
        started, other_work = time.perf_counter(), common.watch_other_work()
        throughput = measure_grid([SYSTEM[name] for name in names], torch, args.hidden, args.batch,
                                  partial(window_steps, args), args.repeats, args.budget)
        table = throughput_table(throughput, names, peaks)
        notes = " ".join(filter(None, [throughput_notes(args, throughput, names), other_work()]))
        sections.append(("Training throughput (k samples/s, % of the FLOP ceiling 24 H^2 flops a sample)",
                         f"{table}\n\n{notes}"))
        timings.append(f"throughput {time.perf_counter() - started:.0f} s")
    if "inference" in args.part:
        started = time.perf_counter()
        inference_names = [name for name in names if SYSTEM[name].runner]
        inference = run_inference(args, torch, inference_names)
        table = inference_table(args, inference, inference_names)
        notes = (f"x real time for {args.audio_seconds:g} s of generated 44.1 kHz mono audio, {CPU.overlap} samples "
                 f"of warm-up a chunk, median of up to {args.repeats} runs after a warm-up on 2 s "
                 f"(the same --budget cap); ours: lstm_core.inference.process_parallel; PyTorch: nn.LSTM + Linear "
                 f"with the same weights over the same chunks, no_grad, {STEPS_PER_CALL} steps a call. "
                 f"The last columns: the largest difference between PyTorch's output and ours, and between the GPU "
                 f"loops (the same weights, the same input).")
        sections.append(("Offline inference (x real time)", f"{table}\n\n{notes}"))
        timings.append(f"inference {time.perf_counter() - started:.0f} s")
    targets = target_lines(args, throughput, inference)
    if targets:
        sections.append(("The issue's targets", "\n".join(f"- {line}" for line in targets)))
    if "quality" in args.part:
        started = time.perf_counter()
        runs = run_quality(args, any(on_gpu(name) for name in names))
        notes = (f"{args.quality_seconds:g} s of generated music-like audio at {RATE} Hz through the "
                 f"{args.effect} effect ({time_to_quality.EFFECTS[args.effect][0]}), the last 20 % validating; "
                 f"H = 32; best val ESR within each training-time budget (validation off the clock).")
        sections.append(("Time to quality (val ESR against training seconds)",
                         f"{quality_table(args, runs)}\n\n{notes}\n\nEvery epoch (training seconds, val ESR):\n\n"
                         f"{quality_points(runs)}"))
        timings.append(f"quality {time.perf_counter() - started:.0f} s")

    for title, body in sections:
        print(f"\n{title}\n\n{body}")
    print(f"\ntime taken: {', '.join(timings)}")
    if args.write:
        machine = f"{facts['GPU']} GPU, {facts['CPU']} ({facts['cores'].split()[0]} cores)"
        text = common.facts_list(facts) + "".join(f"\n\n### {title}\n\n{body}" for title, body in sections)
        common.append_section(args.results, f"CPU vs GPU: {machine}, {facts['date']}",
                              common.command_line("cpu_vs_gpu.py", argv), text)
        print(f"appended to {args.results}")
        title = f"training samples/s: {facts['GPU']} GPU, {facts['CPU']} ({CORES} cores), {facts['date']}"
        if throughput and plot_throughput(throughput, names, peaks, args.plot, title):
            print(f"plot in {args.plot}")
    return 0


if __name__ == "__main__":
    rerun_without_blas_overrides()      # a fresh process without OpenBLAS's overrides (see bench_step.py)
    sys.exit(main())
