"""Where one training step's time goes, on the CPU or the GPU.

One step is what benchmarks/bench_step.py and cpu_vs_gpu.py time: lstm_core.training.
train_window over a window of T steps of B columns, warm-up 0 and TBPTT T, so one forward,
one backward and one Adam update. Here it is also taken apart:

    step                 the whole of it (TrainConfig's loss settings and running average)
    forward              model_forward alone
    forward+backward     slice_gradients: forward, the loss, backward
    adam                 adam_step alone, on those gradients
    step, no average     the step with TrainConfig.average 0 (no running average)
    step, no pre-emph.   the step with pre_emphasis 0

Each is the median of --repeats calls after warm-ups, the device synchronized after each,
the parts taking turns (benchmarks/common.take_turns) so that a drift in the machine's
speed hits all of them alike.
On a GPU the table adds what the host spends to enqueue a call without waiting for it:
where that comes close to the call's own time, the GPU waits on Python's launches, and
fewer, larger kernels are what would make it faster (the second GPU session, 2026-12-04,
found our step slower than before with no change in its code: RESULTS.md).

    python benchmarks/step_breakdown.py                   # the device auto picks; H 32, B 64 and 1024
    python benchmarks/step_breakdown.py --device cpu --hidden 32 --batch 40
    python benchmarks/step_breakdown.py --quick           # smoke run: H 8, B 8, T 32
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, no install needed

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.common import markdown_table, model, positive_int, synchronizer, take_turns  # noqa: E402
from lstm_core.adam import AdamState, adam_step  # noqa: E402
from lstm_core.backend import BackendError, get_xp, is_gpu, to_device  # noqa: E402
from lstm_core.devices import device_settings  # noqa: E402
from lstm_core.model import input_step_scale, model_forward  # noqa: E402
from lstm_core.training import TrainConfig, slice_gradients, train_window, zero_state  # noqa: E402
from lstm_core.workspace import Workspace  # noqa: E402

LR = 1e-3


WARM_UPS = 3      # calls of each part before the timed ones (kernel compilation, first allocations)


def synced(call, synchronize):
    """``call`` followed by waiting for the device: a timed call counts the device's work."""
    def call_and_wait():
        call()
        synchronize()
    return call_and_wait


def enqueue_ms(call, synchronize, repeats: int) -> float:
    """Host time per call in ms when calls are only enqueued (one sync at the end, not
    counted): on the CPU, the call itself."""
    synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    seconds = time.perf_counter() - started
    synchronize()
    return 1e3 * seconds / repeats


def breakdown(xp, loop: str, H: int, B: int, T: int, repeats: int) -> list:
    """Rows (part, ms, k samples/s or None, host enqueue ms or None) for one (H, B, T) on
    ``xp``'s device, a GPU running ``loop``."""
    config, params = model(H, xp)
    adam = AdamState()
    train = TrainConfig(warmup=0, tbptt=T, lr=LR)
    rng = np.random.default_rng(H + B)
    x_host = (0.5 * rng.standard_normal((T, 1, B))).astype(np.float32)
    x, target = to_device(x_host, xp), to_device(np.tanh(3.0 * x_host[:, 0, :]), xp)
    workspace = Workspace()
    synchronize = synchronizer(xp)
    state = zero_state(config, B, xp, x.dtype)
    _, grads, _ = slice_gradients(params, config, x, target, state, train, workspace=workspace, gpu_loop=loop)
    scale = input_step_scale(params, train.input_gain)

    def step(config_now=train):
        return lambda: train_window(params, config, adam, x, target, config_now, workspace, loop)

    parts = [
        ("step", step()),
        ("forward", lambda: model_forward(params, config, x, state, workspace, loop)),
        ("forward+backward", lambda: slice_gradients(params, config, x, target, state, train, workspace=workspace,
                                                     gpu_loop=loop)),
        ("adam", lambda: adam_step(params, grads, adam, LR, clip_norm=train.clip_norm, average=train.average,
                                   step_scale=scale)),
        ("step, no average", step(dataclasses.replace(train, average=0.0))),
        ("step, no pre-emph.", step(dataclasses.replace(train, pre_emphasis=0.0))),
    ]
    calls = {name: synced(call, synchronize) for name, call in parts}
    seconds, _ = take_turns(calls, repeats, warm_ups={name: lambda call=call: [call() for _ in range(WARM_UPS)]
                                                      for name, call in calls.items()})
    rows = []
    for name, call in parts:
        ms = 1e3 * statistics.median(seconds[name])
        host = enqueue_ms(call, synchronize, repeats) if is_gpu(xp) else None
        rows.append((name, ms, T * B / ms if name.startswith("step") else None, host))
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Where one training step's time goes: forward, backward, "
                                                 "Adam, and the step without its extras.")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where to run (default auto: the GPU where CuPy and one are usable)")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[32], help="hidden sizes H (default 32)")
    parser.add_argument("--batch", type=positive_int, nargs="+", default=[64, 1024],
                        help="batch sizes B (default 64, the GPU's, and 1024, the throughput target's)")
    parser.add_argument("--steps", type=positive_int, default=256, help="time steps T a window (default 256)")
    parser.add_argument("--repeats", type=positive_int, default=20, help="timed calls a part (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: H 8, B 8, T 32, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.batch, args.steps, args.repeats = [8], [8], 32, 3
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        xp = get_xp(args.device)
    except BackendError as error:
        print(f"step_breakdown.py: {error}", file=sys.stderr)
        return 2
    on_gpu = is_gpu(xp)
    settings = device_settings("gpu" if on_gpu else "cpu")
    rows = []
    for H in args.hidden:
        for B in args.batch:
            for name, ms, rate, host in breakdown(xp, settings.gpu_loop, H, B, args.steps, args.repeats):
                rows.append([str(H), str(B), str(args.steps), name, f"{ms:.3f}",
                             "" if rate is None else f"{rate:,.0f}"] + ([f"{host:.3f}"] if on_gpu else []))
    header = ["H", "B", "T", "part", "ms", "k samples/s"] + (["host enqueue ms"] if on_gpu else [])
    print(f"device: {'GPU, loop ' + settings.gpu_loop if on_gpu else 'CPU, one process'}")
    print(markdown_table(header, rows, text_columns=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
