"""Data-parallel training on the CPU: the batch split across worker processes.

A NumPy call runs on one core, and at audio-model sizes most of a step is many small
calls, so a second core helps only if it runs a second stream of calls. Each worker
process takes a share of the batch columns and computes that share's gradient; the main
process takes the first share itself, adds the workers' gradients and makes the Adam
update. Because the loss denominators are computed once for the whole batch
(losses.LossNorms), the shares' losses and gradients add up exactly to the whole
batch's: the result equals the serial ``training.train_window`` up to rounding.

Everything a training step moves crosses between processes through shared memory (the
window's inputs, the parameters, the gradients); the pipe carries only a few numbers per
TBPTT slice. ``map`` is the exception: it runs a function on each core at once (run.py
scores an epoch's two candidate models that way), and its function and items go through
the pipe, pickled. Workers are started once (``spawn``, safe with BLAS thread pools) and
kept for the run; as with any ``spawn`` start, a script that uses ParallelTrainer needs the
``if __name__ == "__main__":`` guard. BLAS runs on one thread in every process while they
share the cores (in the main process only during train_window and map).

A worker treats floating-point errors (overflow, invalid values) as the caller does at the
call: the caller's ``np.geterr()`` travels with each window and each ``map`` item. run.py
catches a diverging epoch and rolls it back under ``np.errstate(over="ignore", ...)``; without
this, the workers' share of that epoch printed NumPy's RuntimeWarnings on the user's screen.
"""

from __future__ import annotations

import contextlib
import math
import signal
import traceback
from multiprocessing import get_context, shared_memory

import numpy as np

from .adam import AdamState, adam_step
from .losses import LossNorms
from .model import ModelConfig, input_step_scale, param_shapes
from .training import TrainConfig, slice_gradients, slice_norms, slices, warm_up
from .workspace import Workspace


class _OneBlasThread:
    """A context manager: BLAS on one thread inside it (a no-op without threadpoolctl).
    The libraries are looked up once; entering and leaving is then cheap."""

    def __init__(self):
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            self._controller = None
        else:
            self._controller = ThreadpoolController()

    def __call__(self):
        if self._controller is None:
            return contextlib.nullcontext()
        return self._controller.limit(limits=1, user_api="blas")


class _FlatParams:
    """Name -> view into one flat array, in param_shapes order."""

    def __init__(self, config: ModelConfig, flat: np.ndarray):
        self.flat = flat
        self.views, offset = {}, 0
        for name, shape in param_shapes(config).items():
            size = math.prod(shape)
            self.views[name] = flat[offset : offset + size].reshape(shape)
            offset += size

    @staticmethod
    def size(config: ModelConfig) -> int:
        return sum(math.prod(shape) for shape in param_shapes(config).values())

    def write(self, arrays: dict):
        for name, view in self.views.items():
            view[...] = arrays[name]


def _shard_layout(config: ModelConfig, max_steps: int, max_columns: int):
    """Offsets (in elements) of x, target, grads and loss inside a worker's shared block."""
    x_size = max_steps * config.input_size * max_columns
    t_size = max_steps * max_columns
    p_size = _FlatParams.size(config)
    return {"x": 0, "target": x_size, "grads": x_size + t_size, "loss": x_size + t_size + p_size,
            "total": x_size + t_size + p_size + 1}


class ParallelTrainer:
    """train_window on ``processes`` processes (this one included). Use as a context
    manager, or call close(): it owns worker processes and shared memory.

    Args:
        config: the model's configuration.
        processes: how many processes share each batch (2 on a 2-core machine).
        max_steps, max_batch: the largest window (T, B) it will be given.
        dtype: float32 for training (float64 for exactness tests).
    """

    def __init__(self, config: ModelConfig, processes: int, max_steps: int, max_batch: int, dtype=np.float32):
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.config = config
        self.processes = processes
        self.max_steps = max_steps
        self.dtype = np.dtype(dtype)
        self.max_columns = math.ceil(max_batch / processes)
        self._layout = _shard_layout(config, max_steps, self.max_columns)
        self._one_blas_thread = _OneBlasThread()
        self._workspace = Workspace()
        self._memory, self._workers, self._shards = [], [], []
        itemsize = self.dtype.itemsize
        param_block = self._shared(_FlatParams.size(config) * itemsize)
        self._params = _FlatParams(config, np.ndarray((_FlatParams.size(config),), self.dtype, param_block.buf))
        context = get_context("spawn")
        try:
            for _ in range(processes - 1):
                block = self._shared(self._layout["total"] * itemsize)
                parent, child = context.Pipe()
                worker = context.Process(
                    target=_worker_main, daemon=True,
                    args=(child, config.to_dict(), block.name, param_block.name, max_steps, self.max_columns,
                          self.dtype.str))
                worker.start()
                child.close()
                self._workers.append((worker, parent))
                self._shards.append(_ShardViews(config, block.buf, self._layout, self.dtype))
        except BaseException:
            self.close()
            raise

    @property
    def worker_pids(self) -> list:
        return [worker.pid for worker, _ in self._workers]

    def _shared(self, size: int):
        block = shared_memory.SharedMemory(create=True, size=max(size, 1))
        self._memory.append(block)
        return block

    def train_window(self, params: dict, adam: AdamState, x, target, train: TrainConfig):
        """Same contract as training.train_window: updates params and adam in place and
        returns the mean loss of the window's slices (a 0-d array)."""
        with self._one_blas_thread():           # only while sharing the cores with the workers
            return self._train_window(params, adam, x, target, train)

    def _train_window(self, params: dict, adam: AdamState, x, target, train: TrainConfig):
        T, _, B = x.shape
        if T > self.max_steps or B > self.max_columns * self.processes:
            raise ValueError(f"window ({T}, {B}) exceeds the trainer's ({self.max_steps}, "
                             f"{self.max_columns * self.processes})")
        active = min(self.processes, B)
        bounds = np.linspace(0, B, active + 1).astype(int)
        helpers = list(zip(self._workers[: active - 1], self._shards[: active - 1], zip(bounds[1:-1], bounds[2:])))
        self._params.write(params)                  # the workers' warm-up reads them
        for (_, pipe), shard, (lo, hi) in helpers:
            shard.x(T, hi - lo)[...] = x[:, :, lo:hi]
            shard.target(T, hi - lo)[...] = target[:, lo:hi]
            pipe.send(("window", T, int(hi - lo), train.to_dict(), np.geterr()))

        own_x, own_target = x[:, :, : bounds[1]], target[:, : bounds[1]]
        state = warm_up(params, self.config, own_x, train, self._workspace)
        total = 0.0
        spans = slices(T, train)
        step_scale = input_step_scale(params, train.input_gain)
        for start, stop in spans:
            norms = LossNorms(*(v if isinstance(v, int) else float(v) for v in slice_norms(target[start:stop], train)))
            if start != spans[0][0]:
                self._params.write(params)          # as updated by the previous slice
            for (_, pipe), _, _ in helpers:
                pipe.send(("slice", start, stop, tuple(norms)))
            loss, grads, state = slice_gradients(params, self.config, own_x[start:stop], own_target[start:stop],
                                                 state, train, norms, self._workspace)
            for (_, pipe), shard, _ in helpers:
                loss = loss + _receive(pipe)
                for name, view in shard.grads.views.items():
                    grads[name] += view
            adam_step(params, grads, adam, train.lr, clip_norm=train.clip_norm, average=train.average,
                      step_scale=step_scale)
            total = total + loss
        return total / max(len(spans), 1)

    def map(self, function, items: list) -> list:
        """[function(item) for item in items], the first item in this process and the others
        in the workers at the same time (items beyond the workers wait their turn here).
        ``function`` and the items cross to the workers by pickling: a module-level function,
        or a functools.partial of one, over NumPy arrays. Used to score the epoch's candidate
        models side by side (run.py), where one core would otherwise wait for the other."""
        if not items:
            return []
        with self._one_blas_thread():
            sent = []
            try:
                for (_, pipe), item in zip(self._workers, items[1:]):
                    pipe.send(("call", function, item, np.geterr()))
                    sent.append(pipe)
                first = function(items[0])
            finally:
                # Every reply is read, even when this process failed: one left in a pipe would
                # be taken for the next window's loss.
                replies = [_receive(pipe) for pipe in sent]
            return [first, *replies, *(function(item) for item in items[1 + len(sent):])]

    def close(self):
        stop_workers(self._workers, ("stop",))
        self._workers = []
        self._shards = []
        self._params = None
        for block in self._memory:
            block.close()
            block.unlink()
        self._memory = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _ShardViews:
    """A worker's shared block seen as arrays: x (T, I, Bk), target (T, Bk), grads, loss."""

    def __init__(self, config, buffer, layout, dtype):
        total = np.ndarray((layout["total"],), dtype, buffer)
        self._x = total[layout["x"] : layout["target"]]
        self._target = total[layout["target"] : layout["grads"]]
        self.grads = _FlatParams(config, total[layout["grads"] : layout["loss"]])
        self.loss = total[layout["loss"] : layout["loss"] + 1]
        self._inputs = config.input_size

    def x(self, T, columns):
        return self._x[: T * self._inputs * columns].reshape(T, self._inputs, columns)

    def target(self, T, columns):
        return self._target[: T * columns].reshape(T, columns)


def stop_workers(workers: list, message):
    """Send each (process, pipe) of ``workers`` ``message`` (its stop), wait up to 5 s for
    it, end one that does not stop, and close the pipes (a worker already gone is fine)."""
    for _, pipe in workers:
        try:
            pipe.send(message)
        except (BrokenPipeError, OSError):
            pass
    for worker, pipe in workers:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()
        pipe.close()


class WorkerError(RuntimeError):
    """A worker process failed or vanished; the message says what to do."""


def _receive(pipe):
    try:
        message = pipe.recv()
    except (EOFError, OSError):
        raise WorkerError("a training worker process stopped unexpectedly (out of memory, or killed?); "
                          "run again with --processes 1") from None
    if message[0] == "error":
        raise WorkerError(f"a training worker failed ({message[1].strip().splitlines()[-1]}); "
                          f"run with --processes 1 to see where")
    return message[1]


def _worker_main(pipe, config_dict, block_name, param_name, max_steps, max_columns, dtype_str):
    """A worker's life: wait for a window, warm up, then one gradient per slice; or run
    a function it is sent (ParallelTrainer.map)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the main process's to handle
    limit = _OneBlasThread()()
    limit.__enter__()                                 # for the worker's whole life
    config = ModelConfig.from_dict(config_dict)
    dtype = np.dtype(dtype_str)
    block = shared_memory.SharedMemory(name=block_name)
    param_block = shared_memory.SharedMemory(name=param_name)
    try:
        shard = _ShardViews(config, block.buf, _shard_layout(config, max_steps, max_columns), dtype)
        params = _FlatParams(config, np.ndarray((_FlatParams.size(config),), dtype, param_block.buf)).views
        x = target = state = train = None
        workspace = Workspace()
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):                   # the main process is gone: nothing left to do
                break
            except Exception:                             # a map() item that does not unpickle here
                try:
                    pipe.send(("error", traceback.format_exc()))
                except OSError:
                    break
                continue
            try:
                if message[0] == "stop":
                    break
                if message[0] == "window":
                    _, T, columns, train_dict, errors = message
                    np.seterr(**errors)                   # the caller's: see the module doc
                    train = TrainConfig(**train_dict)
                    x, target = shard.x(T, columns), shard.target(T, columns)
                    state = warm_up(params, config, x, train, workspace)
                elif message[0] == "slice":
                    _, start, stop, norms = message
                    loss, grads, state = slice_gradients(params, config, x[start:stop], target[start:stop], state,
                                                         train, LossNorms(*norms), workspace)
                    shard.grads.write(grads)
                    pipe.send(("done", float(loss)))
                elif message[0] == "call":                # ParallelTrainer.map
                    _, function, item, errors = message
                    np.seterr(**errors)
                    pipe.send(("done", function(item)))
            except Exception:
                try:
                    pipe.send(("error", traceback.format_exc()))
                except OSError:                           # BrokenPipeError: the main process is gone
                    break
    finally:
        del shard, params, x, target
        block.close()
        param_block.close()
