"""One window's worth of training: warm-up, then an Adam update per TBPTT slice.

A training window is warm-up + K * tbptt steps of B parallel segments:

    | warm-up (no loss, no gradient) | tbptt | tbptt | ... |
      drives the state on from where    one Adam update each, the state carried over
      the window's last prewarm steps   as a constant (truncated BPTT)
      leave it (zero with prewarm 0)

The warm-up brings the recurrent state to what it would be in the middle of the
recording, so the model is not taught to start from silence at every window. It starts
from a state of other audio (warm_up, TrainConfig.prewarm), not from zero, so the model is
not taught to rely on one known start either (as far as those steps reach: a state held
longer than they run can still start near zero).
Arrays in, arrays out: this file knows nothing of audio files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

from .adam import AdamState, adam_step
from .backend import array_module
from .cuda_kernels import DEFAULT_LOOP
from .losses import LossNorms, esr_loss, loss_norms, mse_loss
from .model import ModelConfig, input_step_scale, model_forward, model_backward, valid_chrono, zero_state
from .schedule import SCHEDULES

LOSSES = ("esr", "mse")
DEFAULT_INPUT_LEVEL = 0.0       # dBFS RMS: train.py trains a quieter input as if it were this loud (input_gain_for)
HIGH_GAIN_INPUT_LEVEL = 6.0     # dBFS RMS: the same for a pair whose best linear filter leaves SATURATED_ESR or more
MAX_INPUT_LEVEL = 20.0          # the loudest level one may ask for (+6 is the high-gain default, +12 was measured)
MAX_INPUT_GAIN = 1000.0         # an input at -60 dBFS RMS brought to 0 dBFS, far quieter than any usable capture
LINEAR_ESR = 1e-5               # a pair a linear filter explains this closely (-50 dB) is trained on its input as it
                                # is (default_input_level)
SATURATED_ESR = 0.35            # a pair whose best linear filter leaves at least this (-4.6 dB) is a high-gain one
HIGH_GAIN_HIDDEN = 40           # units: the model size for a high-gain pair with time to train it (default_hidden_size;
                                # 40 plays in the AIDA-X plugin, files/aidax.py)
HIGH_GAIN_HIDDEN_BUDGET = 300.0 # seconds: the least budget that gets it
ENVELOPE_CHRONO = 50.0          # samples: the chrono start for an effect with an envelope (an amp's sag, a compressor):
                                # the best of 20, 50, 200 and 1000 on the amp-like effect; it costs effects with little
                                # memory, so a run races it against the forget bias +1 (race.py; RESULTS.md "Chrono
                                # initialisation", "Racing the two starts")


def input_gain_for(rms: float, level: float = DEFAULT_INPUT_LEVEL) -> float:
    """TrainConfig.input_gain that trains an input of this RMS as if it were at ``level``
    dBFS RMS: 10^(level / 20) / rms, from 1 (an input already that loud, or level -inf:
    left as it is) to MAX_INPUT_GAIN (silence gets the most)."""
    if level == -math.inf:
        return 1.0
    if rms <= 0:
        return MAX_INPUT_GAIN
    return float(min(MAX_INPUT_GAIN, max(1.0, 10.0 ** (level / 20.0) / rms)))


def default_input_level(*linear_esrs: float) -> float:
    """The level train.py trains an input at when not told (dBFS RMS; -inf: as it is),
    from audio_io.linearity.linear_fit_esr of each trained pair (a capture set's rows):

        every pair below LINEAR_ESR          -inf (a clean filter: as it is)
        every pair at SATURATED_ESR or more  HIGH_GAIN_INPUT_LEVEL (an amp, a fuzz)
        otherwise (or an ESR not finite)     DEFAULT_INPUT_LEVEL

    The gain helps an effect that has gain to learn; a clean filter has none, and the
    longer steps cost it precision (RESULTS.md "Model size, validation chunks, ...": the
    input level for a linear pair). An effect that no linear filter explains (the amp-like
    effect, a crunch amp, a fuzz: 0.48 to 0.83 on generated music) learned faster still
    at +6 dBFS, while the overdrives, the compressor and the resonant filter (0.003 to
    0.24) learned worse there at 60 and 120 s, on one piece of music; on another the
    held-out effects disagreed, so the rule rests on the amp-like effect (RESULTS.md "A
    louder input level for high-gain pairs")."""
    if not linear_esrs or not all(math.isfinite(esr) for esr in linear_esrs):
        return DEFAULT_INPUT_LEVEL
    if max(linear_esrs) < LINEAR_ESR:
        return -math.inf
    if min(linear_esrs) >= SATURATED_ESR:
        return HIGH_GAIN_INPUT_LEVEL
    return DEFAULT_INPUT_LEVEL


def default_hidden_size(budget: float | None, *linear_esrs: float) -> int:
    """The LSTM's hidden size train.py builds when not told (no --hidden, --layers or
    --init): HIGH_GAIN_HIDDEN for a high-gain pair (every linear-fit ESR at SATURATED_ESR or
    more, as default_input_level) given a budget of HIGH_GAIN_HIDDEN_BUDGET seconds or more, or
    none (then the run ends by its epochs or patience: it has time); else ModelConfig's 32.

    A bigger model is slower per epoch, so it needs the time to pay off: on 48 s of the
    amp-like effect H = 40 was better than 32 from 120 s on, but on a 216 s capture it was
    behind at 120 s and ahead from 300 s (RESULTS.md "The model size for a high-gain pair");
    a crunch amp and a fuzz gained at 300 s too. Other effects were not measured at 40, so
    they keep 32 (48 cost the compressor at 600 s)."""
    default = ModelConfig().hidden_size
    if not time_for_high_gain_size(budget):
        return default
    return HIGH_GAIN_HIDDEN if default_input_level(*linear_esrs) == HIGH_GAIN_INPUT_LEVEL else default


def time_for_high_gain_size(budget: float | None) -> bool:
    """Whether a run's budget (seconds; None: none) leaves default_hidden_size room for
    HIGH_GAIN_HIDDEN units: none, or HIGH_GAIN_HIDDEN_BUDGET or more. Where it does not, the
    pair need not be fitted for the size."""
    return budget is None or budget >= HIGH_GAIN_HIDDEN_BUDGET


def gain_text(gain: float) -> str:
    """An input gain as the run's note and its report write it: 3 digits, 1000 not 1e+03."""
    return f"{gain:.3g}" if gain < 1000 else f"{gain:.0f}"


def segment_samples(seconds: float, rate: int, tbptt: int) -> int:
    """The window's loss-carrying length in samples: ``seconds`` rounded to whole TBPTT
    slices (at least one), so every update sees tbptt steps."""
    return max(1, round(seconds * rate / tbptt)) * tbptt


@dataclass(frozen=True)
class TrainConfig:
    # Defaults measured for time to quality on two CPU cores (benchmarks/time_to_quality.py):
    # short TBPTT slices give many more updates per second, which wins at every budget
    # measured, and a higher rate than the literature's 5e-3 suits them.
    lr: float = 1e-2              # Adam step size
    warmup: int = 4096            # burn-in steps per window (no loss); 1000 until 2026-12-01 (an amp's sag and
                                  # coupling capacitors take longer to settle: RESULTS.md "New defaults")
    tbptt: int = 256              # steps per update (truncated BPTT length)
    loss: str = "esr"             # "esr" (pre-emphasised ESR + DC) or "mse"
    pre_emphasis: float = 0.85    # a in e[n] - a e[n-1]; 0 turns it off; 0.95 until 2026-12-01
    dc_weight: float = 1.0        # weight of the DC term of the ESR loss
    plain_weight: float = 0.0     # weight of a plain ESR term (no pre-emphasis) added to the ESR loss
    clip_norm: float | None = None  # global gradient-norm limit; None: no clipping
    schedule: str = "constant"    # the learning rate over the run (schedule.py; constant won overall, RESULTS.md)
    guard_batches: bool = True    # undo a batch whose training loss jumps, and cut the rate (spikes.py; CPU)
    undo_floor: float = 1 / 16    # the batch guard halves the rate, but not below this fraction of lr
                                  # (schedule.undo_cut); 0: no floor, as until 2026-12-04 (RESULTS.md "A floor
                                  # under the batch guard's cut")
    probe_batches: bool = True    # after each batch (or few, paced by its work), score a short stretch of validation;
                                  # a jump goes back to the best epoch at half the rate (probe.py; CPU; off with
                                  # rollback_above 0 too). RESULTS.md "A probe after every batch", "The probe judged
                                  # against the whole validation", "The probe paced by its work"
    average: float = 0.998        # decay per update of the parameters' running average, validated beside them (adam.py,
                                  # run.py); 0: none. README "Defaults", RESULTS.md "Averaged parameters"
    rollback_above: float = 6.0   # an epoch after the second whose val ESR is more than this many times the best
                                  # is rolled back to the best and the rate halved (run.py), under every
                                  # schedule, as is one that climbs (run.CLIMB_ABOVE); 0: neither, nor the
                                  # probe (a diverged epoch always is). RESULTS.md "Rolling back a spiked
                                  # epoch", "Epoch 3 judged, and a climb rolled back"
    knob_jitter: float = 0.03     # a conditioned model's knob inputs (0..1 over their range) get noise of this
                                  # deviation, one draw a window: it learns a knob response that is smooth between
                                  # the settings captured (RESULTS.md "Knob jitter"); 0: none. With knob_blend on,
                                  # only rows that have no neighbour to blend with get it
    knob_blend: float = 0.75      # this fraction of a conditioned model's windows is moved to a setting between its
                                  # row's and a neighbouring row's of the same input audio, the target mixed alike
                                  # (audio_io/windows.py; RESULTS.md "Knob blending"); 0: none
    prewarm: int = 4096           # steps at the end of each window run first, from zero, so that the warm-up starts
                                  # from the state other audio left (warm_up); 0: from zero, as until 2026-12-01 noon
                                  # (RESULTS.md "Warming up from elsewhere")
    input_gain: float = 1.0       # the audio input's weights take Adam steps this many times longer
                                  # (model.input_step_scale): training as if the input were this much louder (from a
                                  # start whose audio column is this much smaller: see there), the model unchanged.
                                  # train.py sets input_gain_for(the training input's RMS, --input-level); 1: off
                                  # (README "Defaults"; RESULTS.md "New defaults")
    chrono: float = 0.0           # a fresh model's forget and input biases start as log(u) and -log(u), u uniform in
                                  # [1, chrono - 1] samples: memories of 1 to chrono samples from the start
                                  # (model.init_params); 0: the forget bias +1 (ENVELOPE_CHRONO helps an effect with
                                  # an envelope and costs one with little memory: train.py races the two, race.py)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"the schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.tbptt < 1 or self.warmup < 0 or self.prewarm < 0 or not self.lr > 0:
            raise ValueError("tbptt must be >= 1, warmup and prewarm >= 0, and lr > 0")
        if not 0.0 <= self.average < 1.0:
            raise ValueError(f"the average's decay must be in [0, 1), got {self.average}")
        if not (self.rollback_above == 0.0 or self.rollback_above > 1.0):
            raise ValueError(f"rollback_above must be 0 (never) or above 1, got {self.rollback_above}")
        if not 0.0 <= self.undo_floor <= 1.0:
            raise ValueError(f"the undo floor must be in [0, 1], got {self.undo_floor}")
        if not 0.0 <= self.knob_jitter <= 1.0:
            raise ValueError(f"the knob jitter must be in [0, 1], got {self.knob_jitter}")
        if not 0.0 <= self.knob_blend <= 1.0:
            raise ValueError(f"the knob blend must be in [0, 1], got {self.knob_blend}")
        if not (math.isfinite(self.input_gain) and self.input_gain > 0.0):
            raise ValueError(f"the input gain must be a positive number, got {self.input_gain}")
        if not valid_chrono(self.chrono):
            raise ValueError(f"chrono must be 0 (off) or at least 3 samples, got {self.chrono}")

    def to_dict(self) -> dict:
        return asdict(self)


def slice_loss(y, target, train: TrainConfig, norms: LossNorms | None = None):
    """(loss, dy) of one TBPTT slice: y, target (T, B); ``norms`` of the whole batch
    when this is a part of it (data-parallel training)."""
    if train.loss == "mse":
        return mse_loss(y, target, norms=norms)
    return esr_loss(y, target, pre_emphasis_coef=train.pre_emphasis or None, dc_weight=train.dc_weight, norms=norms,
                    plain_weight=train.plain_weight)


def slice_norms(target, train: TrainConfig) -> LossNorms:
    """The loss denominators of a whole slice target (T, B) (see losses.LossNorms)."""
    return loss_norms(target, pre_emphasis_coef=train.pre_emphasis or None)


MIN_SLICE = 2      # steps: the pre-emphasised error of one step is empty, a loss of 0/0


def slices(T: int, train: TrainConfig):
    """(start, stop) of each TBPTT slice after the warm-up of a window of T steps. A last
    slice shorter than MIN_SLICE joins the one before it."""
    spans = [(start, min(start + train.tbptt, T)) for start in range(train.warmup, T, train.tbptt)]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < MIN_SLICE:
        spans[-2:] = [(spans[-2][0], T)]
    return spans


def warm_up(params: dict, config: ModelConfig, x, train: TrainConfig, workspace=None, gpu_loop: str = DEFAULT_LOOP):
    """The state after the warm-up prefix of x (T, I, B).

    The warm-up starts from the state that the window's own last ``train.prewarm`` steps
    (at most its T - warmup steps after the warm-up) leave, run from zero: a state of other
    audio, not of this point in the recording. A model in a stream never starts from the
    state the audio would have left; one only ever warmed up from zero can learn to rely on
    that start, and hold a wrong state for seconds in a stream (RESULTS.md "Warming up from
    elsewhere"). With prewarm 0, or no warm-up, the state starts from zero. Each column
    uses its own audio, so a batch split across processes (parallel.py) warms up exactly as
    the whole batch does."""
    xp = array_module(x)
    state = zero_state(config, x.shape[2], xp, x.dtype)
    prewarm = max(0, min(train.prewarm, x.shape[0] - train.warmup))
    if train.warmup and prewarm:
        _, state, _ = model_forward(params, config, x[x.shape[0] - prewarm :], state, workspace, gpu_loop)
    if train.warmup:
        _, state, _ = model_forward(params, config, x[: train.warmup], state, workspace, gpu_loop)
    return state


def slice_gradients(params: dict, config: ModelConfig, x, target, state, train: TrainConfig, norms=None,
                    workspace=None, gpu_loop: str = DEFAULT_LOOP):
    """Forward and backward over one TBPTT slice: (loss, grads, final state).

    x (T, I, B), target (T, B); the gradient stops at ``state`` (truncation)."""
    y, state_T, cache = model_forward(params, config, x, state, workspace, gpu_loop)
    loss, dy = slice_loss(y, target, train, norms)
    grads, _, _ = model_backward(dy, cache)
    return loss, grads, state_T


def train_window(params: dict, config: ModelConfig, adam: AdamState, x, target, train: TrainConfig,
                 workspace=None, gpu_loop: str = DEFAULT_LOOP):
    """Warm up, then one Adam update per TBPTT slice. Updates params and adam in place.

    Args:
        x: (T, I, B) input window, T = warmup + a multiple (or not) of tbptt.
        target: (T, B).
        workspace: buffers kept from window to window (see workspace.py); None
            allocates afresh each time.
        gpu_loop: how a GPU runs the recurrence ("step" or "window", cuda_kernels).

    Returns:
        The mean of the slices' losses, a 0-d array on the device (no host sync).
    """
    state = warm_up(params, config, x, train, workspace, gpu_loop)
    total = 0.0
    spans = slices(x.shape[0], train)
    step_scale = input_step_scale(params, train.input_gain)
    for start, stop in spans:
        loss, grads, state = slice_gradients(params, config, x[start:stop], target[start:stop], state, train,
                                             workspace=workspace, gpu_loop=gpu_loop)
        adam_step(params, grads, adam, train.lr, clip_norm=train.clip_norm, average=train.average,
                  step_scale=step_scale)
        total = total + loss
    return total / max(len(spans), 1)
