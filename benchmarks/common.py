"""What the benchmarks share: the systems compared, timing, the machine's facts, RESULTS.md.

The systems, in the order they take turns (SYSTEMS; --systems names them by option):

    option           table name          device  peer
    numpy            NumPy               cpu     PyTorch CPU    train_window, one process
    numpy-parallel   NumPy xN            cpu     PyTorch CPU    ParallelTrainer, one process a core
    torch-cpu        PyTorch CPU         cpu     -              nn.LSTM + nn.Linear + Adam, every core
    cupy             CuPy                gpu     PyTorch CUDA   train_window with lstm_core's default GPU loop
    cupy-step        CuPy step loop      gpu     CuPy           ...with each other loop (cuda_kernels.LOOPS)
    torch-cuda       PyTorch CUDA        gpu     -              cuDNN in strict FP32 ("ieee")
    torch-cuda-tf32  PyTorch CUDA TF32   gpu     -              cuDNN with TF32 tensor cores

A system of ours is compared with its peer: its speed divided by the peer's, its output
checked against the peer's. Each system makes a training step (forward, backward through
the window, one Adam update, then a wait for the device) and, all but NumPy xN and
PyTorch CUDA TF32, an offline runner (process.py's parallel chunks for its device).

Shapes: ours x (T, 1, B), target (T, B) (feature-major, lstm_core/lstm.py); PyTorch
x (T, B, 1), target (T, B).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks import REMOVED_MARK
from lstm_core.adam import AdamState
from lstm_core.backend import get_xp, gpu_unavailable_reason, is_gpu, to_device
from lstm_core.cuda_kernels import DEFAULT_LOOP, LOOPS
from lstm_core.devices import CPU, GPU, DeviceSettings, available_cores
from lstm_core.files.torch_layout import to_torch_layout
from lstm_core.inference import STEPS_PER_CALL, join_chunks, process_parallel, split_into_chunks
from lstm_core.losses import SILENCE_POWER
from lstm_core.model import ModelConfig, init_params
from lstm_core.parallel import ParallelTrainer
from lstm_core.training import TrainConfig, slice_loss, train_window
from lstm_core.workspace import Workspace

RESULTS = Path(__file__).with_name("RESULTS.md")
RATE = 44100                            # of every generated signal
LOSS = TrainConfig()                    # the loss settings every system uses (the defaults)
LR = 5e-3
CORES = available_cores()
PARALLEL = f"NumPy x{CORES}"
OTHERS_LIMIT = 2.0      # core-seconds of other processes' work in a run above which it is flagged


# --- the systems -----------------------------------------------------------------------------

@dataclass(frozen=True)
class System:
    option: str                 # its name on the command line
    name: str                   # its column heading
    device: str                 # "cpu" or "gpu": whose FLOP ceiling and offline chunks apply
    peer: str | None            # ours: the system it is compared with; PyTorch's: None
    step: Callable              # (torch, H, x (T, 1, B), target (T, B)) -> step(), fresh parameters
    runner: Callable | None     # (torch, H) -> run(x (N,)) -> y (N,), offline; None: not measured
    absent: Callable            # (torch) -> why it cannot run here, "" when it can
    gpu_loop: str | None = None  # ours on the GPU: its loop (cuda_kernels.LOOPS)

    @property
    def ours(self) -> bool:
        return self.peer is not None


def model(H: int, xp=np):
    """(config, parameters on xp's device): one layer of H units, skip on, seeded with H."""
    config = ModelConfig(hidden_size=H)
    return config, {name: to_device(value, xp) for name, value in init_params(config, np.random.default_rng(H)).items()}


def synchronizer(xp):
    """A function that waits for xp's device (nothing to wait for on the CPU)."""
    return xp.cuda.Device().synchronize if is_gpu(xp) else (lambda: None)


def ours_step(settings: DeviceSettings, torch, H: int, x: np.ndarray, target: np.ndarray):
    """One lstm_core training step on settings' device (with its GPU loop), in this process."""
    xp = get_xp(settings.device)
    config, params = model(H, xp)
    adam = AdamState()
    train = TrainConfig(warmup=0, tbptt=x.shape[0], lr=LR)
    x, target = to_device(x, xp), to_device(target, xp)            # (T, 1, B), (T, B)
    synchronize = synchronizer(xp)
    workspace = Workspace()                                         # as train.py does

    def step():
        train_window(params, config, adam, x, target, train, workspace, settings.gpu_loop)
        synchronize()

    return step


def ours_parallel_step(torch, H: int, x: np.ndarray, target: np.ndarray):
    """One lstm_core training step with the batch split over one process per core."""
    config, params = model(H)
    adam = AdamState()
    train = TrainConfig(warmup=0, tbptt=x.shape[0], lr=LR)
    trainer = ParallelTrainer(config, CORES, x.shape[0], x.shape[2])
    WORKER_PIDS[:] = trainer.worker_pids

    def step():
        trainer.train_window(params, adam, x, target, train)

    def close():
        workers_cpu_seconds(os.sysconf("SC_CLK_TCK"))       # read their CPU time before they exit
        trainer.close()

    step.close = close
    return step


def ours_runner(settings: DeviceSettings, torch, H: int):
    """x (N,) -> y (N,) through process_parallel with process.py's chunking for settings'
    device (and, on the GPU, its loop)."""
    xp = get_xp(settings.device)
    config, params = model(H, xp)

    def run(x: np.ndarray) -> np.ndarray:
        return process_parallel(params, config, x, xp, settings.parts, settings.overlap, gpu_loop=settings.gpu_loop)

    return run


def torch_esr_loss(torch, y, target):
    """lstm_core.losses.esr_loss in torch: pre-emphasised ESR + dc_weight * DC. y, target (T, B)."""
    a = LOSS.pre_emphasis
    err = y - target
    err_f = err[1:] - a * err[:-1]                                  # (T - 1, B)
    target_f = target[1:] - a * target[:-1]
    esr = (err_f * err_f).sum() / (target_f * target_f).sum().clamp(min=SILENCE_POWER * target_f.numel())
    mean_err = err.mean(dim=0)                                      # (B,)
    dc = (mean_err * mean_err).sum() / (target.shape[1] * (target * target).mean().clamp(min=SILENCE_POWER))
    return esr + LOSS.dc_weight * dc


def torch_step(device: str, torch, H: int, x: np.ndarray, target: np.ndarray, tf32: bool = False):
    """One PyTorch training step on device ("cpu" or "cuda"): the same model, loss and Adam.
    On CUDA, cuDNN's RNN precision (``tf32``, else IEEE FP32) is set before every step: the
    flag is PyTorch's own global, shared by both CUDA systems."""
    cuda = device == "cuda"
    if cuda:
        set_cudnn_rnn_tf32(torch, tf32)
    torch.manual_seed(H)
    lstm = torch.nn.LSTM(1, H).to(device)
    linear = torch.nn.Linear(H, 1).to(device)
    optimizer = torch.optim.Adam([*lstm.parameters(), *linear.parameters()], lr=LR)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).to(device)   # (T, B, 1)
    target = torch.from_numpy(target).to(device)                                  # (T, B)

    def step():
        if cuda:
            set_cudnn_rnn_tf32(torch, tf32)
        optimizer.zero_grad(set_to_none=True)
        h, _ = lstm(x)                                  # (T, B, H), from a zero state
        y = linear(h)[..., 0] + x[..., 0]               # (T, B), with the skip
        torch_esr_loss(torch, y, target).backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()

    return step


def torch_modules(torch, params: dict, config: ModelConfig):
    """(nn.LSTM, nn.Linear) on the CPU holding our one-layer model's weights (PyTorch's
    gate order, both biases folded into bias_ih)."""
    H = config.hidden_size
    layers, head_W, head_b = to_torch_layout(params, config)
    lstm, linear = torch.nn.LSTM(1, H), torch.nn.Linear(H, 1)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(layers[0]["W_ih"]))
        lstm.weight_hh_l0.copy_(torch.from_numpy(layers[0]["W_hh"]))
        lstm.bias_ih_l0.copy_(torch.from_numpy(layers[0]["bias"]))
        lstm.bias_hh_l0.zero_()
        linear.weight.copy_(torch.from_numpy(head_W))
        linear.bias.copy_(torch.from_numpy(head_b))
    return lstm, linear


def torch_runner(device: str, torch, H: int):
    """x (N,) -> y (N,): nn.LSTM + Linear + skip with our weights (the same as ours_runner)
    over the same chunked window, STEPS_PER_CALL steps a call, the state carried, under
    torch.no_grad(); on CUDA in strict FP32."""
    config, params = model(H)
    lstm, linear = torch_modules(torch, params, config)
    lstm, linear = lstm.to(device), linear.to(device)
    settings = GPU if device == "cuda" else CPU

    def run(x: np.ndarray) -> np.ndarray:
        if device == "cuda":
            set_cudnn_rnn_tf32(torch, False)
        window, plan = split_into_chunks(x, settings.parts, settings.overlap)        # (steps, P)
        with torch.no_grad():
            x_window = torch.from_numpy(window).to(device)
            y_window = torch.empty_like(x_window)
            state = None
            for start in range(0, x_window.shape[0], STEPS_PER_CALL):
                piece = x_window[start : start + STEPS_PER_CALL, :, None]  # (t, P, 1)
                h, state = lstm(piece, state)                               # (t, P, H)
                y_window[start : start + STEPS_PER_CALL] = linear(h)[..., 0] + piece[..., 0]
            return join_chunks(y_window.cpu().numpy(), plan)

    return run


def set_cudnn_rnn_tf32(torch, allowed: bool):
    """Let cuDNN's RNNs use TF32 tensor cores for float32, or not (IEEE FP32)."""
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):      # PyTorch >= 2.9; never mix with the old flag
        rnn.fp32_precision = "tf32" if allowed else "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = allowed


def cudnn_rnn_default(torch) -> str:
    """PyTorch's own setting for cuDNN RNNs in float32, read before any system changes it."""
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        return f"torch.backends.cudnn.rnn.fp32_precision = {rnn.fp32_precision!r}"
    return f"torch.backends.cudnn.allow_tf32 = {torch.backends.cudnn.allow_tf32}"


def import_torch():
    """torch with every core for its CPU ops, or None when it is not installed. Exits unless
    torch_esr_loss equals the loss train_window uses, value and gradient."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count())
    rng = np.random.default_rng(0)
    y, target = rng.standard_normal((2, 64, 3))                     # (T, B) each, float64
    loss, dy = slice_loss(y, target, LOSS)
    y_torch = torch.tensor(y, requires_grad=True)
    loss_torch = torch_esr_loss(torch, y_torch, torch.tensor(target))
    loss_torch.backward()
    if not (np.isclose(loss, loss_torch.item(), rtol=1e-10) and np.allclose(dy, y_torch.grad.numpy(), rtol=1e-8)):
        sys.exit("the PyTorch loss differs from lstm_core's: the comparison would be unfair")
    return torch


def needs_torch(torch) -> str:
    return "" if torch is not None else "PyTorch is not installed, or --no-torch"


def needs_torch_cuda(torch) -> str:
    return needs_torch(torch) or ("" if torch.cuda.is_available() else "PyTorch sees no CUDA device")


def cupy_system(loop: str) -> System:
    """CuPy with lstm_core's GPU loop ``loop``: "CuPy" for the default one."""
    default = loop == DEFAULT_LOOP
    settings = replace(GPU, gpu_loop=loop)
    return System("cupy" if default else f"cupy-{loop}", "CuPy" if default else f"CuPy {loop} loop", "gpu",
                  peer="PyTorch CUDA" if default else "CuPy", step=partial(ours_step, settings),
                  runner=partial(ours_runner, settings), absent=lambda torch: gpu_unavailable_reason(), gpu_loop=loop)


SYSTEMS = (
    System("numpy", "NumPy", "cpu", peer="PyTorch CPU", step=partial(ours_step, CPU),
           runner=partial(ours_runner, CPU), absent=lambda torch: ""),
    System("numpy-parallel", PARALLEL, "cpu", peer="PyTorch CPU", step=ours_parallel_step, runner=None,
           absent=lambda torch: "" if CORES > 1 else "one core only"),
    System("torch-cpu", "PyTorch CPU", "cpu", peer=None, step=partial(torch_step, "cpu"),
           runner=partial(torch_runner, "cpu"), absent=needs_torch),
    *(cupy_system(loop) for loop in sorted(LOOPS, key=lambda loop: loop != DEFAULT_LOOP)),
    System("torch-cuda", "PyTorch CUDA", "gpu", peer=None, step=partial(torch_step, "cuda"),
           runner=partial(torch_runner, "cuda"), absent=needs_torch_cuda),
    System("torch-cuda-tf32", "PyTorch CUDA TF32", "gpu", peer=None, step=partial(torch_step, "cuda", tf32=True),
           runner=None, absent=needs_torch_cuda),
)
SYSTEM = {system.name: system for system in SYSTEMS}        # by table name


# --- timing ----------------------------------------------------------------------------------

def take_turns(calls: dict, rounds: int, budget: float | None = None, warm_ups: dict | None = None):
    """({name: [seconds of each timed call]}, {name: what its last call returned}).

    Each of ``warm_ups`` (default: the calls themselves) runs once untimed first (kernel
    compilation, first allocations, caches). Then ``rounds`` rounds, the calls taking turns,
    so that a drift in the machine's speed hits all of them alike; a call that has spent
    ``budget`` seconds timed sits out the remaining rounds (it always gets one)."""
    for call in (warm_ups or calls).values():
        call()
    seconds, returned = {name: [] for name in calls}, {}
    for round_ in range(rounds):
        for name, call in calls.items():
            if round_ > 0 and budget is not None and sum(seconds[name]) >= budget:
                continue
            start = time.perf_counter()
            returned[name] = call()
            seconds[name].append(time.perf_counter() - start)
    return seconds, returned


def others_cpu_seconds():
    """Core-seconds the machine has spent busy outside this process so far (Linux), or None.

    The difference over a run says whether other work shared the cores: on a machine of
    a few cores, even one busy process skews the timings (threads wait for its core)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = ticks
    clock = os.sysconf("SC_CLK_TCK")
    machine = (user + nice + system + irq + softirq) / clock
    own = os.times()
    return machine - own.user - own.system - workers_cpu_seconds(clock)


WORKER_PIDS: list = []      # our own worker processes: their CPU time is ours, not "other work"
WORKERS_SEEN: dict = {}     # pid -> CPU seconds last read (a finished worker keeps its last reading)


def workers_cpu_seconds(clock: int) -> float:
    """CPU seconds used by the ParallelTrainer workers started so far (Linux /proc)."""
    for pid in WORKER_PIDS:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            WORKERS_SEEN[pid] = (int(fields[11]) + int(fields[12])) / clock      # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return sum(WORKERS_SEEN.values())


def watch_other_work():
    """A function that, called after measuring, says how busy other processes were since
    now: "Other processes: ..." (flagged above OTHERS_LIMIT), or "" without /proc/stat."""
    started, before = time.perf_counter(), others_cpu_seconds()

    def note() -> str:
        if before is None:
            return ""
        others = others_cpu_seconds() - before
        return (f"Other processes: {others:.1f} core-s busy during the {time.perf_counter() - started:.0f} s "
                f"of measuring{' (the timings are skewed)' if others > OTHERS_LIMIT else ''}.")

    return note


def k(rate: float) -> str:
    """samples/s as thousands, three significant figures or more."""
    return f"{rate / 1e3:,.0f}" if rate >= 1e5 else f"{rate / 1e3:.3g}"


# --- the machine -----------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name(torch) -> str:
    """The first GPU's name, or "" when none is usable."""
    if not gpu_unavailable_reason():
        return get_xp("gpu").cuda.runtime.getDeviceProperties(0)["name"].decode()
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return ""


def thread_pools() -> str:
    """The BLAS and OpenMP libraries loaded, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    pools = [
        f"{info['internal_api']} ({info.get('architecture') or info['prefix']}, {info['num_threads']} threads)"
        for info in threadpool_info()
    ]
    return ", ".join(pools) or "none found"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine_facts(torch) -> dict:
    """The facts printed above the tables and written with them, by name."""
    removed = os.environ.get(REMOVED_MARK)
    cores = f"{os.cpu_count()}"
    if hasattr(os, "sched_getaffinity"):
        cores += f" ({len(os.sched_getaffinity(0))} available to this process)"
    cupy_reason = gpu_unavailable_reason()
    facts = {
        "date": utc_now(),
        "load average": "{:.2f} {:.2f} {:.2f} (1, 5, 15 min; other work skews the timings)".format(*os.getloadavg()),
        "CPU": cpu_model(),
        "cores": cores,
        "GPU": gpu_name(torch) or "none",
        "Python": platform.python_version(),
        "NumPy": np.__version__,
        "PyTorch": f"{torch.__version__} ({torch.get_num_threads()} CPU threads)" if torch else "not installed",
        "CuPy": get_xp("gpu").__version__ if not cupy_reason else f"not used: {cupy_reason}",
        "thread pools": thread_pools(),
        "OpenBLAS overrides": f"removed for this run ({removed})" if removed else "none set",
        "ours": f"NumPy = one process; {PARALLEL} = ParallelTrainer, the batch shared by {CORES} processes "
                f"(one BLAS thread each)",
    }
    if torch is not None and torch.cuda.is_available():
        facts["cuDNN RNN float32"] = (f"PyTorch's default here: {cudnn_rnn_default(torch)}; 'PyTorch CUDA' runs "
                                      f"IEEE FP32, 'PyTorch CUDA TF32' TF32")
    return facts


def print_facts(facts: dict):
    for name, value in facts.items():
        print(f"{name + ':':20s}{value}")


# --- what is written -------------------------------------------------------------------------

def markdown_table(header: list, rows: list, text_columns: int = 0) -> str:
    """A Markdown table of strings: the first ``text_columns`` columns left-aligned, the
    others (numbers) right-aligned."""
    rule = "|" + "---|" * text_columns + "---:|" * (len(header) - text_columns)
    return "\n".join(["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(row) + " |" for row in rows)])


def command_line(script: str, argv=None) -> str:
    """How this run was started, as RESULTS.md quotes it: python benchmarks/SCRIPT ARGS."""
    return shlex.join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])


def append_section(path: Path, heading: str, command: str, body: str):
    """Append "## heading", the command and the body to ``path`` (created if missing)."""
    text = "" if path.exists() else "# Benchmark results\n"
    text += f"\n## {heading}\n\n`{command}`\n\n{body}\n"
    with path.open("a") as file:
        file.write(text)


def facts_list(facts: dict) -> str:
    return "\n".join(f"- {name}: {value}" for name, value in facts.items())


def pyplot():
    """matplotlib.pyplot drawing into files (Agg), or None, with a notice, where it is missing."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- the command lines -----------------------------------------------------------------------

def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value
