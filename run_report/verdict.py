"""The verdict on a validation ESR: a grade in plain words, and what to try next.

The thresholds are the community's rule of thumb for amp and pedal captures (the error-
to-signal ratio of the validation audio): below 0.01 great, below 0.035 good, below 0.1
it may sound acceptable, at or above 0.3 something went wrong, most often the two files
are misaligned.
"""

from __future__ import annotations

import math

from lstm_core.files.aidax import AIDAX_PLAYER_SIZES

GRADES = (                       # (upper bound, grade, what it means)
    (0.01, "great", "hard to tell apart from the real thing"),
    (0.035, "good", "close; a careful listener may hear a difference"),
    (0.1, "acceptable", "may sound acceptable, but the difference is audible"),
    (0.3, "poor", "clearly different from the target"),
    (math.inf, "something went wrong", "the model did not learn the effect"),
)


def db(esr: float) -> float:
    """The ESR in decibels (10 log10), floored at -120 dB."""
    return 10.0 * math.log10(max(esr, 1e-12))


def grade(esr: float) -> tuple[str, str]:
    """(grade, meaning) for a validation ESR."""
    for bound, name, meaning in GRADES:
        if esr < bound:
            return name, meaning
    return GRADES[-1][1], GRADES[-1][2]


def larger_size(hidden: int) -> int | None:
    """The model size to suggest above ``hidden`` units: the largest that every AIDA-X build
    plays, up to twice as many (32 -> 64, 40 -> 64, 12 -> 20), so that the advice never leads
    to a file the plugin refuses (2 x 40 = 80 is one only some builds play); the smallest it
    plays where none lies within twice (1 to 3 units -> 8); None from 64 units up, the
    largest size every build plays."""
    above = [size for size in AIDAX_PLAYER_SIZES if size > hidden]
    within_twice = [size for size in above if size <= 2 * hidden]
    return within_twice[-1] if within_twice else (above[0] if above else None)


def advice(esr: float, meta: dict, epochs: int, best_epoch: int, diverged: int = 0) -> list[str]:
    """What to try next, most likely first; empty when the result is great. ``diverged``:
    how many epochs ended with a loss or ESR that was not a finite number."""
    if esr < 0.01:
        return []
    tips = []
    pair = meta.get("pair") or {}
    delay = int(pair.get("delay") or 0)
    uncompensated = abs(delay) > 2 and not pair.get("aligned")
    if delay < 0 and not pair.get("aligned"):
        tips.append(f"Check the alignment: the target LEADS the input by {-delay} samples, which no causal model "
                    f"can learn: check the files, or retrain with --align.")
    elif esr >= 0.3 or uncompensated:
        tips.append(f"Check the alignment: the target lags the input by {delay} sample(s)"
                    + (" (not compensated): retrain with --align." if uncompensated
                       else ". A misaligned pair is the commonest reason a capture trains badly."))
    if diverged:
        lr = (meta.get("train") or {}).get("lr")
        tips.append(f"Lower the learning rate: {diverged} epoch(s) diverged (the loss was not a finite number)"
                    + (f"; try --lr {lr / 2:g}." if isinstance(lr, (int, float)) else "; try a smaller --lr."))
    if best_epoch == 0:
        lr = (meta.get("train") or {}).get("lr")
        tips.append("No epoch beat the model this run started from, so model.npz is that model unchanged: "
                    + (f"fine-tune with a lower learning rate (--lr {lr / 10:g}), " if isinstance(lr, (int, float))
                       else "fine-tune with a lower --lr, ")
                    + "or check that this pair was captured from the same effect and settings.")
    elif best_epoch >= epochs - 2 and not diverged:
        tips.append("Train longer: the validation ESR was still improving when the run stopped "
                    "(raise --budget or --epochs, or continue with --resume).")
    model = meta.get("model") or {}
    fine_tuned = bool((meta.get("options") or {}).get("init"))      # --init fixes the architecture
    larger = larger_size(int(model.get("hidden_size", 32)))
    if larger and not fine_tuned:
        tips.append(f"Try a larger model: --hidden {larger}.")
    if model.get("skip") is False and not fine_tuned:
        tips.append("Try the skip connection (--skip), which lets the LSTM learn only the difference "
                    "from the dry signal.")
    return tips
