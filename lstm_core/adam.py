"""Adam (Kingma & Ba 2015) with bias correction and optional global-norm clipping.

The state is plain data: a step count and dicts of arrays (first and second moment, and
the running average of the parameters when one is kept), named like the parameters, so it
saves into a checkpoint and loads back exactly.

The running average (Polyak-Ruppert averaging, as an exponential moving average) is a
second model that validation scores beside the parameters themselves (lstm_core/run.py
keeps the better): at a constant rate Adam's parameters jitter around where they are
heading, and their average sits nearer the middle and rides out the jump of a bad step.
It gives much of what a decaying rate gives without slowing the learning of what is not
learned yet (README, "Defaults"; RESULTS.md, "Averaged parameters").

Everything stays on the parameters' device: the clipping factor is computed as an array
and applied as an array, never read back to the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .backend import array_module, to_device


@dataclass
class AdamState:
    step: int = 0
    m: dict = field(default_factory=dict)     # first moment, per parameter
    v: dict = field(default_factory=dict)     # second moment, per parameter
    average: dict = field(default_factory=dict)   # running average of the parameters (empty: none kept)

    def copy(self) -> "AdamState":
        """An independent copy (roll-backs and the batch guard keep one)."""
        return AdamState(self.step, {k: v.copy() for k, v in self.m.items()}, {k: v.copy() for k, v in self.v.items()},
                         {k: v.copy() for k, v in self.average.items()})

    def on_device(self, xp) -> "AdamState":
        """Every array moved to ``xp``'s device (in place; returned)."""
        for name in ("m", "v", "average"):
            setattr(self, name, {k: to_device(v, xp) for k, v in getattr(self, name).items()})
        return self

    def to_arrays(self, prefix: str = "adam.") -> dict:
        """Flat name -> array dict for a checkpoint (host or device arrays as they are)."""
        import numpy as np

        out = {f"{prefix}step": np.asarray(self.step, dtype=np.int64)}
        out.update({f"{prefix}m.{k}": v for k, v in self.m.items()})
        out.update({f"{prefix}v.{k}": v for k, v in self.v.items()})
        out.update({f"{prefix}average.{k}": v for k, v in self.average.items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str = "adam.") -> "AdamState":
        state = cls(step=int(arrays[f"{prefix}step"]))
        for key, value in arrays.items():
            if key.startswith(f"{prefix}m."):
                state.m[key[len(prefix) + 2 :]] = value
            elif key.startswith(f"{prefix}v."):
                state.v[key[len(prefix) + 2 :]] = value
            elif key.startswith(f"{prefix}average."):
                state.average[key[len(prefix) + 8 :]] = value
        return state


def global_norm(grads: dict):
    """sqrt of the sum of squares of every gradient: a 0-d array on their device."""
    xp = array_module(next(iter(grads.values())))
    return xp.sqrt(sum((g * g).sum() for g in grads.values()))


def adam_step(params: dict, grads: dict, state: AdamState, lr: float, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8, clip_norm: float | None = None, average: float = 0.0,
              step_scale: dict | None = None):
    """Update ``params`` in place; advances ``state``. Returns the gradients' global norm
    (0-d array, before clipping) for logging.

        g   <- g * min(1, clip_norm / |g|)        (when clip_norm is set)
        m   <- beta1 m + (1 - beta1) g
        v   <- beta2 v + (1 - beta2) g^2
        p   <- p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)
               (times step_scale[name], an array that broadcasts against p, for the parameters it names)
        a   <- a + (1 - d) (p - a),  d = min(average, (1 + t) / (10 + t))   (when average > 0)

    The average starts at the parameters of the first step it sees (a fine-tune's start,
    say), and its decay d grows to ``average`` over the first steps, so that early on it
    follows the parameters instead of dragging the starting point along.
    """
    xp = array_module(next(iter(params.values())))
    norm = global_norm(grads)
    scale = None
    if clip_norm is not None:
        scale = xp.minimum(1.0, clip_norm / (norm + 1e-12)).astype(norm.dtype)
    state.step += 1
    correction1 = 1.0 - beta1 ** state.step
    correction2 = 1.0 - beta2 ** state.step
    for name, p in params.items():
        g = grads[name] if scale is None else grads[name] * scale
        if name not in state.m:
            state.m[name] = xp.zeros_like(p)
            state.v[name] = xp.zeros_like(p)
        m, v = state.m[name], state.v[name]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        step = lr * (m / correction1) / (xp.sqrt(v / correction2) + eps)
        if step_scale is not None and name in step_scale:
            step *= step_scale[name]
        p -= step
    if average > 0.0:
        decay = min(average, (1.0 + state.step) / (10.0 + state.step))
        for name, p in params.items():
            a = state.average.get(name)
            if a is None:
                state.average[name] = p.copy()
            else:
                a += (1.0 - decay) * (p - a)
    return norm
