"""Model cards: ``models/<name>/README.md``, rendered from what the model folder holds.

    python3 -m edgetp.kws.card models/kws-mcu models/kws-paper          # write the cards
    python3 -m edgetp.kws.card --check models/kws-mcu models/kws-paper  # exit 1 if one is stale

Every figure comes from a file, none from this module:

- ``model.npz``: network, parameters, recipe, pretraining metrics, hash;
- ``results/*.json``: one table row per file (``edgetp finetune --json``), so a new results
  file is a new row; ``results/real-dev.json`` (``edgetp real-dev``) is the real-speech section;
- the memory plan of the model's recorded device quantization (``recipe["fixed"]``;
  ``firmware_gen.memplan`` over the device layout, as ``edgetp export --c`` prints it);
- ``device/*.json``: whole-firmware figures measured on a target (``edgetp hil --json``);
- ``purpose.md`` and ``notes.md``: the words around the figures (documentation, kept by hand).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from edgetp.errors import EdgetpError
from edgetp.model import Model, load_model
from edgetp.data.real import MIX_DEFAULTS
from edgetp.data.synth import DEFAULTS
from edgetp.kws.real_dev import DEVICE, NAME as REAL_DEV, TARGETS, checked
from edgetp.kws.train import augment_words
from firmware_gen.layout import device_layout
from firmware_gen.memplan import group_totals, memory_plan, totals
from firmware_gen.qmodel import labels_of, qmodel_for, qmodel_hash

SHOTS_ORDER = {"1": 0, "5": 1, "all": 2}


def _row(label: str, r: dict) -> str:
    f = lambda k: f"{r[k]:.1f} ± {r.get(k + '_std', 0):.1f}" if k in r else "n/a"
    return (
        f"| {label} | {r['shots']} | {f('query_acc_before')} | {f('query_acc_after')} | "
        f"{f('test_acc_before')} | {f('test_acc_after')} | {f('finetune_only_acc')} |"
    )


def label(r: dict) -> str:
    """A result row's setting, from the recipe its JSON recorded."""
    rec = r["recipe"]
    if rec["epochs"] == 0:  # measured before any fine-tuning: the recipe's other settings played no part
        return "zero-shot (no fine-tuning)" + (" of the integer model (`--fixed`)" if r.get("fixed") else "")
    who = "readout only" if rec["train"] == "readout" else "TP, all layers"
    if r.get("fixed"):
        widths = (
            f"int{r.get('wbits', 16)} readout, int{r['hbits']} frozen hidden layers in flash"
            + (" (one scale per row)" if r.get("row_scales") else "")
            if r.get("frozen_hidden")
            else f"int{r.get('wbits', 16)}"
        )
        who = f"integer {who} (`--fixed`, {widths}, {r.get('int_optimizer', 'colnorm')})"
    parts = [
        who,
        "class targets" if rec["targets"] == "classes" else "batch rule",
        f"batch {rec['batch']}",
        f"{'' if r.get('fixed') else rec['optimizer'] + ' '}lr {rec['lr']:g}",
        f"{rec['epochs']} ep.",
    ]
    if rec.get("update_every", 1) > 1:
        parts.append(f"learns every {rec['update_every']} frames")
    if rec.get("rehearsal"):
        parts.append(f"rehearsal {rec['rehearsal']:g}")
    aug = augment_words(rec)
    return ", ".join([*parts, aug] if aug else parts)


def result_rows(d: Path, model_hashes=None) -> list[tuple[str, dict]]:
    """(label, result) per ``results/*.json``, by setting, then 1 / 5 / all shots; a row whose file
    records another ``model_hash`` than the card's model (``Model.hashes``: its file, or one it was
    relabelled from) is flagged."""
    key = lambda p: (p.stem.rsplit("-", 1)[0], SHOTS_ORDER.get(p.stem.rsplit("-", 1)[-1], 9), p.stem)
    files = sorted((f for f in (d / "results").glob("*.json") if f.name != REAL_DEV), key=key)  # its own section
    ok = {model_hashes} if isinstance(model_hashes, str) else set(model_hashes or ())
    stale = lambda r: " (measured on another model: re-run)" if ok and r.get("model_hash") not in (None, *ok) else ""
    return [(_split(f, r) + label(r) + stale(r), r) for f, r in ((f, json.loads(f.read_text())) for f in files)]


def _split(f: Path, r: dict) -> str:
    """Which speakers a results file reports (the honest protocol's file names: ``dev-*`` were used for
    choosing, ``test-*`` are reported and counted in the test ledger) and which other speakers measured
    forgetting (files without the record measured the testing list); empty for a single held-out speaker's file."""
    tag = f.stem.split("-", 1)[0]
    who = {"dev": "**dev** speakers (used for choosing)", "test": "**test** speakers (reported; see the test ledger)"}
    if tag not in who:
        return ""
    return f"{who[tag]}, others = {(r.get('others') or {}).get('split', 'testing')} list: "


LEDGER_LINES = re.compile(r"rendered from its first (\d+) lines")


def ledger_text(d: Path, model: Model, upto: int | None = None) -> list[str]:
    """The card's test-ledger paragraph (edgetp.kws.ledger): how often the test group was measured for this
    model's weights and every such line in order, marking those that are the table's test rows (the lines
    before one are the figures that preceded it). ``upto``: the ledger's first lines only, as a card rendered
    before later lines were appended (the ledger is append-only: a user's run of the main job adds a line, and
    the committed card stays what it was, saying how many lines it counted)."""
    from edgetp.kws.ledger import NAME, of_model, read

    entries = read(d / "results" / NAME)[:upto]
    if not (model.recipe or {}).get("test_speakers"):
        return []
    mine = of_model(entries, model)
    if not mine:
        return [f"Test ledger (`results/{NAME}`): the test group has not been measured for these weights.", ""]

    rows = [r for f, r in ((f, json.loads(f.read_text())) for f in sorted((d / "results").glob("test-*.json")))]
    shown = lambda e: any(
        r.get("model_hash") == e["model_hash"]
        and r["recipe"] == e["recipe"]
        and r["query_acc_after"] == e["query_after"]
        and r["test_acc_after"] == e["others_after"]
        for r in rows
    )

    def fig(e: dict) -> str:
        zs = e["recipe"].get("epochs") == 0
        what = "zero-shot only" if zs else label(e)
        res = (
            f"query {e['query_before']:.1f}"
            if zs
            else f"query {e['query_before']:.1f} → {e['query_after']:.1f}"
            f", others {e['others_before']:.1f} → {e['others_after']:.1f}"
        )
        return (
            f"{e['date'][:16].replace('T', ' ')}, {what}, {len(e['speakers'])} × {e['seeds']}, {e['shots']} "
            f"shots: {res}"
            + (" (backfilled)" if e.get("backfilled") else "")
            + (" **= the table's test row**" if shown(e) else "")
        )

    tuned = sum(e["recipe"].get("epochs") != 0 for e in mine)
    back = sum(bool(e.get("backfilled")) for e in mine)
    n = lambda k, one, many: f"{k} {one if k == 1 else many}"
    lines = [
        f"Test ledger (`results/{NAME}`; this card was rendered from its first {len(entries)} lines): the test "
        f"group was measured **{n(len(mine), 'time', 'times')}** for "
        f"these weights ({n(tuned, 'fine-tuning run', 'fine-tuning runs')}, {len(mine) - tuned} zero-shot only; "
        f"{back} backfilled from the git history). In order; the lines before a table row are the figures that "
        "preceded it:",
        "",
    ]
    lines += [f"{i}. {fig(e)}" for i, e in enumerate(mine, 1)]
    other = len(entries) - len(mine)
    return (
        lines
        + [
            "",
            f"{n(other, 'further line', 'further lines')} measured other weights (earlier models of "
            "this folder): not counted.",
        ]
        * bool(other)
        + [""]
    )


def real_section(d: Path, model: Model) -> list[str]:
    """The "Real speech (development figures)" section from ``results/real-dev.json`` (``edgetp real-dev``); none
    without the file. A file that does not parse is an EdgetpError naming it."""
    from edgetp.kws.real_dev import NAME

    f = d / "results" / NAME
    if not f.is_file():
        return []
    try:
        r = json.loads(f.read_text())
    except ValueError as exc:
        raise EdgetpError(f"{f}: not JSON ({exc})") from None
    return real_lines(f, r, model.hashes())


def real_lines(path: Path, r: dict, model_hashes) -> list[str]:
    """The card's "Real speech (development figures)" section from results file ``path`` (``r``: its content);
    flagged when measured on another model file (``model_hashes``: ``Model.hashes()``)."""
    r = checked(path, r)
    d, z = r["data"], r["zero_shot"]
    stale = "" if r["model_hash"] in model_hashes else " **Measured on another model: re-run.**"
    rule = "the integer rule the device runs (`--fixed`)" if r.get("fixed") else "the float rule"
    excl = d.get("excluded_speakers") or []
    who = (
        f"{len(excl)} real speakers that trained the model are left out"
        if excl
        else "the model was trained on none of them"
    )
    lines = [
        "## Real speech (development figures)",
        "",
        f"Real Google Speech Commands clips (`{d['real'].get('name')}`, {_n(d['clips'])} clips of "
        f"{_n(d['speakers'])} speakers, CC BY 4.0; docs/data.md, \"Real speech\"); {who}. Measured with "
        f"{rule}; the figures are `results/{path.name}`'s.{stale}",
        "",
        "| measure | clips / speakers | before | after |",
        "|---|---|---|---|",
        f"| zero-shot top-1, all words | {_n(z['clips'])} clips, {_n(z['speakers'])} speakers | {z['top1']:.1f} % | |",
        f"| zero-shot top-1, ten core words | {_n(z['core_clips'])} clips | {z['core_top1']:.1f} % | |",
    ]
    for p in sorted(r["personalisation"], key=lambda p: (isinstance(p["shots"], str), str(p["shots"]).zfill(4))):
        k = "all-shot (the whole support pool)" if p["shots"] == "all" else f"{p['shots']}-shot"
        if "error" in p:
            lines.append(f"| {k} personalisation | not measurable: {p['error']} | | |")
            continue
        cells = f"{len(p['speakers'])} speakers × {r['seeds']} seeds"
        lines += [
            f"| {k} personalisation, query (the speaker's held-out clips) | {cells} | "
            f"{p['query_acc_before']:.1f} ± {p.get('query_acc_before_std', 0):.1f} % | "
            f"{p['query_acc_after']:.1f} ± {p['query_acc_after_std']:.1f} % |",
            f"| {k}, other real speakers (choose part) | {_n(p['others']['utterances'])} clips, "
            f"{len(p['others'].get('speakers') or [])} speakers | {p['test_acc_before']:.1f} % | "
            f"{p['test_acc_after']:.1f} % |",
        ]
    first = next((p for p in r["personalisation"] if "error" not in p), {})
    setting = {"recipe": r["recipe"], "fixed": r.get("fixed"), **{k: first[k] for k in DEVICE if k in first}}
    lines += [
        "",
        f"Personalisation: the adaptation speakers (≥ 4 clips of each core word; support = shots per word "
        "from 80 % of their clips, query = the other 20 %), the model's recorded fine-tuning recipe: "
        f"{label(setting)}"
        + (f"; {r['recipe_note']}" if r.get("recipe_note") else "")
        + ". Mean ± std over speakers × seeds.",
        "",
        "**Development figures**: every one of these speakers was used for choosing (recipes, "
        f"candidates). The unseen-speaker targets of issue 26 ({TARGETS}) are measured outside the project, "
        "on other real speakers.",
        "",
        "```bash",
        r["command"],
        "models/rebuild.sh real-dev   # the shipped models; EDGETP_REAL_DEV, default ../shared/audio/gsc-real-dev",
        "```",
        "",
    ]
    return lines


def _n(v) -> str:
    return f"{int(v):,d}"


def _b(n) -> str:
    """A count with thousands separators (rounded), or n/a when the file lacks it."""
    return f"{round(n):,d}" if isinstance(n, (int, float)) and not isinstance(n, bool) and n == n else "n/a"


def memory_text(d: Path, model: Model) -> str:
    """The device section: the memory plan of the recorded quantization, then measured images."""
    fixed = (model.recipe or {}).get("fixed")
    qm, _notes = qmodel_for(model)
    targets = (fixed or {}).get("targets", "classes")
    lay = device_layout(qm, targets)
    rows = memory_plan(lay, labels_of(qm))
    tot, grp = totals(rows), group_totals(rows)
    if not fixed:
        n = model.n_params()
        return (
            f"Float only (the model records no device quantization, `recipe[\"fixed\"]`): {n:,} trainable "
            f"parameters ({4 * n / 1e6:.1f} MB as float32); quantized to int{qm.wbits}, its memory plan "
            f"would need {tot['ram']:,} B of RAM."
        )
    parts = lambda section: ", ".join(f"{g} {v:,}" for (s, g), v in grp.items() if s == section)
    rows = " with one scale per row of their input weights" if qm.row_scales else ""
    wide = [it.name for it in lay.items if it.wide]
    rows += f" ({', '.join(wide)} stored as int16: a word is one SMLAD operand pair)" if wide else ""
    what = (
        f"readout only: int{qm.wbits} readout in RAM, the hidden layers frozen in flash as int{qm.hbits}{rows}, "
        "no target set"
        if qm.frozen_hidden
        else f"int{qm.wbits} weights, {'class' if targets == 'classes' else 'batch-rule'} targets"
    )
    text = (
        f"Integer TP ({what}, inputs Q.{qm.fx} int{qm.xbits}, batch 1), the memory plan of "
        f"`edgetp export --model {d.name} --c DIR`: RAM {tot['ram']:,} B ({parts('ram')}), "
        f"flash {tot['flash']:,} B ({parts('flash')})."
    )
    lr = ((model.recipe or {}).get("finetune") or {}).get("lr")
    return " ".join([text, *device_texts(d, qmodel_hash(qm), lr)])


def device_texts(d: Path, qhash: str, lr: float | None = None) -> list[str]:
    """One sentence per ``device/*.json`` (written by ``edgetp hil --json``); ``qhash``: the
    hash of the integer model the card describes, to flag figures measured on another; ``lr``: the
    model's recorded fine-tuning rate, to flag a session that learned at another (the integer model's
    hash covers its arrays, not the rate the firmware is built with)."""
    out = []
    for f in sorted((d / "device").glob("*.json")):
        r = json.loads(f.read_text())
        img, tr, inf = r.get("image") or {}, r.get("train_step") or {}, r.get("infer_step") or {}
        stale = "" if r.get("model_hash") == qhash else " (measured on another integer model: re-measure)"
        if not stale and lr is not None and r.get("lr") is not None and not math.isclose(r["lr"], lr):
            stale = f" (learned at lr {r['lr']:g}, the model records {lr:g}: re-measure)"
        unit = r.get("counter", "counts")
        audio, fe = (" --audio", r.get("frontend") or {}) if r.get("audio") else ("", None)
        if r.get("query_limit"):  # a shorter session (the recipe's query_limit): the command says so
            audio += f" --set query_limit={r['query_limit']}"
        out.append(
            f"Whole firmware on {r.get('board') or r.get('target')}, measured by "
            f"`edgetp hil --target {r.get('target')} "
            f"--model {r.get('model')} --shots {r.get('shots')}{audio}` (`device/{f.name}`){stale}: "
            f"RAM {_b(img.get('ram'))} B with a {_b(img.get('stack'))} B stack ({_b(img.get('stack_used'))} B used), "
            f"flash {_b(img.get('flash'))} B; "
            + _steps_text(tr, inf, unit)
            + "; "
            + (
                ""
                if fe is None
                else f"from raw 16 kHz audio, the integer frontend on the device: "
                f"mean {_b(fe.get('per_hop_mean'))} {unit} per "
                f"10 ms hop, {_b(fe.get('per_utterance_mean'))} per 1 s utterance; " + _frame_text(fe, unit)
            )
            + f"{r.get('samples')} samples, {r.get('mismatches')} mismatches against the integer reference"
            + _learnt(r)
            + "."
        )
    return out


def _frame_text(fe: dict, unit: str) -> str:
    """A PCM session's 10 ms frames (issue 28's rows): frontend hop + inference and + learning step (mean / max,
    the maxima added), and any frame (the largest hop + the largest slot of an utterance's work)."""
    hop, hmax = fe.get("per_hop_mean"), fe.get("per_hop_max")
    rows = [
        f"{n} {_b(hop + fe[f'network_{k}_mean'])} / {_b(hmax + fe[f'network_{k}_max'])}"
        for n, k in (("inference", "infer"), ("learning", "learn"))
        if hop is not None and hmax is not None and fe.get(f"network_{k}_mean") is not None
    ]
    out = f"frontend hop + network step, mean / max {unit}: " + ", ".join(rows) + "; " if rows else ""
    if fe.get("frame_max") is not None:
        out += f"any 10 ms frame at most {_b(fe['frame_max'])} (a hop + the largest slot, {_b(fe['slot_max'])}); "
    return out


def _steps_text(tr: dict, inf: dict, unit: str) -> str:
    """The steps' cost per 10 ms frame: mean / p99.9 / max of inference, learning and forward-only
    training frames when the JSON has them (deploy.frame_costs), else the older mean and max."""
    if "p999" not in inf:
        return (
            f"one training step (10 ms frame) mean {_b(tr.get('mean'))}, max {_b(tr.get('max'))} {unit}; "
            f"one inference step mean {_b(inf.get('mean'))} {unit}"
        )
    mpm = lambda d: f"{_b(d.get('mean'))} / {_b(d.get('p999'))} / {_b(d.get('max'))}"
    parts = [
        ("inference step", inf),
        ("learning step", tr.get("learn") or tr),
        ("forward-only training step", tr.get("forward") or {}),
    ]
    return f"per 10 ms frame, mean / p99.9 / max {unit}: " + ", ".join(
        f"{n} {mpm(d)}" for n, d in parts if d.get("mean") is not None
    )


def _learnt(r: dict) -> str:
    """What the session taught the device: its query accuracy before and after (personalisation)."""
    if r.get("query_acc_before") is None or r.get("query_acc_after") is None:
        return ""
    return (
        f" ({r.get('support')} support utterances, {r.get('epochs')} epoch(s), speaker {r.get('speaker')}: "
        f"query accuracy on the device {r['query_acc_before']:.1f} → {r['query_acc_after']:.1f} % over "
        f"{r.get('query')} utterances)"
    )


def corpus_command(rec: dict) -> str | None:
    """The command that makes the pretraining corpus a model records (``recipe["corpus"]``) when it
    is not the offline corpus ``./setup.sh`` makes; None for the offline corpus. A real-mix corpus: its
    base's synth-kws command (into BASE), then the real-mix command over the recorded folders' names."""
    c = rec.get("corpus") or {}
    extra = [
        f"--{k.replace('_', '-')} {c[k]}"
        for k in ("speakers", "reps", "distinct", "distinct_reps", "wide", "seed")
        if k in c and c[k] != {**DEFAULTS, "wide": 0, "seed": 0}[k]
    ]
    mix = c.get("real_mix")
    if not mix:
        return f"edgetp data synth-kws CORPUS {' '.join(extra)}" if extra else None
    names = {
        "copies": "copies",
        "seed": "seed",
        "choose_percent": "choose-percent",
        "snr_db": "snr",
        "peak_dbfs": "peak",
        "shift_ms": "shift-ms",
        "speed": "speed",
    }  # recipe key -> real-mix flag
    text = lambda v: ",".join(f"{x:g}" for x in v) if isinstance(v, list) else str(v)
    # --peak=-20,-1: a value starting with '-' must be joined to its flag, or argparse takes it for an option
    flags = [
        f"--{flag}{'=' if text(mix[k]).startswith('-') else ' '}{text(mix[k])}"
        for k, flag in names.items()
        if k in mix and mix[k] != (list(MIX_DEFAULTS[k]) if isinstance(MIX_DEFAULTS[k], tuple) else MIX_DEFAULTS[k])
    ]
    return (
        f"edgetp data synth-kws BASE {' '.join(extra)}; edgetp data real-mix CORPUS --base BASE "
        f"--real {mix.get('real')} --noise {mix.get('noise')}" + "".join(f" {f}" for f in flags)
    )


def _data_row(rec: dict, met: dict) -> str:
    """The card's data row: the honest protocol's recorded speakers, else the one held-out speaker."""
    made = corpus_command(rec)
    corpus = (
        f"real and espeak-ng corpus `{made}` (the real folders are the project's shared audio, docs/data.md)"
        if (rec.get("corpus") or {}).get("real_mix")
        else f"espeak-ng corpus `{made}` (the offline corpus byte for byte, plus its extra speakers)"
        if made
        else "offline espeak-ng corpus (`edgetp data prepare-default`)"
    )
    pre = rec.get("pretrain_speakers")
    if not pre:
        return (
            f"| data | {corpus}, pretrain split without held-out speaker `{rec.get('held_out_speaker')}` "
            f"({met.get('pretrain_utterances')} utterances) |"
        )
    real = rec.get("real_speakers") or {}
    real_text = (
        f"; real speakers: {len(real.get('pretrain', []))} pretrained on, {len(real.get('choose', []))} "
        f"choosing and {len(real.get('adapt', []))} adaptation speakers never trained on"
        if real
        else ""
    )
    return (
        f"| data | {corpus}, honest speaker protocol (docs/data.md, \"Speaker protocol\"): pretrained on "
        f"{len(pre)} speakers ({met.get('pretrain_utterances')} utterances), none of the "
        f"{len(rec.get('dev_speakers') or [])} development or {len(rec.get('test_speakers') or [])} test speakers"
        f"{real_text} |"
    )


def current_command(command: str) -> str:
    """A recorded pretrain command in today's spelling: `pretrain --fixed KEY=VALUE` is `--device KEY=VALUE` since
    issue 31 (finetune's --fixed is a switch); the model file keeps the command as it ran."""
    return re.sub(r" --fixed (?=\w+=)", " --device ", command)


def _derived_lines(rec: dict, name: str, corpus: str | None) -> list[str]:
    """The rebuild section's lines before a derived model's ``--from`` command: its source's pretraining when the
    source was this very file (settings recorded after the pretraining run), else a pointer to the source's card."""
    src = rec.get("derived_from")
    if not src:
        return []
    out = f"models/{name}/model.npz"
    if src["model"] == out:
        return [
            f"# the pretraining run (hash {src['hash'][:12]}), then its recorded settings:",
            f"{current_command(src['command'])}{' --data-root CORPUS' if corpus else ''} --out {out}",
        ]
    return [
        f"# first {src['model']} (hash {src['hash'][:12]}), as its card says: this model is its weights with "
        "other settings"
    ]


def render(d: Path, model: Model | None = None, ledger_upto: int | None = None) -> str:
    """The card of model folder ``d`` as text (``ledger_upto``: ``ledger_text``'s ``upto``)."""
    d = Path(d)
    model = model or load_model(d / "model.npz")
    rec, met, cfg = model.recipe, model.metrics, model.cfg
    read = lambda name: (d / name).read_text().strip() if (d / name).is_file() else ""
    frozen = model.params.S.size + (model.params.S_rec.size if model.params.S_rec is not None else 0)
    words = (
        "the paper's 35 words + `_unknown_`"
        if model.frontend.get("label_set") == "paper"
        else ", ".join(f"`{x}`" for x in model.labels)
    )
    command, corpus = current_command(rec.get("command", "")), corpus_command(rec)
    if rec.get("fixed") and "--record-fixed" not in command:
        command += " --record-fixed"  # recorded by hand before the option existed; the option rebuilds it
    lines = [
        f"# {d.name}",
        "",
        read("purpose.md"),
        "",
        "| | |",
        "|---|---|",
        f"| network | {cfg.net_string()} ({'recurrent' if cfg.recurrent else 'feed-forward'} LIF, {cfg.reset} reset, "
        f"V_th {cfg.vth}, α {cfg.leak_m}, λ {cfg.leak_t}, γ {cfg.gamma}) |",
        f"| trainable parameters | {model.n_params()} (+ frozen target propagator {frozen})"
        + (
            f"; on the device the readout's {model.params.W[-1].size} alone (the hidden layers are frozen)"
            if (rec.get("fixed") or {}).get("frozen_hidden")
            else ""
        )
        + " |",
        f"| labels | {len(model.labels)}: {words} |",
        _data_row(rec, met),
        f"| pretraining recipe | {rec.get('epochs')} epochs, "
        f"{rec.get('optimizer')} lr {rec.get('lr')} cosine → 0.25·lr, "
        f"batch {rec.get('batch')}, targets {rec.get('targets')}, augmentation shift ±{rec.get('shift', 0)} frames, "
        f"noise {rec.get('noise', 0)} |",
        f"| accuracy after pretraining | train {met.get('train_acc', float('nan')):.1f} %, validation (other speakers) "
        f"{met.get('validation_acc') or float('nan'):.1f} % |",
        f"| default fine-tuning | {json.dumps(rec.get('finetune', {}))} |",
        f"| model hash | `{model.hash()}`"
        + "".join(f"; the same arrays as `{r['hash'][:12]}` ({r['why']})" for r in rec.get("relabelled_from") or [])
        + " |",
        "",
        "## On a device",
        "",
        memory_text(d, model),
        "",
        "## Speaker adaptation (the paper's protocol)",
        "",
        "Query = the held-out speaker's 20 %; others = other speakers' utterances (does personalisation hurt "
        "them?): the validation-list speakers for the dev rows, the testing-list speakers for the test rows, so "
        "the two never share one (each row says which); from scratch = the same architecture trained on the support "
        "set alone. Accuracies in %, mean ± std over seeds (the support set is resampled per seed), over speakers × "
        "seeds for the dev / test rows.",
        "",
        "| setting | shots | query before | query after | others before | others after | from scratch |",
        "|---|---|---|---|---|---|---|",
        *[_row(lab, r) for lab, r in result_rows(d, model.hashes())],
        "",
        *ledger_text(d, model, ledger_upto),
        *real_section(d, model),
        "## Rebuild",
        "",
        "```bash",
        "./setup.sh   # makes the offline corpus",
        *([f"{corpus}   # the pretraining corpus"] if corpus else []),
        *_derived_lines(rec, d.name, corpus),
        f"{command}{' --data-root CORPUS' if corpus else ''} --out models/{d.name}/model.npz",
        "models/rebuild.sh dev test   # the table above"
        if rec.get("protocol")
        else f"models/rebuild.sh eval-{'mcu' if 'mcu' in d.name else 'paper'}   # the table above",
        *(
            [f"models/rebuild.sh device-{'mcu' if 'mcu' in d.name else 'paper'}   # the whole-firmware figures"]
            if (d / "device").is_dir() and any((d / "device").glob("*.json"))
            else []
        ),
        "```",
        "",
    ]
    notes = read("notes.md")
    if notes:
        lines += ["## Notes", "", notes, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m edgetp.kws.card", description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="model folders (models/<name>)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed card differs")
    a = ap.parse_args(argv)
    stale = []
    for d in map(Path, a.dirs):
        try:
            text, card = render(d), d / "README.md"
        except EdgetpError as exc:  # e.g. a malformed test ledger: one line, no traceback
            print(f"ERROR {exc}", file=sys.stderr)
            return 2
        if a.check:
            if not card.is_file() or card.read_text() != text:
                stale.append(str(card))
            continue
        card.write_text(text)
        print(f"wrote {card} ({len(result_rows(d))} result rows)")
    if stale:
        print(
            "stale model cards (re-render with python3 -m edgetp.kws.card DIRS): " + ", ".join(stale), file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
