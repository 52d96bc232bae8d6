"""Training-step speed: samples per second of forward + backward + Adam, ours against PyTorch.

One training step is one window of T = 1024 time steps of B parallel segments (T * B
samples) through a one-layer LSTM (input size 1, H units, skip on), the pre-emphasised
ESR + DC loss (a = 0.95, DC weight 1: TrainConfig's defaults), backpropagation through
the whole window (warm-up 0, tbptt = T) and one Adam update:

    ours      lstm_core.training.train_window: NumPy on the CPU, CuPy where a GPU is usable;
              and lstm_core.parallel.ParallelTrainer: the batch shared by one process per
              core (what train.py uses on the CPU)
    PyTorch   nn.LSTM(1, H) + nn.Linear(H, 1) + skip, the same loss, torch.optim.Adam:
              on the CPU (all cores), and on CUDA (cuDNN) where available

Shapes: ours x (T, 1, B), target (T, B) (feature-major, see lstm_core/lstm.py);
PyTorch x (T, B, 1), target (T, B).

Each configuration (H in 16, 32, 64; B in 40, 512) runs every system once to warm up,
then --repeats times, the systems taking turns (ours, PyTorch, ours, PyTorch, ...) so
that a drift in the machine's speed hits all of them alike. The table gives the median
samples/s, the spread (max - min, as % of the median) and the ratio ours / PyTorch.

    python benchmarks/bench_step.py              # the full run (about a minute on 2 cores)
    python benchmarks/bench_step.py --quick      # smoke run: T = 128, 2 repeats
    python benchmarks/bench_step.py --hidden 32 --batch 512 --repeats 9
    python benchmarks/bench_step.py --write      # also append the table to benchmarks/RESULTS.md

OpenBLAS: some machines set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which slow NumPy's
small matmuls; a user's machine does not. So the script first re-runs itself with both
removed from its own environment (OpenBLAS reads them once, when NumPy loads it).
"""

import os
import sys

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REMOVED_MARK = "BENCH_STEP_REMOVED"     # tells the re-run process what was removed


def rerun_without_blas_overrides():
    """Replace this process by a fresh run of itself without BLAS_OVERRIDES (same argv)."""
    found = [name for name in BLAS_OVERRIDES if name in os.environ]
    if not found:
        return
    env = {key: value for key, value in os.environ.items() if key not in BLAS_OVERRIDES}
    env[REMOVED_MARK] = " ".join(f"{name}={os.environ[name]}" for name in found)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


if __name__ == "__main__":
    rerun_without_blas_overrides()      # before anything imports NumPy

import argparse  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

from lstm_core.adam import AdamState  # noqa: E402
from lstm_core.backend import get_xp, gpu_unavailable_reason, is_gpu, to_device  # noqa: E402
from lstm_core.losses import SILENCE_POWER  # noqa: E402
from lstm_core.model import ModelConfig, init_params  # noqa: E402
from lstm_core.parallel import ParallelTrainer, available_cores  # noqa: E402
from lstm_core.training import TrainConfig, slice_loss, train_window  # noqa: E402
from lstm_core.workspace import Workspace  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
LOSS = TrainConfig()                    # the loss settings both systems use (the defaults)
LR = 5e-3
CORES = available_cores()
PARALLEL = f"NumPy x{CORES}"
PAIRS = (("NumPy", "PyTorch CPU"), (PARALLEL, "PyTorch CPU"), ("CuPy", "PyTorch CUDA"))   # (ours, peer) ratios
WORKER_PIDS: list = []      # our own worker processes: their CPU time is ours, not "other work"
OTHERS_LIMIT = 2.0      # core-seconds of other processes' work in a run above which it is flagged


# --- the systems: each gives a step() that runs one synchronised training step ---------

@dataclass(frozen=True)
class System:
    name: str                   # the table's column heading
    make_step: Callable         # (H, x (T, 1, B), target (T, B)) -> step(), fresh parameters


def ours_step(xp, H: int, x: np.ndarray, target: np.ndarray):
    """One lstm_core training step on the array module xp (numpy or cupy)."""
    config = ModelConfig(hidden_size=H)
    host_params = init_params(config, np.random.default_rng(H))
    params = {name: to_device(value, xp) for name, value in host_params.items()}
    adam = AdamState()
    train = TrainConfig(warmup=0, tbptt=x.shape[0], lr=LR)
    x, target = to_device(x, xp), to_device(target, xp)            # (T, 1, B), (T, B)
    synchronize = xp.cuda.Device().synchronize if is_gpu(xp) else (lambda: None)
    workspace = Workspace()                                         # as train.py does

    def step():
        train_window(params, config, adam, x, target, train, workspace)
        synchronize()

    return step


def ours_parallel_step(H: int, x: np.ndarray, target: np.ndarray):
    """One lstm_core training step with the batch split over one process per core."""
    config = ModelConfig(hidden_size=H)
    params = init_params(config, np.random.default_rng(H))
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


def torch_step(torch, device: str, H: int, x: np.ndarray, target: np.ndarray):
    """One PyTorch training step on device ("cpu" or "cuda"): the same model, loss and Adam."""
    torch.manual_seed(H)
    lstm = torch.nn.LSTM(1, H).to(device)
    linear = torch.nn.Linear(H, 1).to(device)
    optimizer = torch.optim.Adam([*lstm.parameters(), *linear.parameters()], lr=LR)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).to(device)   # (T, B, 1)
    target = torch.from_numpy(target).to(device)                                  # (T, B)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step():
        optimizer.zero_grad(set_to_none=True)
        h, _ = lstm(x)                                  # (T, B, H), from a zero state
        y = linear(h)[..., 0] + x[..., 0]               # (T, B), with the skip
        torch_esr_loss(torch, y, target).backward()
        optimizer.step()
        synchronize()

    return step


def import_torch():
    """torch with every core for its CPU ops, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count())
    return torch


def check_torch_loss(torch):
    """Exit unless torch_esr_loss equals the loss train_window uses, value and gradient."""
    rng = np.random.default_rng(0)
    y, target = rng.standard_normal((2, 64, 3))                     # (T, B) each, float64
    loss, dy = slice_loss(y, target, LOSS)
    y_torch = torch.tensor(y, requires_grad=True)
    loss_torch = torch_esr_loss(torch, y_torch, torch.tensor(target))
    loss_torch.backward()
    if not (np.isclose(loss, loss_torch.item(), rtol=1e-10) and np.allclose(dy, y_torch.grad.numpy(), rtol=1e-8)):
        sys.exit("the PyTorch loss differs from lstm_core's: the comparison would be unfair")


def available_systems(torch) -> list:
    """The systems this machine runs, in the order they take turns."""
    systems = [System("NumPy", partial(ours_step, np))]
    if CORES > 1:
        systems.append(System(PARALLEL, ours_parallel_step))
    if torch is not None:
        systems.append(System("PyTorch CPU", partial(torch_step, torch, "cpu")))
    if not gpu_unavailable_reason():
        systems.append(System("CuPy", partial(ours_step, get_xp("gpu"))))
    if torch is not None and torch.cuda.is_available():
        systems.append(System("PyTorch CUDA", partial(torch_step, torch, "cuda")))
    return systems


# --- measuring ---------------------------------------------------------------------------

def synthetic_window(T: int, B: int, rng: np.random.Generator):
    """x (T, 1, B): noise at about -6 dBFS; target (T, B): the same through tanh (an overdrive)."""
    x = (0.5 * rng.standard_normal((T, 1, B))).astype(np.float32)
    target = np.tanh(3.0 * x[:, 0, :])
    return x, target


def measure(systems: list, H: int, B: int, T: int, repeats: int, budget: float | None = None) -> dict:
    """{system name: [samples/s of each timed step]}, the systems taking turns.

    Round 0 warms up (kernel compilation, first allocations, caches) and is not counted.
    ``budget``: seconds of timed steps after which a system sits out the remaining rounds
    (it always gets at least one timed step); None: every system runs ``repeats`` steps."""
    x, target = synthetic_window(T, B, np.random.default_rng(B))
    steps = {system.name: system.make_step(H, x, target) for system in systems}
    rates = {name: [] for name in steps}
    spent = {name: 0.0 for name in steps}
    for round_ in range(repeats + 1):
        for name, step in steps.items():
            if round_ > 1 and budget is not None and spent[name] >= budget:
                continue
            start = time.perf_counter()
            step()
            seconds = time.perf_counter() - start
            if round_ > 0:
                rates[name].append(T * B / seconds)
                spent[name] += seconds
    for step in steps.values():
        getattr(step, "close", lambda: None)()
    return rates


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


def median_and_spread(rates: list) -> tuple:
    """(median, (max - min) as % of the median)."""
    median = statistics.median(rates)
    return median, 100.0 * (max(rates) - min(rates)) / median


# --- reporting ---------------------------------------------------------------------------

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


def machine_facts(torch) -> dict:
    """The facts printed above the table, by name."""
    removed = os.environ.get(REMOVED_MARK)
    cores = f"{os.cpu_count()}"
    if hasattr(os, "sched_getaffinity"):
        cores += f" ({len(os.sched_getaffinity(0))} available to this process)"
    cupy_reason = gpu_unavailable_reason()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
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


def k(rate: float) -> str:
    """samples/s as thousands, three significant figures or more."""
    return f"{rate / 1e3:,.0f}" if rate >= 1e5 else f"{rate / 1e3:.3g}"


def markdown_table(results: list, names: list) -> str:
    """One row per (H, B): each system's median k samples/s and spread, then ours / peer."""
    pairs = [(ours, peer) for ours, peer in PAIRS if ours in names and peer in names]
    header = ["H", "B"]
    for name in names:
        header += [f"{name} (k samples/s)", "spread"]
    header += [f"{ours} / {peer}" for ours, peer in pairs]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for H, B, rates in results:
        stats = {name: median_and_spread(rates[name]) for name in names}
        row = [str(H), str(B)]
        for median, spread in stats.values():
            row += [k(median), f"{spread:.0f} %"]
        row += [f"{stats[ours][0] / stats[peer][0]:.2f}" for ours, peer in pairs]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


RESULTS_INTRO = """# Training-step benchmark results

Appended by `python benchmarks/bench_step.py --write`. Each table gives the samples per
second of one training step (forward, backward through a window of T time steps, and one
Adam update; T * B samples a step) of a one-layer LSTM (input 1, H units, skip on,
pre-emphasised ESR + DC loss): ours (`lstm_core.training.train_window` on NumPy in one
process; "NumPy xN", the batch shared by one process per core through
`lstm_core.parallel.ParallelTrainer`, as train.py trains; CuPy where a GPU is) against PyTorch (`nn.LSTM` + `nn.Linear`, `torch.optim.Adam`) on the same machine.
The median of the timed runs is shown, with the spread (max - min) as % of the median.

Only the ratios within one run mean much: the systems take turns within a run, but from
one run to the next the same machine's speed moves by about 15 %.
"""


def append_results(facts: dict, command: str, settings: str, table: str, path: Path = RESULTS):
    """Append the table under a heading (machine, date, command); create the file if missing."""
    machine = f"{facts['CPU']}, {facts['cores'].split()[0]} cores"
    if facts["GPU"] != "none":
        machine += f", {facts['GPU']}"
    text = "" if path.exists() else RESULTS_INTRO
    text += f"\n## {machine}, {facts['date']}\n\n`{command}`\n\n"
    text += "\n".join(f"- {name}: {value}" for name, value in facts.items())
    text += f"\n- measuring: {settings}\n\n{table}\n"
    with path.open("a") as file:
        file.write(text)


# --- the command line --------------------------------------------------------------------

def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Training-step samples/s of lstm_core against PyTorch.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: T = 128 and 2 repeats, unless --steps or --repeats say otherwise")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="timed steps per system and configuration, after one warm-up step (default 5)")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[16, 32, 64],
                        help="hidden sizes H to measure (default 16 32 64)")
    parser.add_argument("--batch", type=positive_int, nargs="+", default=[40, 512],
                        help="batch sizes B, parallel segments per step (default 40 512)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="time steps T per training window (default 1024)")
    parser.add_argument("--write", action="store_true",
                        help=f"append the table, with the machine and command, to {RESULTS.name}")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.steps is None:
        args.steps = 128 if args.quick else 1024
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = import_torch()
    if torch is not None:
        check_torch_loss(torch)
    systems = available_systems(torch)
    names = [system.name for system in systems]
    facts = machine_facts(torch)
    for name, value in facts.items():
        print(f"{name + ':':20s}{value}")
    settings = (f"T = {args.steps}, {args.repeats} timed steps each after 1 warm-up; "
                f"systems in turn: {', '.join(names)}")
    print(f"{'measuring:':20s}{settings}\n", flush=True)

    results = []
    start_run, others_before = time.perf_counter(), others_cpu_seconds()
    for H in args.hidden:
        for B in args.batch:
            start = time.perf_counter()
            rates = measure(systems, H, B, args.steps, args.repeats)
            results.append((H, B, rates))
            summary = ", ".join(f"{name} {k(statistics.median(rates[name]))} k/s" for name in names)
            print(f"H={H:<3d} B={B:<4d} {summary}  ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    table = markdown_table(results, names)
    print(f"\nT = {args.steps}: median k samples/s of a training step, spread = (max - min) / median\n")
    if others_before is not None:
        others = others_cpu_seconds() - others_before
        table += (f"\n\nOther processes: {others:.1f} core-s busy during the {time.perf_counter() - start_run:.0f} s"
                  f" of measuring{' (the timings are skewed)' if others > OTHERS_LIMIT else ''}.")
    print(table)
    if args.write:
        append_results(facts, shlex.join(["python", *sys.argv]), settings, table)
        print(f"\nappended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
