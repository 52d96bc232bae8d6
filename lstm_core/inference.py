"""Running a trained model over audio of any length, on the CPU or the GPU.

Two ways, one exact and one fast:

* sequential: one stream (B = 1), the state carried from sample to sample across calls,
  exactly what the model computes. Memory does not grow with the input.
* parallel chunks: the input cut into P chunks run side by side as a batch of P. A
  chunk starts from zero state ``overlap`` samples before its own first sample, on the
  audio that precedes it, so its state has converged to what the sequential run would
  have reached (an LSTM forgets its initial state within a few thousand samples). The
  first chunk of a stream starts at its beginning and is exact. The difference from the
  sequential result is checked below -80 dB in the tests (tests/test_inference.py, and
  on a trained model in tests/test_training.py; -134 dB on a 3-minute file, README).

Arrays in, arrays out: x is (N,) float32 on the host (or (N, C), a stream per column, for
the sequential way), and so is the result.
"""

from __future__ import annotations

import numpy as np

from .backend import array_module, to_device, to_numpy
from .model import ModelConfig, model_forward, zero_state
from .workspace import Workspace

STEPS_PER_CALL = 2048      # time steps per forward call: bounds the memory of its buffers


def run(params: dict, config: ModelConfig, x, state=None):
    """The model over x (T, I, B) on x's device, STEPS_PER_CALL steps at a time.
    Returns (y (T, B), final state)."""
    xp = array_module(x)
    T, _, B = x.shape
    if state is None:
        state = zero_state(config, B, xp, x.dtype)
    y = xp.empty((T, B), dtype=x.dtype)
    workspace = Workspace()                 # each call's buffers serve the next call
    for start in range(0, T, STEPS_PER_CALL):
        y[start : start + STEPS_PER_CALL], state, _ = model_forward(params, config, x[start : start + STEPS_PER_CALL],
                                                                  state, workspace)
    return y, state


def process_sequential(params: dict, config: ModelConfig, x: np.ndarray, xp=np, state=None):
    """Exact: x (N,) or (N, C) -> (y of the same shape, state). Each column of a 2-D x is
    its own stream (a channel). ``params`` must live on ``xp``'s device; pass the returned
    state to the next call to continue the same streams."""
    columns = x.reshape(x.shape[0], 1, -1)
    y, state = run(params, config, to_device(columns, xp, np.float32), state)
    return to_numpy(y).reshape(x.shape), state


def process_parallel(params: dict, config: ModelConfig, x: np.ndarray, xp=np, parts: int = 64,
                     overlap: int = 8192, history: np.ndarray | None = None) -> np.ndarray:
    """Fast: x (N,) -> y (N,) from ``parts`` chunks run as one batch.

    Args:
        parts: number of chunks (the batch size); fewer are used for short inputs.
        overlap: warm-up samples before each chunk.
        history: the audio just before x in the same stream (its last ``overlap``
            samples are used), or None when x starts the stream (zero state at x[0]).
    """
    window, plan = split_into_chunks(x, parts, overlap, history)
    y_window = to_numpy(run(params, config, to_device(window[:, None, :], xp))[0])
    return join_chunks(y_window, plan)


def split_into_chunks(x: np.ndarray, parts: int, overlap: int, history: np.ndarray | None = None):
    """The chunks of process_parallel as one batch: (window (steps, P) float32, plan).

    Chunk c delivers x[c L : (c+1) L] and starts ``overlap`` samples earlier (in x or in
    ``history``), or at the stream's start; the zero padding after the end is harmless
    for a causal model. ``plan`` is what join_chunks needs to undo this."""
    history = np.zeros(0, np.float32) if history is None or overlap == 0 else history[-overlap:]
    n = x.size
    parts = max(1, min(parts, n // max(1, overlap // 4) or 1))
    length = -(-n // parts)                                  # samples a chunk delivers
    offset = history.size
    stream = np.concatenate([history.astype(np.float32), x.astype(np.float32)])
    starts = [max(0, offset + c * length - overlap) for c in range(parts)]
    steps = max(offset + min(n, (c + 1) * length) - s for c, s in enumerate(starts))
    window = np.zeros((steps, parts), np.float32)
    for c, s in enumerate(starts):
        piece = stream[s : s + steps]
        window[: piece.size, c] = piece
    return window, (starts, length, n, offset)


def join_chunks(y_window: np.ndarray, plan) -> np.ndarray:
    """The output (N,) of the chunks' outputs y_window (steps, P), in order."""
    starts, length, n, offset = plan
    y = np.empty(n, np.float32)
    for c, s in enumerate(starts):
        first, last = c * length, min(n, (c + 1) * length)
        if first >= last:
            break
        skip = offset + first - s
        y[first:last] = y_window[skip : skip + last - first, c]
    return y
