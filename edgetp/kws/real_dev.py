"""Development figures on real speech (issue 26; docs/data.md, "Real speech"): what ``edgetp real-dev`` measures
and writes to ``models/<name>/results/real-dev.json``, and what the model card's "Real speech (development
figures)" section shows.

- **zero-shot**: top-1 over every clip of the real folder whose speaker did not train the model (all words, the
  ten core words, per word and per speaker). A model pretrained on real speech records its real speakers
  (``recipe["real_speakers"]``, and they are among its ``pretrain_speakers``): they are left out, and the file
  says which;
- **personalisation**: the development view's adaptation speakers (>= 4 clips of each core word), 1 / 3 / 5 shots
  x seeds with the model's recorded fine-tuning recipe (the device's integer rule with ``fixed``), through the
  same grid as ``edgetp finetune`` (``edgetp.kws.grid``); "others" = the view's choose speakers, before / after.
  Rehearsal is set to 0: it draws from the model's pretraining speakers, which the real view does not hold.

Every one of these speakers was used for choosing (recipes, candidates): they are development figures. The
unseen-speaker figures of issue 26 are measured outside the project, on other real speakers.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
import json

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.data.real import CORE, DEV_INFO, real_dev

NAME = "real-dev.json"  # in a model folder's results/: the card's real-speech section, not an adaptation row
SHOTS = (1, 3, 5, "all")  # "all": the whole support pool, what is left when 5 shots are more than a speaker has
SEEDS = 3
DEVICE = ("int_optimizer", "wbits", "hbits", "frozen_hidden")  # the integer rule's widths, as finetune records
TARGETS = "kws-mcu ≥ 70 % zero-shot / ≥ 88 % 3-shot; kws-paper ≥ 80 / ≥ 92 %"  # issue 26, unseen real speakers


def score(model, corpus, idx: np.ndarray, fixed: bool) -> dict:
    """Top-1 of ``model`` over utterances ``idx`` by its readout at the last step (float, or ``fixed``: the
    integer network the device runs): all, the ten core words, per word and per speaker, in %."""
    from edgetp.cli.predict import readout
    from edgetp.kws.data import features
    from edgetp.kws.protocol import model_norm

    if not len(idx):
        raise EdgetpError(f"{corpus.root}: no real clips left to score")
    x = model_norm(model).apply(np.asarray(features(corpus, idx)))
    pred = np.argmax(readout(model, x, fixed)[0], axis=1)
    utts = [corpus.utterances[i] for i in idx]
    hit = pred == np.array([u.label for u in utts])
    core = np.array([u.word in CORE for u in utts])
    n = lambda key: Counter(map(key, utts))
    pct = lambda key: {
        k: round(100.0 * sum(h for u, h in zip(utts, hit) if key(u) == k) / c, 1) for k, c in sorted(n(key).items())
    }
    speaker = lambda u: u.speaker
    clips = n(speaker)  # counted once, not once per speaker
    return {
        "clips": int(len(idx)),
        "top1": 100.0 * float(hit.mean()),
        "core_clips": int(core.sum()),
        "core_top1": 100.0 * float(hit[core].mean()) if core.any() else None,
        "per_word": pct(lambda u: u.word),
        "per_speaker": {s: {"clips": clips[s], "top1": v} for s, v in pct(speaker).items()},
    }


def trained_real(model, real_ids) -> list[str]:
    """The real speakers (of ``real_ids``) whose clips trained ``model``: ``recipe["real_speakers"]`` (a list, or
    real-mix's parts, of which "pretrain" trained it) and any real id among its ``pretrain_speakers``."""
    rec = model.recipe or {}
    real = rec.get("real_speakers") or []
    if isinstance(real, dict):
        real = real.get("pretrain") or []
    pre = rec.get("pretrain_speakers") or []
    if not all(isinstance(x, list) and all(isinstance(s, str) for s in x) for x in (real, pre)):
        raise EdgetpError('the model\'s recipe "real_speakers" / "pretrain_speakers" is not a list of speaker ids')
    return sorted((set(real) | set(pre)) & set(real_ids))


def adapt_speakers(model, parts: dict, trained, where) -> list[str]:
    """A development view's adaptation speakers (``parts``: its ``real_dev_info.json`` "speakers") that did not
    train ``model`` (``trained``: ``trained_real``); a view whose choose part ("others") trained it is refused."""
    from edgetp.kws.ledger import touches_test_group

    seen = sorted(set(parts["choose"]) & set(trained))
    if seen:  # the "others" would be speakers the model trained on
        raise EdgetpError(
            f"the model was trained on real speakers of the view's choose part ({', '.join(seen[:5])}): "
            "make the view with the --choose-percent its corpus used"
        )
    adapt = [s for s in parts["adapt"] if s not in set(trained)]
    if not adapt:
        raise EdgetpError(f"{where}: no adaptation speaker the model did not train on")
    if touches_test_group(model, adapt):  # never: real ids are not synthetic voices; the test ledger stays out
        raise EdgetpError("an adaptation speaker is in the model's synthetic test group")
    return adapt


def without_rehearsal(recipe):
    """(recipe, note): rehearsal set to 0 on a real view, which holds none of the pretraining speakers it draws
    from; note says so (None when the recipe had none)."""
    if not recipe.rehearsal:
        return recipe, None
    return replace(recipe, rehearsal=0.0), (
        f"rehearsal {recipe.rehearsal:g} of the recorded recipe set to 0: it "
        "draws from the model's pretraining speakers, which the real view does "
        "not hold"
    )


def view_info(root) -> dict:
    """The description (``real_dev_info.json``) of a real development view: its speaker parts, checked."""
    path = Path(root).expanduser() / DEV_INFO
    if not path.is_file():
        raise EdgetpError(
            f"{Path(root).expanduser()}: not a real development view (no {DEV_INFO}; make one with "
            "edgetp data real-dev OUT --real DIR)"
        )
    try:
        info = json.loads(path.read_text())
        parts = info["speakers"]
        ok = all(isinstance(parts[k], list) and all(isinstance(x, str) for x in parts[k]) for k in ("adapt", "choose"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        ok = False
    if not ok or not info.get("complete"):
        raise EdgetpError(
            f"{path}: not a complete real development view's description (its speakers' adapt and "
            "choose lists); make the view again with edgetp data real-dev"
        )
    return info


def check_model(model, fixed: bool) -> None:
    """What the figures need from a model file, refused with one line rather than a traceback mid-run."""
    from edgetp.kws.protocol import model_norm

    model_norm(model)  # no normalisation constants: an EdgetpError
    if fixed and not (model.recipe or {}).get("fixed"):
        raise EdgetpError(
            '--fixed: the model records no device quantization (recipe["fixed"]; pretrain '
            "--record-fixed): there is no device rule to measure"
        )


def zero_shot(model, corpus, fixed: bool, exclude) -> dict:
    """``score`` over every speaker's clips but ``exclude``'s (silence clips never)."""
    drop = set(exclude) | {""}
    idx = np.array([i for i, u in enumerate(corpus.utterances) if u.speaker not in drop], dtype=np.int64)
    out = score(model, corpus, idx, fixed)
    return {"speakers": len(out["per_speaker"]), **out}


def able(view, speakers, shots) -> list[str]:
    """The speakers whose support pool (80 % of their clips of a word, ``edgetp.data.splits``) holds ``shots``
    clips of at least one word: the protocol's other speakers would end the grid with an error."""
    from edgetp.data.splits import speaker_split

    def ok(s) -> bool:
        try:
            return len(speaker_split(view, s, shots, 0).support) > 0
        except EdgetpError:  # "no class has N utterances in its 80 % part"
            return False

    return [s for s in speakers if ok(s)]


def personalise(
    model, view, speakers, shots, seeds: int, recipe, fixed: bool, workers=None, progress=False, on_cell=None
) -> dict:
    """One shots setting over ``speakers`` x ``seeds`` (``edgetp.kws.grid.run_grid``, others = the view's testing
    list), summarised as ``edgetp finetune --json`` does; ``{"shots", "error"}`` when no speaker has that many
    clips of a word to draw a support set from (e.g. 5 shots of speakers with 4-5 clips of each word)."""
    from edgetp.kws.grid import GridJob, run_grid
    from edgetp.kws.protocol import summarize

    can = able(view, speakers, shots)
    if not can:
        most = max(
            Counter(view.utterances[i].word for i in view.select(speaker=s)).most_common(1)[0][1] for s in speakers
        )
        return {
            "shots": shots,
            "error": f"the adaptation speakers' support pools (80 % of a word's clips) hold at "
            f"most {4 * most // 5} clips of a word",
        }
    job = GridJob(model, view, shots, recipe, fixed, others="testing")
    grid = run_grid(job, can, seeds, workers, progress=progress, on_cell=on_cell)
    if not grid.per_seed:
        return {"shots": shots, "error": grid.failed[0]["error"] if grid.failed else "no cells"}
    done = [s for s in can if any(r["speaker"] == s for r in grid.per_seed)]
    out = summarize(grid.per_seed, done, shots, recipe, "")
    out.pop("model")
    for r in out["per_seed"]:  # the confusion matrices belong to finetune's report, not to a card's file
        r.pop("confusion_after", None)
    out["seconds"] = round(grid.seconds, 1)
    out.update({k: grid.per_seed[0][k] for k in DEVICE if k in grid.per_seed[0]})  # the card's label reads them
    if grid.failed:
        out["failed_cells"] = grid.failed
    return out


def measure(
    model,
    real_dir,
    view_dir,
    fixed: bool,
    recipe,
    shots=SHOTS,
    seeds: int = SEEDS,
    workers=None,
    progress=False,
    on_cell=None,
    say=print,
) -> dict:
    """Every figure of the file (the module docstring): the real folder ``real_dir`` for zero-shot, its
    development view (``edgetp data real-dev``, made or reused at ``view_dir``) for personalisation with
    ``recipe`` (the model's recorded one, as ``edgetp.cli.finetune.recorded_recipe`` reads it)."""
    from edgetp.kws.data import corpus_for

    t0 = time.perf_counter()
    check_model(model, fixed)
    info = real_dev(view_dir, real_dir)
    real = corpus_for(model, real_dir)
    ids = set(real.speaker_counts())
    trained = trained_real(model, ids)
    parts = info["speakers"]
    adapt = adapt_speakers(model, parts, trained, real_dir)
    recipe, note = without_rehearsal(recipe)
    zs = zero_shot(model, real, fixed, trained)
    say(
        f"zero-shot: {zs['top1']:.1f} % over {zs['clips']} clips of {zs['speakers']} speakers, "
        f"core ten {zs['core_top1']:.1f} % ({zs['core_clips']} clips)"
    )
    view = corpus_for(model, view_dir)
    runs = []
    for k in shots:
        r = personalise(model, view, adapt, k, seeds, recipe, fixed, workers, progress, on_cell)
        say(
            f"{k} shots: "
            + (
                r["error"]
                if "error" in r
                else f"query {r['query_acc_before']:.1f} -> {r['query_acc_after']:.1f} ± "
                f"{r['query_acc_after_std']:.1f} %, others {r['test_acc_before']:.1f} -> "
                f"{r['test_acc_after']:.1f} % ({r['seconds']:.0f} s)"
            )
        )
        runs.append(r)
    return {
        "what": "development figures on real speech: every speaker here was used for choosing",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_hash": model.hash(),
        "fixed": bool(fixed),
        "data": {
            "real": info["params"]["real"],
            "speakers": len(ids),
            "clips": len(real.utterances),
            "parts": {"adapt": adapt, "choose": len(parts["choose"]), "pretrain": len(parts["pretrain"])},
            "excluded_speakers": trained,
            **(
                {"excluded_why": "they trained the model (recipe real_speakers / pretrain_speakers)"} if trained else {}
            ),
        },
        "recipe": recipe.to_dict(),
        **({"recipe_note": note} if note else {}),
        "seeds": seeds,
        "zero_shot": zs,
        "personalisation": runs,
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ------------------------------------------------------------------ the file the card reads (edgetp.kws.card)
FIGS = ("query_acc_before", "query_acc_after", "query_acc_after_std", "test_acc_before", "test_acc_after")


def _num(path, where: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise EdgetpError(f"{path}: {where} is {v!r}, not a finite number: re-run edgetp real-dev")
    return float(v)


def checked(path, r) -> dict:
    """The results file ``r`` (read from ``path``), refused with an EdgetpError naming the missing or non-finite
    field: a card never renders 'nan' or a KeyError."""
    need = {
        "model_hash": str,
        "command": str,
        "data": dict,
        "zero_shot": dict,
        "personalisation": list,
        "recipe": dict,
        "seeds": int,
    }
    for k, t in need.items():
        if not isinstance(r, dict) or not isinstance(r.get(k), t):
            raise EdgetpError(f"{path}: no {k!r} (not a file of edgetp real-dev)")
    for k in ("top1", "core_top1", "clips", "speakers", "core_clips"):
        _num(path, f"zero_shot.{k}", r["zero_shot"].get(k))
    for k in ("clips", "speakers"):
        _num(path, f"data.{k}", r["data"].get(k))
    for p in r["personalisation"]:
        if not isinstance(p, dict) or "shots" not in p:
            raise EdgetpError(f"{path}: a personalisation entry without 'shots'")
        if "error" not in p:
            for k in FIGS + ("runs",):
                _num(path, f"personalisation[{p['shots']} shots].{k}", p.get(k))
            if not isinstance(p.get("speakers"), list) or not isinstance(
                (p.get("others") or {}).get("utterances"), int
            ):
                raise EdgetpError(f"{path}: personalisation[{p['shots']} shots] has no speakers / others")
    return r
