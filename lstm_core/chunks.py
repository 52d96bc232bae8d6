"""Parallel chunks that are exact by construction: a guess for every chunk, then fix-ups.

A stream x (N,) is cut into P chunks of S = ceil(N / P) samples, run side by side as one
batch of P. Chunk 0 starts from the stream's true state. Every other chunk needs the
state the stream reaches at its first sample, which is only known once the chunk before
it has run; so it starts from a guess (the stream's start state, warmed up on the
``overlap`` samples before the chunk) and is then corrected:

    pass 1    every chunk runs from its guess; its final state is recorded
    pass k+1  every chunk whose starting state differs from the final state of the chunk
              before it (by more than rounding: tolerance()) runs again from that final
              state, all such chunks as one batch
    until     no chunk differs.

Each pass makes at least the first differing chunk exact, so there are at most P
passes; in practice one or two on models that forget their state quickly (filters and
overdrives trained here); on amp-like ones, whose state carries a slow envelope, as many
as it takes the envelope to fade, one chunk further each pass: 19 to 23 in 10 s of audio
cut into 128 chunks, 3 in 60 s cut into 64 or 155 s into 128 (devices.py).
A rerun chunk is also compared, every STRIDE steps, with the states its previous run
recorded there: once they agree the rest of its previous output (and its final state)
stands, and the rerun stops. A rerun therefore costs about the time the model takes to
forget, not a whole chunk, and a warm-up only saves work when it is shorter than that.

The output equals one sequential run over the stream to rounding, on any model that is
not chaotic: a model that never forgets (a cell that integrates) takes more passes, not a
worse result. (A chaotic one, whose output two float64 runs already disagree on, because
it magnifies any difference without bound, has no output to agree on: on such a model,
built by hand, the float64 chunks came out -15 dB from the float64 sequential run.)
"To rounding" is literal: a batch's matmul rounds differently from one column's, and two
states that agree to rounding are taken as the same, so on a model that amplifies
rounding the two ways differ by about as much as either differs from the exact output.
In float32 that reaches -80 to -130 dB on such models (trained amp-like models, every
community capture tried); precision.py finds them and runs them in float64, where the
same amplification leaves the two ways equal to the output's float32 rounding.
Nothing here depends on the float type: the states' own type sets the tolerance.

Shapes: x (N,) float32 on the host; a state (h, c), each (L, H, B) on xp's device;
a chunk's input (S, I, P) (inference.model_input).
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy

STRIDE = 256          # steps between the recorded states a rerun chunk is compared with


def tolerance(dtype) -> float:
    """Two roundings at 1 in ``dtype``: |a - b| <= tolerance (1 + |b|) is "the same state"
    (2.4e-7 in float32, 4.4e-16 in float64)."""
    return 2.0 * float(np.finfo(dtype).eps)


def same_state(a, b, xp):
    """(B,) bool on the host: whether each column of state a equals b's to rounding (in
    their float type). a, b: (h, c), each (L, H, B). Equal infinities and NaN against NaN
    count as the same (a diverged model's state): a chunk rerun from a state must then
    agree with it, or the passes would never end."""
    tol = tolerance(a[0].dtype)
    agree = [xp.all((xp.abs(p - q) <= tol * (1.0 + xp.abs(q))) | (p == q) | (xp.isnan(p) & xp.isnan(q)), axis=(0, 1))
             for p, q in zip(a, b)]
    return to_numpy(agree[0] & agree[1])


def columns(state, which):
    """The columns ``which`` (an index array) of a state: (h, c), each (L, H, len(which))."""
    return tuple(part[:, :, which] for part in state)


def put_columns(state, which, value):
    """state[..., which] = value, for h and c."""
    for part, new in zip(state, value):
        part[:, :, which] = new


def run_exact_chunks(run, x_chunks, start, guess, xp=np, last: int | None = None):
    """Run the chunks and correct them until each starts where the one before it ends.

    Args:
        run: inference.run-like (x (T, I, B), state) -> (y (T, B), final state), on xp.
        x_chunks: (S, I, P) on xp's device: chunk c's model input in column c.
        start: the true state at chunk 0's first sample, (h, c), each (L, H, 1).
        guess: a state, (h, c), each (L, H, P): what each chunk starts from in pass 1
            (column 0 is replaced by ``start``).
        last: the samples the last chunk holds (the rest of it is padding); default S.

    Returns:
        y: (S, P) on the host, the output of every chunk.
        final: the state after the last chunk's ``last`` samples, (h, c), each (L, H, 1).
        passes: how many passes ran (1: every guess was already right).
    """
    S, _, P = x_chunks.shape
    last = S if last is None else last
    # Where states are recorded: every STRIDE steps, the chunk's end and the stream's end.
    marks = sorted({0, S, last, *range(0, S, STRIDE)})
    state = tuple(xp.array(part, copy=True) for part in guess)     # written below: never the caller's
    put_columns(state, [0], start)
    recorded = [None] * len(marks)              # recorded[k]: every chunk's state at marks[k]
    recorded[0] = tuple(part.copy() for part in state)
    y = np.empty((S, P), np.float32)
    for k in range(1, len(marks)):              # pass 1: every chunk, from its guess
        a, b = marks[k - 1], marks[k]
        y_part, state = run(x_chunks[a:b], state)
        y[a:b] = to_numpy(y_part)
        recorded[k] = tuple(part.copy() for part in state)
    end, stream_end = marks.index(S), marks.index(last)
    passes = 1
    while True:
        # Chunk c > 0 is right when it started where chunk c - 1 ended.
        ends = columns(recorded[end], slice(0, P - 1))
        wrong = np.flatnonzero(~same_state(columns(recorded[0], slice(1, P)), ends, xp)) + 1
        if wrong.size == 0:
            break
        passes += 1
        which = xp.asarray(wrong)
        state = columns(recorded[end], which - 1)
        put_columns(recorded[0], which, state)
        active = np.arange(wrong.size)          # positions in ``wrong`` still running
        for k in range(1, len(marks)):
            a, b = marks[k - 1], marks[k]
            chunks = wrong[active]
            y_part, state = run(x_chunks[a:b][:, :, xp.asarray(chunks)], state)
            y[a:b, chunks] = to_numpy(y_part)
            merged = same_state(state, columns(recorded[k], xp.asarray(chunks)), xp)
            put_columns(recorded[k], xp.asarray(chunks), state)
            # A chunk back on its previous path: the rest of its previous run stands.
            active, state = active[~merged], columns(state, xp.asarray(np.flatnonzero(~merged)))
            if active.size == 0:
                break
    return y, columns(recorded[stream_end], [P - 1]), passes
