"""Losses and their gradients, each returning ``(loss, dy)``.

Shapes: y, target (T, B): T time steps of B parallel segments. The first ``warmup``
steps of a window only drive the state (burn-in): they carry no loss and get a zero
gradient, though the gradient of the later steps still flows back through them.

The loss is returned as a 0-d array on the arrays' own device: reading it as a Python
float is a host synchronisation, which the training loop does once per epoch, not per step.

ESR, the error-to-signal ratio of the amp-modelling literature (Wright et al. 2019/2020):

    ESR = sum (y' - t')^2 / sum t'^2,   with the pre-emphasis  y'[n] = y[n] - a y[n-1]

The pre-emphasis filter (a first-order high-pass; a = 0.95 by default here, 0.85 in
TrainConfig) weights the error towards the high frequencies the ear resolves and a plain
ESR underrates. Dividing by the target's energy makes the figure independent of the
level: 0.01 is 1 % of the energy left as error (-20 dB). The DC term, (mean over time of
the error)^2 over the mean energy of the target, punishes an offset the pre-emphasis
cannot see.
"""

from __future__ import annotations

from typing import NamedTuple

from .backend import array_module

ESR_EPS = 1e-10
# The training losses' denominators are at least this mean square per sample (-70 dBFS):
# a slice of digital silence (rests are common in real recordings) would otherwise divide
# by almost nothing, and one huge gradient would upset Adam's scale for thousands of steps.
SILENCE_POWER = 1e-7


class LossNorms(NamedTuple):
    """The denominators of a loss. They depend on the target alone, so a batch split
    across processes computes them once for the whole batch: each part's loss and
    gradient, divided by the whole batch's norms, then add up exactly to the whole's.

    energy: sum of the (pre-emphasised) target squared, at least SILENCE_POWER per sample.
    dc_energy: mean of the target squared, at least SILENCE_POWER (the DC term's denominator).
    count: the number of loss-carrying samples of the whole batch (for MSE).
    columns: B of the whole batch (the DC term averages over columns).
    """

    energy: float
    dc_energy: float
    count: int
    columns: int


def pre_emphasis(signal, coefficient: float):
    """signal[n] - a * signal[n-1] along time (axis 0), for n >= 1: (T-1, B)."""
    return signal[1:] - coefficient * signal[:-1]


def loss_norms(target, warmup: int = 0, pre_emphasis_coef: float | None = 0.95) -> LossNorms:
    """The norms of ``target`` (T, B) as a whole batch (0-d arrays on its device)."""
    xp = array_module(target)
    ref = target[warmup:]
    ref_f = pre_emphasis(ref, pre_emphasis_coef) if pre_emphasis_coef else ref
    # At least one sample's worth of floor: a 1-step slice has no pre-emphasised samples.
    energy = xp.maximum((ref_f * ref_f).sum(), SILENCE_POWER * max(ref_f.size, 1))
    dc_energy = xp.maximum((ref * ref).sum() / max(ref.size, 1), SILENCE_POWER)
    return LossNorms(energy, dc_energy, ref.size, ref.shape[1])


def mse_loss(y, target, warmup: int = 0, norms: LossNorms | None = None):
    """Mean squared error over the steps after ``warmup``. Returns (loss, dy (T, B)).

    With ``norms`` (of a larger batch this one is part of), the mean is over that batch.
    """
    xp = array_module(y)
    err = y[warmup:] - target[warmup:]
    count = err.size if norms is None else norms.count
    loss = (err * err).sum() / count
    dy = xp.zeros_like(y)
    dy[warmup:] = err * (2.0 / count)
    return loss, dy


def esr_loss(y, target, warmup: int = 0, pre_emphasis_coef: float | None = 0.95, dc_weight: float = 0.0,
             norms: LossNorms | None = None, plain_weight: float = 0.0):
    """ESR (optionally pre-emphasised) plus ``dc_weight`` times the DC term, plus
    ``plain_weight`` times the plain ESR (no pre-emphasis: the figure validation reports,
    which sees the low frequencies the pre-emphasis weights down).

    Args:
        y, target: (T, B) prediction and target.
        warmup: number of leading steps without loss.
        pre_emphasis_coef: a in e[n] - a e[n-1]; None or 0 for a plain ESR.
        dc_weight: weight of the DC term (0 leaves it out).
        norms: the denominators of the whole batch when this is a part of it
            (see LossNorms); None computes them from ``target``.

    Returns:
        loss: 0-d array.
        dy: (T, B) gradient of the loss with respect to y (zero in the warm-up).
    """
    xp = array_module(y)
    if norms is None:
        norms = loss_norms(target, warmup, pre_emphasis_coef)
    err = y[warmup:] - target[warmup:]                     # (N, B)
    err_f = pre_emphasis(err, pre_emphasis_coef) if pre_emphasis_coef else err
    loss = (err_f * err_f).sum() / norms.energy

    # d loss / d err_f, then through the filter: err_f[n] = err[n+1] - a err[n].
    g_f = err_f * (2.0 / norms.energy)
    if pre_emphasis_coef:
        g = xp.zeros_like(err)
        g[1:] += g_f
        g[:-1] -= pre_emphasis_coef * g_f
    else:
        g = g_f

    if plain_weight:
        # plain ESR = sum err^2 / sum target^2, that sum being dc_energy * count (LossNorms).
        plain_energy = norms.dc_energy * norms.count
        loss = loss + plain_weight * (err * err).sum() / plain_energy
        g = g + (plain_weight * 2.0 / plain_energy) * err

    if dc_weight:
        # DC = mean over columns of (mean over time of err)^2, over dc_energy.
        N = err.shape[0]
        mean_err = err.mean(axis=0)                         # (B,)
        loss = loss + dc_weight * (mean_err * mean_err).sum() / (norms.columns * norms.dc_energy)
        # d DC / d err[n, b] = 2 mean_err[b] / (columns * N * dc_energy)
        g = g + (dc_weight * 2.0 / (norms.columns * N * norms.dc_energy)) * mean_err[None, :]

    dy = xp.zeros_like(y)
    dy[warmup:] = g
    return loss, dy


def esr(y, target):
    """Plain ESR, sum (y - t)^2 / sum t^2, no pre-emphasis or DC term: the figure
    reported for validation. Any shape; returns a 0-d array."""
    err = y - target
    return (err * err).sum() / ((target * target).sum() + ESR_EPS)
