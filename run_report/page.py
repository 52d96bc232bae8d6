"""The HTML pages: one run's report, and a comparison of runs. Self-contained: every image
is a PNG and every clip a 16-bit WAV, embedded as base64 data URIs; no script, no network,
one file that opens offline in any browser and can be mailed as it is.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import statistics
from pathlib import Path

import numpy as np
import soundfile as sf

from lstm_core.files.atomic import write_bytes_atomic
from lstm_core.race import heat_text
from lstm_core.training import gain_text

from .figures import comparison_figure, curves_figure, knob_figure, png_bytes, prediction_figure, transient_start
from .run import Run, ReportError, capture_audio, distinct_names, load_run, settings, validation_audio
from .verdict import advice, db, grade

CLIP_SECONDS = 5.0
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
.verdict { font-size: 1.3em; padding: 0.8em 1em; border-radius: 6px; background: #f2f6fa; border-left: 6px solid VAR; }
.verdict b { font-size: 1.2em; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; } td, th { padding: 0.25em 0.8em; text-align: left; }
td[data-value], .compare td { white-space: nowrap; } .compare td.name { white-space: normal; }
.compare td, .compare th { padding: 0.25em 0.5em; }
tr:nth-child(even) { background: #f6f6f6; } thead th { border-bottom: 1px solid #999; }
.players div { margin: 0.4em 0; display: flex; align-items: center; } .players span { width: 8em; }
.note { color: #a33; } code { white-space: nowrap; font-family: ui-monospace, monospace; font-size: 0.95em; }
"""
GRADE_COLORS = {"great": "#2a9d4a", "good": "#6bb536", "acceptable": "#e0a800", "poor": "#e06c00",
                "something went wrong": "#c62828"}


def write_report(folder, data=None) -> Path:
    """Write report.html, curves.png and prediction.png into the run folder; returns the
    page's path. ``data``: the run's dataset when the caller holds it (the run that has
    just trained), else it is read again from the files model.npz names. Raises
    ReportError (missing or damaged run files) or OSError."""
    run = load_run(folder)
    knobs = settings(run)
    if knobs:                                  # a capture set: its extreme settings, and ESR against each knob
        lowest, highest = extreme_settings(knobs, run.meta.get("knobs") or [])
        extremes, audio_missing = capture_audio(run, [lowest, highest], data)
        audio = extremes.get(highest)
        knob_png = png_bytes(knob_figure(knobs, [k.get("name") for k in run.meta.get("knobs") or []]))
    else:
        audio, audio_missing = validation_audio(run, data)
        extremes, knob_png = {}, None
    curves = png_bytes(curves_figure(run))
    prediction = png_bytes(prediction_figure(audio)) if audio is not None else None
    write_bytes_atomic(run.folder / "curves.png", curves)
    if prediction is not None:
        write_bytes_atomic(run.folder / "prediction.png", prediction)
    else:
        (run.folder / "prediction.png").unlink(missing_ok=True)     # an earlier report's, now stale
    page = report_html(run, curves, prediction, audio, audio_missing, knobs, knob_png, extremes)
    path = run.folder / "report.html"
    write_bytes_atomic(path, page.encode("utf-8"))
    return path


def extreme_settings(knobs: list, ranges: list) -> tuple[str, str]:
    """The names of the lowest and highest setting: the rows whose knobs, each scaled to
    0..1 over its range, average lowest and highest."""
    def level(setting):
        scaled = [(setting.knobs.get(k.get("name"), k.get("min")) - k.get("min")) / ((k.get("max") - k.get("min")) or 1)
                  for k in ranges]
        return sum(scaled) / max(len(scaled), 1)

    ordered = sorted(knobs, key=level)
    return ordered[0].name, ordered[-1].name


def report_html(run: Run, curves: bytes, prediction: bytes | None, audio, audio_missing: str, knobs=(),
                knob_png: bytes | None = None, extremes: dict | None = None) -> str:
    name, meaning = grade(run.val_esr)
    diverged = run.diverged_epochs
    tips = advice(run.val_esr, run.meta, run.history[-1]["epoch"], run.best_epoch, len(diverged))
    parts = [f"<h1>What the model learned: {_e(run.name)}</h1>",
             f"<p class='sub'>{_e(str(run.meta.get('date', '')))} &middot; {_e(str(run.folder))}</p>",
             f"<div class='verdict' style='border-left-color: {GRADE_COLORS[name]}'>Validation ESR "
             f"<b id='val-esr' data-value='{run.val_esr!r}'>{run.val_esr:.4g}</b> ({db(run.val_esr):.1f} dB): "
             f"<b>{_e(name)}</b>, {_e(meaning)}.</div>"]
    if tips:
        parts.append("<h3>What to try next</h3><ul>" + "".join(f"<li>{_flags(_e(tip))}</li>" for tip in tips) + "</ul>")
    parts.append("<p class='sub'>ESR is the energy of the error over the energy of the target (pre-emphasised in "
                 "training, plain here). For amp and pedal captures: below 0.01 great, below 0.035 good, below 0.1 "
                 "may sound acceptable, 0.3 or more: something went wrong, often misalignment.</p>")
    parts.append("<h2>Learning curves</h2>" + _img(curves, "training loss and validation ESR per epoch"))
    if diverged:
        parts.append(f"<p class='note'>{len(diverged)} epoch(s) diverged: the loss or ESR was not a finite number "
                     f"(epoch {', '.join(map(str, diverged))}); the curves have gaps there. The model file holds "
                     f"the best epoch before.</p>")
    events = [(row["epoch"], row["event"]) for row in run.history if row.get("event")]
    if events:
        parts.append("<p>What the run did along the way (its learning-rate schedule and roll-backs):</p><ul>"
                     + "".join(f"<li>after epoch {epoch}: {_e(event)}</li>" for epoch, event in events) + "</ul>")
    if knobs:
        parts.append("<h2>Every setting</h2>" + _settings_table(knobs, run.meta.get("knobs") or []))
        parts.append(_img(knob_png, "validation ESR against each knob"))
    parts.append("<h2>Prediction against target</h2>")
    if audio is None:
        parts.append(f"<p class='note'>No waveform, spectra or audio: {_e(audio_missing)}.</p>")
    else:
        if extremes:
            parts.append(f"<p class='sub'>At the highest setting, {_e(list(extremes)[-1])} (the players: the lowest "
                         f"setting first):</p>")
        parts.append(_img(prediction, "waveform overlay, error and spectra"))
        if extremes:
            parts.append("<h2>Listen: A/B at the lowest and the highest setting</h2>"
                         + "".join(f"<h3>{_e(name)}</h3>" + _players(clip) for name, clip in extremes.items()))
        else:
            parts.append("<h2>Listen: A/B</h2>" + _players(audio))
    parts.append("<h2>The run</h2>" + _facts_table(run))
    return _page(f"Report: {run.name}", "\n".join(parts))


def _players(audio) -> str:
    length = min(audio.target.size, int(CLIP_SECONDS * audio.rate))
    start = int(np.clip(transient_start(audio.target, audio.rate) - audio.rate, 0, audio.target.size - length))
    rows = [f"<p class='sub'>The same {length / audio.rate:.1f} s of the validation audio, from "
            f"{start / audio.rate:.2f} s, at its own level.</p><div class='players'>"]
    for label, signal in (("input (dry)", audio.input), ("target", audio.target), ("prediction", audio.prediction)):
        clip = _wav_bytes(signal[start : start + length], audio.rate)
        rows.append(f"<div><span>{label}</span><audio controls preload='metadata' src='data:audio/wav;base64,"
                    f"{base64.b64encode(clip).decode()}'></audio></div>")
    return "".join(rows) + "</div>"


def _settings_table(knobs: list, ranges: list) -> str:
    """One row a setting: its knobs, its val ESR (and dB, grade), trained or held out."""
    names = [k.get("name") for k in ranges]
    head = "".join(f"<th>{_e(str(n))}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{_e(s.name)}</td>" + "".join(f"<td>{s.knobs.get(n, float('nan')):g}</td>" for n in names)
        + f"<td data-value='{s.esr!r}'>{s.esr:.4g}</td><td>{db(s.esr):.1f}</td><td>{_e(grade(s.esr)[0])}</td>"
        f"<td>{'held out: never trained on' if s.held_out else 'trained'}</td></tr>" for s in knobs)
    spans = ", ".join(f"{_e(str(k.get('name')))} {k.get('min'):g} to {k.get('max'):g}" for k in ranges)
    return (f"<p class='sub'>The model's knobs run over {spans} (0 to 1 at its inputs). The run's val ESR is "
            f"over the trained settings together; held-out ones are measured, never trained on.</p>"
            f"<table class='settings'><thead><tr><th>setting</th>{head}<th>val ESR</th><th>dB</th><th>grade</th>"
            f"<th></th></tr></thead>{rows}</table>")


def _facts_table(run: Run) -> str:
    meta, options = run.meta, run.meta.get("options") or {}
    pair, model, train = meta.get("pair") or {}, meta.get("model") or {}, meta.get("train") or {}
    rate = meta.get("sample_rate")
    delay = pair.get("delay")
    notes = [str(note) for note in pair.get("notes") or []]
    rows = [
        ("input", Path(options.get("input") or "?").name),
        ("target", Path(options.get("target") or "?").name),
        ("validation", f"{Path(options['val_input']).name} and {Path(options['val_target']).name}"
                       if options.get("val_input") and options.get("val_target")
                       else f"the last {100 * options.get('val_fraction', 0.2):g} % of the pair"),
        ("sample rate", f"{rate} Hz"),
        ("length", f"{pair['seconds']:.1f} s (training {pair['train_seconds']:.1f} s, validation "
                   f"{pair['val_seconds']:.1f} s)" if "seconds" in pair else "?"),
        ("channel", f"channel {options['channel']}" if options.get("channel") is not None
                    else "mixed down to mono" if any("mixed down" in note for note in notes) else "mono"),
        ("delay found", "?" if not isinstance(delay, int) or not rate else
                        f"{delay} sample(s) ({1000 * delay / rate:.2f} ms), "
                        f"{'compensated (--align)' if pair.get('aligned') else 'not compensated'}"),
        ("model", f"LSTM, {model.get('num_layers')} layer(s) of {model.get('hidden_size')} units, skip "
                  f"{'on' if model.get('skip') else 'off'}, {meta.get('parameters', '?')} parameters"),
        ("started from", Path(options["init"]).name if options.get("init") else _fresh_start(train, meta.get("race"))),
        ("training", f"lr {train.get('lr')} ({train.get('schedule', 'constant')} schedule), batch "
                     f"{options.get('batch')}, segment {options.get('segment')} s, "
                     f"warm-up {train.get('warmup')}{_prewarm(train)}, TBPTT {train.get('tbptt')}"),
        ("input level", _input_level(train)),
        ("model kept", _model_kept(meta, train)),
        ("loss", f"{str(train.get('loss', '?')).upper()}, pre-emphasis {train.get('pre_emphasis')}, "
                 f"DC weight {train.get('dc_weight')}"),
        ("epochs", f"{run.history[-1]['epoch']} (best {run.best_epoch or 'none: the starting model stands'})"),
        ("time", f"{run.history[-1]['seconds']:.1f} s" + (f" (the best model after {meta['trained_seconds']:.1f} s)"
                 if isinstance(meta.get("trained_seconds"), (int, float)) else "")),
        ("samples/s", f"{statistics.median(row['samples_per_s'] for row in run.history):,.0f} (median of epochs)"),
        ("device", meta.get("device", "?")),
    ]
    if options.get("captures"):                 # a capture set: its CSV instead of one pair
        settings_count = len(pair.get("rows") or [])
        rows[:3] = [("capture set", f"{Path(options['captures']).name} ({settings_count} settings)"),
                    ("validation", f"the last {100 * options.get('val_fraction', 0.2):g} % of every setting")]
    rows += [("note", note) for note in notes]
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _fresh_start(train: dict, race: dict | None = None) -> str:
    """A fresh model's start: its gate biases' (model.init_params), where the run recorded
    them, and how the race between the two starts went (lstm_core/race.py), where there was one."""
    chrono = train.get("chrono") or 0
    start = f"random weights, chrono initialisation over 1 to {chrono:g} samples" if chrono else "random weights"
    if not race or not race.get("decided"):
        return start
    esr = dict(zip(race["starts"], race["best_esr"]))
    other = next(s for s in race["starts"] if s != race["won"])
    return (f"{start}; it won a race of {heat_text(race['heat'])} a start against "
            f"{'the chrono initialisation' if other else 'the forget-gate bias +1'} (best val ESR "
            f"{_esr_text(esr[race['won']])} against {_esr_text(esr[other])})")


def _esr_text(esr) -> str:
    """A race's best val ESR ("none": no epoch of its heat had a finite one)."""
    return "none" if esr is None else f"{esr:.3g}"


def _prewarm(train: dict) -> str:
    """The warm-up's start (lstm_core/training.py warm_up); nothing for a run from before
    the setting, whose warm-ups started from zero."""
    prewarm = train.get("prewarm")
    if prewarm is None or not train.get("warmup"):
        return ""
    return f" (prewarm {prewarm}: from the state of other audio)" if prewarm else " (from zero)"


def _input_level(train: dict) -> str:
    """What TrainConfig.input_gain did (train.py --input-level)."""
    gain = train.get("input_gain", 1.0)            # a run from before the setting: as it is
    if not isinstance(gain, (int, float)) or not gain > 0:
        return "?"
    if gain == 1.0:
        return "trained on the input as it is"
    return (f"trained as if the input were {gain_text(gain)} times louder ({20 * math.log10(gain):+.1f} dB): "
            f"Adam's steps on its input weights that many times longer; the model is unchanged")


def _model_kept(meta: dict, train: dict) -> str:
    """Which of the models each epoch validated model.npz holds (lstm_core/run.py)."""
    decay = train.get("average")
    if not decay:
        return "the parameters (no running average kept)"
    kept = "their running average" if meta.get("averaged") else "the parameters themselves"
    return f"{kept}: the better of the parameters and their running average (decay {decay:g}) at the best epoch"


def write_comparison(folders: list, out) -> Path:
    """One page comparing the runs in ``folders``, best validation ESR first. Raises ReportError."""
    if not folders:
        raise ReportError("give at least one run folder")
    unique = list({Path(folder).resolve(): folder for folder in folders}.values())   # a run named twice counts once
    runs = sorted((load_run(folder) for folder in unique), key=lambda run: run.val_esr)
    names = distinct_names([run.folder for run in runs])
    head = ("<thead><tr><th>#</th><th>run</th><th>val ESR</th><th>dB</th><th>grade</th><th>model</th><th>parameters</th>"
            "<th>lr</th><th>batch</th><th>TBPTT</th><th>epochs</th><th>time</th></tr></thead>")
    rows = []
    for rank, (run, name) in enumerate(zip(runs, names), start=1):
        model, train, options = run.meta.get("model") or {}, run.meta.get("train") or {}, run.meta.get("options") or {}
        rows.append(f"<tr class='run'><td>{rank}</td><td class='name'>{_e(name)}</td><td data-value='{run.val_esr!r}'>"
                    f"{run.val_esr:.4g}</td><td>{db(run.val_esr):.1f}</td><td>{_e(grade(run.val_esr)[0])}</td>"
                    f"<td>H={model.get('hidden_size')} x {model.get('num_layers')}, skip "
                    f"{'on' if model.get('skip') else 'off'}</td><td>{run.meta.get('parameters', '?')}</td>"
                    f"<td>{train.get('lr')}</td><td>{options.get('batch')}</td><td>{train.get('tbptt')}</td>"
                    f"<td>{run.history[-1]['epoch']}</td><td>{run.history[-1]['seconds']:.0f} s</td></tr>")
    body = (f"<h1>Comparing {len(runs)} runs</h1><p class='sub'>Best validation ESR first.</p>"
            f"<table class='compare'>{head}{''.join(rows)}</table>"
            + _img(png_bytes(comparison_figure(runs, names)), "validation ESR of every run against training time"))
    out = Path(out)
    write_bytes_atomic(out, _page("Comparing runs", body).encode("utf-8"))
    return out


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{STYLE.replace('VAR', '#888')}</style></head><body>\n{body}\n</body></html>\n")


def _img(png: bytes, alt: str) -> str:
    return f"<p><img alt='{_e(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'></p>"


def _wav_bytes(signal: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(signal, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _flags(text: str) -> str:
    """Command-line flags as code, so a line never breaks inside one ("-" / "-resume")."""
    return re.sub(r"(?<![\w-])(--[a-z][a-z-]*(?: \d+(?:\.\d+)?)?)", r"<code>\1</code>", text)
