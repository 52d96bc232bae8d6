"""Running a trained model over audio of any length, on the CPU or the GPU.

Two ways, one exact and one fast:

* sequential: one stream (B = 1), the state carried from sample to sample across calls,
  exactly what the model computes. Memory does not grow with the input.
* parallel chunks: the input cut into P chunks run side by side as a batch of P. A
  chunk starts from a guess at its state (warmed up on the ``overlap`` samples before
  it), and every chunk that did not start where the one before it ended runs again from
  there, until none differs (chunks.py). The first chunk of a stream starts from its
  true state. The result equals the sequential one to rounding on every model, also
  one that never forgets (tests/test_inference.py checks below -120 dB).

Both run in the parameters' float type: float32, or float64 for a model that amplifies
float32 rounding so much that the two ways would differ by more (precision.py chooses).
Arrays in, arrays out: x is (N,) float32 on the host (or (N, C), a stream per column, for
the sequential way), and so is the result. Both ways return the state after x (the
parallel way through process_chunks), to continue the stream in the next call.

Two extras serve models from other tools (files/formats.py): ``initial``, the state (h, c),
each (L, H), that every stream starts from instead of zeros (a .nam file carries one), and
``controls``, constant values for a conditioned model's inputs after the audio (a knob).
"""

from __future__ import annotations

import numpy as np

from .backend import array_module, to_device, to_numpy
from .chunks import columns, run_exact_chunks
from .cuda_kernels import DEFAULT_LOOP
from .model import ModelConfig, model_forward, zero_state
from .workspace import Workspace

STEPS_PER_CALL = 2048      # time steps per forward call at most
CALL_BYTES = 256 << 20     # ...and at most this much memory for one call's buffers (large batches)


def block_length(total: int, nominal: int) -> int:
    """Samples per offline block for a stream of ``total`` samples and blocks of at least
    ``nominal`` (where the stream is that long): the stream cut into total // nominal equal
    blocks (at least one), each from nominal to just under 2 nominal samples (the last
    one up to a sample per block shorter).

    Why not nominal blocks and a short last one: a block's chunks are block / parts long,
    and on a model with a long memory a chunk shorter than that memory takes pass after
    pass (chunks.py). 155 s cut as 120 s and 35 s took two trained amp-like models 6-7
    passes in the 35 s, and as one block 3 (RESULTS.md "Offline blocks")."""
    return -(-max(total, 1) // max(1, total // max(nominal, 1)))


def steps_per_call(config: ModelConfig, batch: int, itemsize: int = 4) -> int:
    """Time steps one forward call runs: STEPS_PER_CALL, fewer when the batch is so wide
    that the call's buffers (per layer and step: Z, A and tanh_c, 7H + I + 1 rows of B)
    would pass CALL_BYTES."""
    H = config.hidden_size
    per_step = config.num_layers * (7 * H + config.input_size + 1) * batch * itemsize
    return int(max(16, min(STEPS_PER_CALL, CALL_BYTES // per_step)))


def run(params: dict, config: ModelConfig, x, state=None, gpu_loop: str = DEFAULT_LOOP):
    """The model over x (T, I, B) on x's device, steps_per_call steps at a time (on a GPU
    with the recurrence ``gpu_loop``, cuda_kernels). Returns (y (T, B), final state)."""
    xp = array_module(x)
    T, _, B = x.shape
    if state is None:
        state = zero_state(config, B, xp, x.dtype)
    y = xp.empty((T, B), dtype=x.dtype)
    workspace = Workspace()                 # each call's buffers serve the next call
    step = steps_per_call(config, B, x.dtype.itemsize)
    for start in range(0, T, step):
        y[start : start + step], state, _ = model_forward(params, config, x[start : start + step], state, workspace,
                                                          gpu_loop)
    return y, state


def start_state(config: ModelConfig, batch: int, xp=np, initial=None, dtype=np.float32):
    """(h, c), each (L, H, B) of ``dtype``: ``initial`` ((h, c), each (L, H)) in every
    column, or zeros."""
    if initial is None:
        return zero_state(config, batch, xp, dtype)
    shape = (config.num_layers, config.hidden_size, batch)
    return tuple(to_device(np.ascontiguousarray(np.broadcast_to(np.asarray(part, dtype)[:, :, None], shape)), xp)
                 for part in initial)


def model_input(audio: np.ndarray, config: ModelConfig, controls=(), dtype=np.float32) -> np.ndarray:
    """x (T, I, B) of ``dtype`` for the model: the audio (T, B) as input 0, then one
    constant row per control value (a conditioned model's knobs)."""
    controls = tuple(controls or ())
    if len(controls) != config.input_size - 1:
        if config.input_size == 1:
            raise ValueError(f"the model takes audio only, but {len(controls)} control value(s) were given")
        raise ValueError(f"the model takes {config.input_size - 1} control value(s) besides the audio (a conditioned "
                         f"model, such as a knob position), {len(controls)} given")
    T, B = audio.shape
    x = np.empty((T, config.input_size, B), dtype)
    x[:, 0, :] = audio
    for row, value in enumerate(controls, start=1):
        x[:, row, :] = value
    return x


def process_sequential(params: dict, config: ModelConfig, x: np.ndarray, xp=np, state=None, initial=None,
                       controls=(), gpu_loop: str = DEFAULT_LOOP):
    """Exact: x (N,) or (N, C) -> (y of the same shape, state). Each column of a 2-D x is
    its own stream (a channel). ``params`` must live on ``xp``'s device, and the model
    runs in their float type (float32, or float64: precision.py); y is float32. Pass the
    returned state to the next call to continue the same streams (``initial`` is used
    only when ``state`` is None)."""
    columns = x.reshape(x.shape[0], -1)
    dtype = params["out.W"].dtype
    if state is None:
        state = start_state(config, columns.shape[1], xp, initial, dtype)
    y, state = run(params, config, to_device(model_input(columns, config, controls, dtype), xp), state, gpu_loop)
    return to_numpy(y).astype(np.float32, copy=False).reshape(x.shape), state


def process_parallel(params: dict, config: ModelConfig, x: np.ndarray, xp=np, parts: int = 64,
                     overlap: int = 256, history: np.ndarray | None = None, initial=None,
                     controls=(), gpu_loop: str = DEFAULT_LOOP, runner=None) -> np.ndarray:
    """Fast and exact: x (N,) -> y (N,) from ``parts`` chunks run as one batch, corrected
    until each starts where the one before it ends (chunks.py).

    Args:
        parts: number of chunks (the batch size); fewer are used for short inputs.
        overlap: warm-up samples before each chunk (a guess at its starting state only:
            the result is exact with any value, a good guess saves reruns).
        history: the audio just before x in the same stream, or None when x starts the
            stream. All of it is run before x (as part of the same chunks), from
            ``initial``; the output equals process_sequential over history + x, less the
            history's part.
        initial: (h, c), each (L, H): the state the stream starts from, or None (zeros).
        controls: values of a conditioned model's inputs after the audio.
        gpu_loop: how a GPU runs the recurrence ("step" or "window", cuda_kernels).
        runner: what runs the model, as process_chunks takes it (None: run() here).

    lstm_core.devices gives each device's parts and overlap (process.py's settings).
    """
    return process_parallel_passes(params, config, x, xp, parts, overlap, history, initial, controls, gpu_loop,
                                   runner)[0]


def process_parallel_passes(params: dict, config: ModelConfig, x: np.ndarray, xp=np, parts: int = 64,
                            overlap: int = 256, history: np.ndarray | None = None, initial=None,
                            controls=(), gpu_loop: str = DEFAULT_LOOP, runner=None) -> tuple[np.ndarray, int]:
    """process_parallel's (y (N,), the passes its chunks took: chunks.py), for a caller that
    sizes its next chunks by how many passes these took (run.py's validation)."""
    skip = 0
    if history is not None and history.size:
        x, skip = np.concatenate([history.astype(np.float32), x.astype(np.float32)]), history.size
    y, _, passes = process_chunks(params, config, x, xp, start_state(config, 1, xp, initial, params["out.W"].dtype),
                                  parts, overlap, controls, gpu_loop, runner)
    return y[skip:], passes


def process_chunks(params: dict, config: ModelConfig, x: np.ndarray, xp, state, parts: int, overlap: int,
                   controls=(), gpu_loop: str = DEFAULT_LOOP, runner=None):
    """x (N,) from the true state ``state`` ((h, c), each (L, H, 1), on xp) ->
    (y (N,), the state after x, passes): process_sequential's result to rounding,
    computed as ``parts`` chunks of one batch (chunks.py); pass the state to the next call
    to continue the stream. The model runs in the parameters' float type (float32, or
    float64: precision.py); the state is cast to it. ``runner``: what runs the model,
    (x (T, I, B), state) -> (y (T, B), state), such as split_run.SplitRun (every core);
    None: run() here."""
    x = np.asarray(x, np.float32)
    dtype = params["out.W"].dtype
    state = tuple(part.astype(dtype, copy=False) for part in state)
    n = x.size
    parts = max(1, min(parts, n))
    length = -(-n // parts)                                  # samples a chunk delivers
    parts = -(-n // length)                                  # no empty chunk
    padded = np.zeros(parts * length, np.float32)            # the tail's padding is harmless: causal
    padded[:n] = x
    chunks = padded.reshape(parts, length).T                 # (S, P): chunk c in column c
    guess = tuple(xp.broadcast_to(part, part.shape[:2] + (parts,)) for part in state)    # a view: chunks.py copies

    def run_part(x_part, start):
        return run(params, config, x_part, start, gpu_loop)

    run_part = runner or run_part
    warm = min(overlap, length)
    if warm and parts > 1:                                   # the samples before chunks 1..P-1
        before = np.stack([padded[c * length - warm : c * length] for c in range(1, parts)], axis=1)
        _, warmed = run_part(to_device(model_input(before, config, controls, dtype), xp),
                             columns(guess, slice(1, parts)))
        guess = tuple(xp.concatenate([part[:, :, :1], w], axis=2) for part, w in zip(guess, warmed))

    x_chunks = to_device(model_input(chunks, config, controls, dtype), xp)
    y, final, passes = run_exact_chunks(run_part, x_chunks, state, guess, xp, n - (parts - 1) * length)
    return y.T.reshape(-1)[:n], final, passes


def rest_state(params: dict, config: ModelConfig, samples: int, controls=()):
    """(h, c), each (L, H) float32 on the host: the state after ``samples`` of silence from
    zero state, where a real-time plugin starts its stream (the .nam format stores it)."""
    _, (h, c) = process_sequential(params, config, np.zeros(samples, np.float32), array_module(params["out.W"]),
                                   controls=controls)
    return to_numpy(h)[:, :, 0], to_numpy(c)[:, :, 0]


def split_into_chunks(x: np.ndarray, parts: int, overlap: int, history: np.ndarray | None = None):
    """One pass of warmed-up chunks, uncorrected (the layout process_parallel used before
    chunks.py; the benchmarks run PyTorch this way): (window (steps, P) float32, plan).
    Within about -80 dB of the sequential result on models that forget quickly, not exact.

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
