"""One run in its folder, start to end: what train.py does, as one call.

    fresh:    check the config, read and check the pair (before any folder exists, so a
              refused run leaves nothing behind), make the folder (the demo writes its pair
              into it), set up the model (random, or --init's)
    resumed:  read the checkpoint, the pair it names (where it is now), the device
    then:     lstm_core.race.train_to_end: the race of a fresh model's two starts (without
              --chrono), then lstm_core.run.train_run (model.npz, checkpoint.npz, history.csv
              every epoch),
              the best model's validation prediction (val_prediction.wav) and the report

Every line for the user goes through the Reporter's ``note``; nothing here prints.
Errors are exceptions with one-line messages (AudioError, ModelFileError, BackendError,
ValueError); an interrupt during training comes back in the Outcome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from audio_io.capture_set import CaptureSetError, read_capture_set
from audio_io.dataset import CaptureDataset, Dataset, load_capture_dataset, load_dataset
from audio_io.demo import KNOB_DEMO_KNOBS, KNOB_DEMO_SETTINGS, knob_demo, pair_file
from audio_io.files import write_audio_atomic
from audio_io.linearity import LINEAR_TAPS
from audio_io.pair import Pair
from lstm_core.backend import get_xp, is_gpu
from lstm_core.devices import DeviceSettings, device_settings
from lstm_core.files.formats import read_model
from lstm_core.files.model_file import ModelFileError
from lstm_core.knobs import model_knobs
from lstm_core.model import ModelConfig
from lstm_core.race import train_to_end
from lstm_core.run import (Progress, Reporter, RunState, db, device_label, load_checkpoint, new_run, parameter_count,
                           predict_validation, validation_errors)
from lstm_core.training import (DEFAULT_INPUT_LEVEL, HIGH_GAIN_HIDDEN_BUDGET, HIGH_GAIN_INPUT_LEVEL, MAX_INPUT_GAIN,
                                default_hidden_size, gain_text, input_gain_for, segment_samples,
                                time_for_high_gain_size)

from .config import (DEMO_RATE, DEMO_SECONDS, KNOB_DEMO_SECONDS, CaptureConfig, ResumeConfig, RunOptions,
                     stop_rule_over)
from .folder import absolute, new_folder_name, prepare_folder, write_demo_pair

SMALL_DELAY = 2          # samples of lag a filter's own group delay can explain


@dataclass
class Outcome:
    folder: Path
    progress: Progress                     # where the run stands now
    reason: str | None = None              # why training stopped ("epochs", "budget", "patience")...
    already_stopped: str | None = None     # ...or why it had stopped before this call
    interrupted: KeyboardInterrupt | None = None   # ...or the interrupt that ended it

    @property
    def model_file(self) -> Path:
        return self.folder / "model.npz"


def run_capture(config: CaptureConfig | ResumeConfig, reporter: Reporter | None = None) -> Outcome:
    """Set up (fresh, demo or resumed) and train to the end; see the module doc."""
    reporter = reporter or Reporter()
    if isinstance(config, ResumeConfig):
        folder, state, options, data, xp = _resume(config, reporter)
        start_state = None
    else:
        folder, state, options, data, xp, start_state = _start(config, reporter)
    device = options.device_settings("gpu" if is_gpu(xp) else "cpu")
    already = state.rule.reached(state.progress)
    if already:
        reporter.note(f"this run has already stopped ({already}): raise --epochs, --budget or --patience to go on")
        return Outcome(folder, state.progress, already_stopped=already)
    facts = _describe(state, data, device, reporter)
    going = [state]         # the run that goes on: after a race, maybe its second start's
    try:
        state, reason = train_to_end(state, options.seed, data, device, folder, facts, reporter, start_state,
                                     race=isinstance(config, CaptureConfig) and config.races, going_on=going.append)
    except KeyboardInterrupt as exc:
        return Outcome(folder, going[-1].progress, interrupted=exc)
    _finish(folder, state, data, device, xp, reporter)
    return Outcome(folder, state.progress, reason=reason)


def _start(config: CaptureConfig, reporter: Reporter):
    config.check()
    xp = get_xp(config.device or "auto")
    rule = config.stop_rule()
    train = config.train_config()
    name = {"pair": "demo", "knobs": "demo-knobs"}.get(config.demo) or Path(config.captures or config.target).stem
    folder = Path(config.out) if config.out else new_folder_name(name)
    params = init_rate = start_state = None
    capture_set = read_capture_set(config.captures) if config.captures else None
    knob_names = capture_set.knob_names if capture_set else KNOB_DEMO_KNOBS if config.demo == "knobs" else ()
    init_ranges = None
    if config.init:
        model, params, init_rate, start_state, init_ranges = _initial_model(config, reporter, knob_names)
    defaults = device_settings("gpu" if is_gpu(xp) else "cpu", batch=config.batch, segment=config.segment,
                               processes=config.processes)
    options = RunOptions(absolute(config.input), absolute(config.target), absolute(config.val_input),
                         absolute(config.val_target), config.val_fraction, defaults.segment, defaults.batch, config.seed,
                         config.channel, config.trim, config.align, defaults.processes, config.device or "auto",
                         absolute(config.init), absolute(config.captures),
                         {**{name: list(span) for name, span in (init_ranges or {}).items()},   # the --init model's,
                          **{name: [low, high] for name, low, high in config.knob_range}} or None,  # or as given
                         list(config.holdout) or None)
    data = None if config.demo else _load(options, train, reporter)        # before any folder exists
    prepare_folder(folder, config.force)
    if config.demo == "knobs":
        captures = knob_demo(folder, KNOB_DEMO_SECONDS, DEMO_RATE, config.seed)
        reporter.note(f"demo: wrote {captures} and the {len(KNOB_DEMO_SETTINGS)} recordings it lists (a pedal's drive "
                      f"and tone knobs, {KNOB_DEMO_SECONDS} s each at {DEMO_RATE} Hz)")
        options = replace(options, captures=absolute(captures))
        data = _load(options, train, reporter)
    elif config.demo:
        demo_input, demo_target = write_demo_pair(folder, config.seed)
        reporter.note(f"demo: wrote {demo_input} and {demo_target} ({DEMO_SECONDS} s at {DEMO_RATE} Hz)")
        options = replace(options, input=demo_input, target=demo_target)
        data = _load(options, train, reporter)
    if init_rate and init_rate != data.rate:
        reporter.note(f"warning: {config.init} was trained at {init_rate} Hz and the pair is {data.rate} Hz: its "
                      f"weights fit another rate, so fine-tuning starts further from the goal")
    a_set = isinstance(data, CaptureDataset)
    if a_set:                                 # the ranges used, kept: a resume scales the knobs the same way
        options = replace(options, knob_ranges={name: list(span) for name, span in data.ranges.items()})
    size_from_pair = config.size_from_pair and time_for_high_gain_size(rule.budget)
    pair_esrs = data.linear_esrs if config.level_from_pair or size_from_pair else ()    # a fit takes a while
    if not config.init:
        model = _fresh_model(config, len(knob_names), rule.budget, pair_esrs, a_set, reporter)
    level, linear_esrs = data.input_rms, pair_esrs if config.level_from_pair else ()
    wanted = config.resolved_input_level(*linear_esrs)
    train = replace(train, input_gain=input_gain_for(level, wanted))
    if wanted == -math.inf and linear_esrs:
        reporter.note(f"input level: a {LINEAR_TAPS}-tap linear filter reproduces the target "
                      f"{'of every trained row to an ESR of at most ' if a_set else 'to an ESR of '}"
                      f"{max(linear_esrs):.2g}, so the input is trained as it is: the input level's gain helps an "
                      f"effect with gain, but costs a clean filter precision (--input-level 0 applies it anyway)")
    elif wanted == HIGH_GAIN_INPUT_LEVEL and linear_esrs:
        reporter.note(f"input level: the best {LINEAR_TAPS}-tap linear filter explains the target only to an ESR of "
                      f"{min(linear_esrs):.2g}{' or more on every trained row' if a_set else ''} (a high-gain "
                      f"effect), so the input is trained as if at {HIGH_GAIN_INPUT_LEVEL:+g} dBFS RMS rather than "
                      f"{DEFAULT_INPUT_LEVEL:g} dBFS RMS (--input-level {DEFAULT_INPUT_LEVEL:g} keeps "
                      f"{DEFAULT_INPUT_LEVEL:g} dBFS RMS)")
    if train.input_gain != 1.0:
        level_db = 20 * math.log10(max(level, 1e-12))
        asked = f"{wanted:+g}" if wanted > 0 else f"{wanted:g}"
        reached = (f"{asked} dBFS RMS" if train.input_gain < MAX_INPUT_GAIN else   # a near-silent input: the most
                   f"{level_db + 20 * math.log10(MAX_INPUT_GAIN):.1f} dBFS RMS (the most it is raised)")
        reporter.note(f"input level: the training input is at {level_db:.1f} dBFS RMS; "
                      f"the model's input weights learn as if it were at {reached}, "
                      f"{gain_text(train.input_gain)} times louder (their steps that many times longer; the model and "
                      f"its files are unchanged; --input-level off trains on it as it is)")
    state = new_run(model, train, rule, options.to_dict(), config.seed, params)
    return folder, state, options, data, xp, start_state


def _resume(config: ResumeConfig, reporter: Reporter):
    folder = Path(config.folder)
    state, meta = load_checkpoint(folder)
    try:
        options = RunOptions.from_dict(state.options)
    except TypeError as exc:
        raise ModelFileError(f"{folder / 'checkpoint.npz'}: the checkpoint is damaged or from another version "
                             f"({exc!r})") from None
    if config.input and options.captures:
        raise ValueError("--resume of a capture-set run reads its CSV again: leave out INPUT and TARGET")
    if config.input:
        options = replace(options, input=absolute(config.input), target=absolute(config.target))
    elif not options.captures:               # a moved or renamed run folder still holds its demo pair
        located = options.pair().located(folder)
        options = replace(options, input=located.input, target=located.target)
    else:                                    # ...or the knob demo's capture set
        options = replace(options, captures=pair_file(options.captures, folder))
    if config.device:
        options = replace(options, device=config.device)
    if options.captures and options.knob_ranges:           # the knobs the run started with, and no others
        names = read_capture_set(options.captures).knob_names
        if list(names) != list(options.knob_ranges):
            raise CaptureSetError(f"{options.captures}: its knob columns ({', '.join(names)}) are not the ones the run "
                                  f"started with ({', '.join(options.knob_ranges)})")
    state.rule = stop_rule_over(meta["rule"], config)    # a flag out of range is the flag's error
    state.options = options.to_dict()
    xp = get_xp(options.device)
    reporter.note(f"resuming {folder} after epoch {state.progress.epoch} (best val ESR {state.progress.best_esr:.4g})")
    return folder, state, options, _load(options, state.train, reporter), xp


def _load(options: RunOptions, train, reporter: Reporter) -> Dataset | CaptureDataset:
    """The run's dataset, with its notes and the delay found told; raises AudioError."""
    if options.captures:
        return _load_capture_set(options, train, reporter)
    data = load_dataset(options.pair())
    for note in data.pair.notes:
        reporter.note(f"note: {note}")
    reporter.note(delay_message(data.pair))
    data.check_window(train.warmup, segment_samples(options.segment, data.rate, train.tbptt))
    return data


def _load_capture_set(options: RunOptions, train, reporter: Reporter) -> CaptureDataset:
    """A capture set's dataset, each row's findings told with its name in front."""
    capture_set = read_capture_set(options.captures)
    ranges = {name: tuple(values) for name, values in (options.knob_ranges or {}).items()}
    data = load_capture_dataset(capture_set, options.pair(), ranges, tuple(options.holdout or ()))
    for recording in data.recordings:
        for note in recording.pair.notes:
            reporter.note(f"note: {recording.name}: {note}")
        reporter.note(f"{recording.name}: {delay_message(recording.pair)}")
    knobs = ", ".join(f"{name} {low:g} to {high:g}" for name, (low, high) in data.ranges.items())
    reporter.note(f"capture set: {len(data.recordings)} settings of {knobs} (scaled to 0..1 for the model)"
                  + (f"; held out: {', '.join(options.holdout)}" if options.holdout else ""))
    if train.knob_blend:
        alone = data.unblendable
        if len(alone) == len(data.training):
            reporter.note("capture set: no two settings of one dry input lie next to each other along one knob, so no "
                          f"window is blended between settings; knob jitter {train.knob_jitter:g} instead (record "
                          "settings one knob apart from one dry input to blend them)")
        elif alone:
            reporter.note(f"capture set: {', '.join(alone)}: no neighbouring setting of the same dry input, so knob "
                          f"jitter {train.knob_jitter:g} there instead of blending (the other settings are blended)")
        else:
            reporter.note(f"capture set: windows blended between neighbouring settings (--knob-blend "
                          f"{train.knob_blend:g} of them)")
    data.check_window(train.warmup, segment_samples(options.segment, data.rate, train.tbptt))
    return data


def _fresh_model(config: CaptureConfig, knobs: int, budget: float | None, linear_esrs: tuple, a_set: bool,
                 reporter: Reporter) -> ModelConfig:
    """The architecture of a model trained from random weights: as given, or where the size
    is the pair's to decide, training.default_hidden_size's (told when it is not the usual)."""
    defaults = ModelConfig()
    hidden = config.hidden or defaults.hidden_size
    if config.size_from_pair:
        hidden = default_hidden_size(budget, *linear_esrs)
        if hidden != defaults.hidden_size:
            reporter.note(f"model size: the target is far from linear (a high-gain effect: the best {LINEAR_TAPS}-tap "
                          f"linear filter leaves an ESR of {min(linear_esrs):.2g}"
                          f"{' or more on every trained row' if a_set else ''}) and "
                          f"{'there is no time budget' if budget is None else f'the budget is {budget:g} s'}, so the "
                          f"LSTM has {hidden} units rather than {defaults.hidden_size}: such an effect learned better "
                          f"with them given {HIGH_GAIN_HIDDEN_BUDGET:g} s or more (--hidden {defaults.hidden_size} "
                          f"keeps {defaults.hidden_size})")
    return ModelConfig(input_size=1 + knobs, hidden_size=hidden, num_layers=config.layers or defaults.num_layers,
                       skip=defaults.skip if config.skip is None else config.skip)


def _initial_model(config: CaptureConfig, reporter: Reporter, knob_names: tuple = ()
                   ) -> tuple[ModelConfig, dict, int | None, tuple | None, dict | None]:
    """(config, params, sample rate, the state its streams start from, its knob ranges or
    None) of the --init model; its architecture stands, so model flags must agree, and its
    inputs must be the audio and ``knob_names`` (a capture set's knobs, the same names in
    the same order when the model names its knobs)."""
    loaded = read_model(config.init)
    model = loaded.config
    for note in loaded.notes:
        reporter.note(f"note: {note}")
    given = {"--hidden": (config.hidden, model.hidden_size), "--layers": (config.layers, model.num_layers),
             "--skip": (config.skip, model.skip)}
    for flag, (value, stored) in given.items():
        if value is not None and value != stored:
            raise ValueError(f"--init {config.init} brings its own architecture (hidden {model.hidden_size}, layers "
                             f"{model.num_layers}, skip {'on' if model.skip else 'off'}): leave out {flag}")
    if any(loaded.gains_db):
        raise ValueError(f"{config.init}: sets in_gain/out_gain ({loaded.gains_db[0]:g} / {loaded.gains_db[1]:g} dB) "
                         f"around the model, which a fine-tune here would not keep: set them to 0 to fine-tune it")
    if model.input_size != 1 + len(knob_names):
        if not knob_names:
            raise ValueError(f"{config.init}: a conditioned model ({model.input_size - 1} input(s) besides the audio, "
                             f"such as a knob): fine-tune it on a capture set (--captures) with as many knobs")
        raise ValueError(f"{config.init}: takes {model.input_size - 1} input(s) besides the audio, and the capture set "
                         f"has {len(knob_names)} knob(s) ({', '.join(knob_names)})")
    knobs = model_knobs(loaded.meta) if loaded.kind == "npz" else None
    if knobs and [k.name for k in knobs] != list(knob_names):
        raise ValueError(f"{config.init}: its knobs are {', '.join(k.name for k in knobs)}, the capture set's are "
                         f"{', '.join(knob_names)}: the same names, in the same order, are needed")
    reporter.note(f"init: starting from {config.init} (LSTM H={model.hidden_size} x {model.num_layers} layer(s), skip "
                  f"{'on' if model.skip else 'off'}{f', {loaded.sample_rate} Hz' if loaded.sample_rate else ''})")
    ranges = {k.name: (k.low, k.high) for k in knobs} if knobs else None
    return model, loaded.params, loaded.sample_rate, loaded.initial_state, ranges


def _describe(state: RunState, data: Dataset, device: DeviceSettings, reporter: Reporter) -> dict:
    """Tell the pair and the model; return the facts the run's files record."""
    train, model = state.train, state.model
    segment = segment_samples(device.segment, data.rate, train.tbptt)
    windows = data.window_count(segment, train.warmup)
    rate = data.rate
    facts = data.facts
    what = "capture set" if isinstance(data, CaptureDataset) else "pair"
    reporter.note(f"{what}: {facts['seconds']:.1f} s at {rate} Hz; training on {facts['train_seconds']:.1f} s "
                  f"({windows} windows of {train.warmup} + {segment} samples), validating on "
                  f"{facts['val_seconds']:.1f} s")
    count = parameter_count(state.params)
    label = device_label(device)
    reporter.note(f"model: LSTM H={model.hidden_size} x {model.num_layers} layer(s), skip "
                  f"{'on' if model.skip else 'off'}, {count} parameters; training on {label}")
    knobs = {"knobs": [{"name": name, "min": low, "max": high} for name, (low, high) in data.ranges.items()]} \
        if isinstance(data, CaptureDataset) else {}
    return {"segment_samples": segment, "pair": facts, "device": label, "parameters": count, **knobs}


def _finish(folder: Path, state: RunState, data: Dataset, device: DeviceSettings, xp, reporter: Reporter):
    """The best model's validation prediction (a capture set: each setting's val ESR, told),
    and the report (which never fails the run)."""
    chunk = state.progress.validation_chunk    # cut as the run's next validation would be (run.next_validation_chunk)
    if isinstance(data, CaptureDataset):
        _, each = validation_errors(state.best_params, state.model, data.validation, device, xp, chunk=chunk)
        for recording in data.recordings:
            knobs = ", ".join(f"{n}={v:g}" for n, v in zip(data.capture_set.knob_names, recording.knobs))
            reporter.note(f"val ESR {each[recording.name]:.4g} ({db(each[recording.name]):.1f} dB)  {recording.name} "
                          f"({knobs}){'  held out: never trained on' if recording.held_out else ''}")
        write_run_report(folder, reporter, data)
        return
    y_best = predict_validation(state.best_params, state.model, data.validation[0], device, xp, chunk=chunk)
    write_audio_atomic(folder / "val_prediction.wav", y_best, data.rate, "FLOAT")
    write_run_report(folder, reporter, data)


def write_run_report(folder: Path, reporter: Reporter, data=None):
    """report.html for the run (``data``: its dataset, when at hand, so that the pair is
    not read again); never fails the run: the model and checkpoint are already written,
    so a report that cannot be made costs one line."""
    try:
        import run_report

        reporter.note(f"report: {run_report.write_report(folder, data)}")
    except Exception as exc:                     # noqa: BLE001 - anything at all: the run has succeeded
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reporter.note(f"report: not written ({reason}); try again with  python report.py {folder}")


def delay_message(pair: Pair) -> str:
    """What the delay between input and target means for the user, in one line."""
    ms = 1000.0 * pair.delay / pair.rate
    if pair.aligned:
        side = "behind" if pair.delay > 0 else "ahead of"
        return (f"alignment: the target was {abs(pair.delay)} samples ({abs(ms):.2f} ms) {side} the input; "
                f"compensated (--align)")
    if pair.delay < 0:
        return (f"alignment: warning: the target LEADS the input by {-pair.delay} samples ({-ms:.2f} ms), which no "
                f"causal model can learn; check the files, or pass --align")
    if pair.delay > SMALL_DELAY:
        return (f"alignment: the target lags the input by {pair.delay} samples ({ms:.2f} ms); if that is latency "
                f"and not the effect, pass --align (misaligned pairs are the commonest reason a capture trains badly)")
    return f"alignment: delay {pair.delay} sample(s), as filters themselves delay: nothing to do"


def summary(outcome: Outcome) -> str:
    """The run's closing line: best val ESR, epochs, time, why it stopped, the model file (the
    epochs are the run's, a race's winning heat included; the time is all of it, both heats)."""
    progress = outcome.progress
    return (f"best val ESR {progress.best_esr:.4g} ({db(progress.best_esr):.1f} dB) at epoch {progress.best_epoch}; "
            f"{progress.epoch} epochs, {progress.seconds:.1f} s ({outcome.reason}); model: {outcome.model_file}")
