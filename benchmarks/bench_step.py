"""Training-step speed: samples per second of forward + backward + Adam, ours against PyTorch.

One training step is one window of T = 1024 time steps of B parallel segments (T * B
samples) through a one-layer LSTM (input size 1, H units, skip on), the pre-emphasised
ESR + DC loss (a = 0.85, DC weight 1: TrainConfig's defaults; a was 0.95 before
2026-12-01, which costs the same), backpropagation through the whole window (warm-up 0,
tbptt = T) and one Adam update. The systems (common.SYSTEMS):

    ours      lstm_core.training.train_window: NumPy on the CPU, CuPy where a GPU is usable
              (its default loop); and lstm_core.parallel.ParallelTrainer: the batch shared
              by one process per core (what train.py uses on the CPU)
    PyTorch   nn.LSTM(1, H) + nn.Linear(H, 1) + skip, the same loss, torch.optim.Adam:
              on the CPU (all cores), and on CUDA (cuDNN, strict FP32) where available

Each configuration (H in 16, 32, 64; B in 40, 512) runs every system once to warm up,
then --repeats times, the systems taking turns (ours, PyTorch, ours, PyTorch, ...) so
that a drift in the machine's speed hits all of them alike. The table gives the median
samples/s, the spread (max - min, as % of the median) and the ratio ours / peer.

    python benchmarks/bench_step.py              # the full run (about a minute on 2 cores)
    python benchmarks/bench_step.py --quick      # smoke run: T = 128, 2 repeats
    python benchmarks/bench_step.py --hidden 32 --batch 512 --repeats 9
    python benchmarks/bench_step.py --write      # also append the table to benchmarks/RESULTS.md

OpenBLAS: some machines set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which slow NumPy's
small matmuls; a user's machine does not. So the script first re-runs itself with both
removed from its own environment (benchmarks.rerun_without_blas_overrides, before NumPy
loads: OpenBLAS reads them once, when NumPy loads it).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

from benchmarks import rerun_without_blas_overrides  # noqa: E402  (loads nothing)

if __name__ == "__main__":
    rerun_without_blas_overrides()      # before anything imports NumPy

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.common import k, positive_int  # noqa: E402

OPTIONS = ("numpy", "numpy-parallel", "torch-cpu", "cupy", "torch-cuda")    # the systems measured here


def synthetic_window(T: int, B: int, rng: np.random.Generator):
    """x (T, 1, B): noise at about -6 dBFS; target (T, B): the same through tanh (an overdrive)."""
    x = (0.5 * rng.standard_normal((T, 1, B))).astype(np.float32)
    target = np.tanh(3.0 * x[:, 0, :])
    return x, target


def measure(systems: list, torch, H: int, B: int, T: int, repeats: int, budget: float | None = None) -> dict:
    """{system name: [samples/s of each timed step]}, the systems taking turns after one
    warm-up step each (common.take_turns; ``budget``: None, every system runs ``repeats``
    steps)."""
    x, target = synthetic_window(T, B, np.random.default_rng(B))
    steps = {system.name: system.step(torch, H, x, target) for system in systems}
    seconds, _ = common.take_turns(steps, repeats, budget)
    for step in steps.values():
        getattr(step, "close", lambda: None)()
    return {name: [T * B / s for s in times] for name, times in seconds.items()}


def measure_grid(systems: list, torch, hidden: list, batches: list, steps, repeats: int,
                 budget: float | None = None) -> list:
    """[(H, B, T, {system name: [samples/s]})] for every H and B, with T = steps(B); a line on
    stderr after each."""
    results = []
    for H in hidden:
        for B in batches:
            T, started = steps(B), time.perf_counter()
            rates = measure(systems, torch, H, B, T, repeats, budget)
            results.append((H, B, T, rates))
            summary = ", ".join(f"{name} {k(statistics.median(rates[name]))} k/s" for name in rates)
            print(f"H={H:<3d} B={B:<4d} T={T:<4d} {summary}  ({time.perf_counter() - started:.1f} s)",
                  file=sys.stderr, flush=True)
    return results


def median_and_spread(rates: list) -> tuple:
    """(median, (max - min) as % of the median)."""
    median = statistics.median(rates)
    return median, 100.0 * (max(rates) - min(rates)) / median


def markdown_table(results: list, names: list) -> str:
    """One row per (H, B) of measure_grid's results: each system's median k samples/s and
    spread, then ours / peer."""
    pairs = [(name, common.SYSTEM[name].peer) for name in names if common.SYSTEM[name].peer in names]
    header = ["H", "B"]
    for name in names:
        header += [f"{name} (k samples/s)", "spread"]
    header += [f"{ours} / {peer}" for ours, peer in pairs]
    rows = []
    for H, B, _, rates in results:
        stats = {name: median_and_spread(rates[name]) for name in names}
        row = [str(H), str(B)]
        for median, spread in stats.values():
            row += [k(median), f"{spread:.0f} %"]
        rows.append(row + [f"{stats[ours][0] / stats[peer][0]:.2f}" for ours, peer in pairs])
    return common.markdown_table(header, rows)


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
                        help=f"append the table, with the machine and command, to {common.RESULTS.name}")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.steps is None:
        args.steps = 128 if args.quick else 1024
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = common.import_torch()
    systems = [system for system in common.SYSTEMS if system.option in OPTIONS and not system.absent(torch)]
    names = [system.name for system in systems]
    facts = common.machine_facts(torch)
    common.print_facts(facts)
    settings = (f"T = {args.steps}, {args.repeats} timed steps each after 1 warm-up; "
                f"systems in turn: {', '.join(names)}")
    print(f"{'measuring:':20s}{settings}\n", flush=True)

    other_work = common.watch_other_work()
    results = measure_grid(systems, torch, args.hidden, args.batch, lambda B: args.steps, args.repeats)
    table = markdown_table(results, names)
    print(f"\nT = {args.steps}: median k samples/s of a training step, spread = (max - min) / median\n")
    note = other_work()
    if note:
        table += f"\n\n{note}"
    print(table)
    if args.write:
        machine = f"{facts['CPU']}, {facts['cores'].split()[0]} cores"
        if facts["GPU"] != "none":
            machine += f", {facts['GPU']}"
        common.append_section(common.RESULTS, f"{machine}, {facts['date']}", common.command_line("bench_step.py", argv),
                              f"{common.facts_list(facts)}\n- measuring: {settings}\n\n{table}")
        print(f"\nappended to {common.RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
