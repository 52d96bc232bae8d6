"""Offline processing on every core: each forward call's batch columns shared across processes.

A NumPy call runs on one core, so a second core helps only if it runs a second stream of
calls (parallel.py says the same of training). The parallel chunks (chunks.py) call the
model over stretches of STRIDE steps at a time, each a few milliseconds of work, so
sending a share of the columns to a worker process and its outputs back through a pipe
(tens of microseconds) costs little. The main process runs the first share itself.

Workers are started once (``spawn``, safe with BLAS thread pools; a script that uses
SplitRun needs the ``if __name__ == "__main__":`` guard) and keep the parameters; BLAS
runs on one thread in every process while they share the cores.

Shapes: x (T, I, B); a state (h, c), each (L, H, B); y (T, B).
"""

from __future__ import annotations

import signal
import traceback
from multiprocessing import get_context

import numpy as np

from .inference import run
from .model import ModelConfig
from .parallel import WorkerError, _OneBlasThread, stop_workers

MIN_SHARE = 8      # columns below which a call runs in the main process alone (a pipe's trip would cost more)


class SplitRun:
    """run(x, state) -> (y, final state), as inference.run, on ``processes`` processes.

    Use as a context manager (or call close()): the workers stop with it."""

    def __init__(self, params: dict, config: ModelConfig, processes: int):
        self._params, self._config = {name: np.asarray(value) for name, value in params.items()}, config
        self._limit = _OneBlasThread()
        context = get_context("spawn")
        self._workers = []
        for _ in range(processes - 1):
            parent, child = context.Pipe()
            worker = context.Process(target=_worker_main, args=(child, self._params, config.to_dict()), daemon=True)
            worker.start()
            child.close()
            self._workers.append((worker, parent))

    def __call__(self, x, state):
        B = x.shape[2]
        shares = min(len(self._workers) + 1, max(1, B // MIN_SHARE))
        bounds = np.linspace(0, B, shares + 1).round().astype(int)
        with self._limit():
            for (_, pipe), a, b in zip(self._workers, bounds[1:-1], bounds[2:]):
                pipe.send((np.ascontiguousarray(x[:, :, a:b]), tuple(part[:, :, a:b] for part in state)))
            y, final = run(self._params, self._config, x[:, :, : bounds[1]], tuple(part[:, :, : bounds[1]]
                                                                                 for part in state))
            ys, finals = [y], [final]
            for worker, pipe in self._workers[: shares - 1]:
                y, final = _receive(pipe)
                ys.append(y)
                finals.append(final)
        return np.concatenate(ys, axis=1), tuple(np.concatenate(parts, axis=2) for parts in zip(*finals))

    def close(self):
        stop_workers(self._workers, None)
        self._workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _receive(pipe):
    try:
        message = pipe.recv()
    except (EOFError, OSError):
        raise WorkerError("an offline worker process stopped unexpectedly (out of memory, or killed?)") from None
    if message[0] == "error":
        raise WorkerError(f"an offline worker failed ({message[1].strip().splitlines()[-1]})")
    return message[1]


def _worker_main(pipe, params, config_dict):
    """A worker's life: run each (x, state) it is sent, send back ("done", (y, state))."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the main process's to handle
    limit = _OneBlasThread()()
    limit.__enter__()                                 # for the worker's whole life
    config = ModelConfig.from_dict(config_dict)
    while True:
        try:
            message = pipe.recv()
        except (EOFError, OSError):                   # the main process is gone
            break
        if message is None:
            break
        try:
            pipe.send(("done", run(params, config, *message)))
        except Exception:
            try:
                pipe.send(("error", traceback.format_exc()))
            except OSError:
                break
