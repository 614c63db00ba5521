"""`edgetp pretrain --kws`: train a TP keyword spotter on a corpus' pretrain split."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from edgetp.cli._options import command
from edgetp.errors import EdgetpError


def register(sub):
    from edgetp.kws.pretraining import Pretraining
    from edgetp.kws.train import FINETUNE_FIELDS
    from edgetp.settings import add_options

    p = command(
        sub,
        "pretrain",
        """pretrain a TP keyword spotter (float) and save a model file

        Trains on the train split of a GSC-layout corpus without the held-out speaker, with TP (one update per time
        step), and saves a model file.
        """,
    )
    p.add_argument("--kws", action="store_true", required=True, help="keyword spotting (the only task so far)")
    p.add_argument("--data-root", help="GSC-layout corpus (default: the offline corpus set-up generated)")
    add_options(p.add_argument_group("training"), Pretraining)
    p.add_argument("--ft-lr", type=float, default=None, help="fine-tuning lr to record as this model's default")
    p.add_argument(
        "--ft",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a fine-tuning default to record in the model (repeatable): " + ", ".join(FINETUNE_FIELDS) + "; "
        "`edgetp finetune` uses them unless "
        "told otherwise",
    )
    p.add_argument(
        "--record-fixed",
        action="store_true",
        help='record the device quantization in the model (recipe["fixed"]: int16, input format '
        "calibrated on pretraining utterances), which export --c, verify-c, hil and "
        "finetune --fixed then use",
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='a device setting to record in recipe["fixed"] besides the calibrated defaults '
        f"(repeatable; implies --record-fixed): {', '.join(FIXED_KEYS)}",
    )
    p.add_argument(
        "--from",
        dest="source",
        metavar="MODEL",
        help="train nothing: take MODEL's weights, normalisation and pretraining record, and record this "
        "command's --ft / --record-fixed / --device settings (a device variant of a pretrained "
        "network, or settings chosen after pretraining; --out may be MODEL itself). MODEL's own "
        "settings are replaced; the record names the pretraining run the weights come from. The "
        "training options must stay at their defaults",
    )
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--json", metavar="PATH", help="write the training figures as JSON")
    # `--fixed KEY=VALUE` was this option's name; finetune's --fixed (a switch: the integer rule) keeps the word
    p.set_defaults(func=run, moved={"--fixed": "--device"})


def pretrain_indices(corpus, hold: str | None):
    """Train and validation utterances of everyone but the held-out speaker."""
    pick = lambda split: np.array(
        [i for i in corpus.select(split=split) if corpus.utterances[i].speaker != hold], dtype=np.int64
    )
    return pick("train"), pick("validation")


def finetune_defaults(items: list[str], lr: float | None = None) -> dict:
    """``--ft KEY=VALUE`` items (and ``--ft-lr``) -> the model's recipe["finetune"], checked against the Recipe
    declaration (edgetp.settings)."""
    from edgetp.kws.train import FINETUNE_FIELDS, Recipe
    from edgetp.settings import read

    out = {} if lr is None else {"lr": lr}
    out.update(read((Recipe,), items=items, where_set="--ft", only=FINETUNE_FIELDS))
    try:
        Recipe(**out).check()
    except EdgetpError as e:
        raise EdgetpError(f"--ft: {e}") from None
    return out


# recipe["fixed"] keys besides the calibrated defaults (firmware_gen.defaults.DEFAULTS): the hidden layers' weight
# width, whether they stay frozen in flash (firmware_gen's frozen-hidden build; the readout alone learns) and
# whether their input weights get one power-of-two scale per row (per neuron; frozen-hidden only)
FIXED_KEYS = ("hbits", "frozen_hidden", "row_scales")


def fixed_extras(items: list[str]) -> dict:
    """``--device KEY=VALUE`` items -> extra recipe["fixed"] entries, checked against DeviceSettings."""
    from edgetp.settings import read
    from firmware_gen.defaults import DeviceSettings

    out = read((DeviceSettings,), items=items, where_set="--device", only=FIXED_KEYS)
    if out.get("row_scales") and not out.get("frozen_hidden"):
        raise EdgetpError(
            "--device row_scales=true needs --device frozen_hidden=true (a layer that learns keeps one "
            "scale per tensor)"
        )
    return out


def corpus_params(root) -> dict | None:
    """The settings of a made corpus that a model records, so that its card says how to make it: a synthetic
    corpus (``edgetp data synth-kws``'s ``synth_info.json``), or a real-mix corpus (``edgetp data real-mix``: its
    base's settings plus ``real_mix``, the folders by name, never by path); None for another corpus."""
    from edgetp.data.real import MIX_INFO
    from edgetp.data.synth import INFO

    keys = ("speakers", "reps", "distinct", "distinct_reps", "wide", "seed")
    mix = _info(Path(root) / MIX_INFO)
    if mix is not None:
        p = mix.get("params", {})
        base = p.get("base", {})
        mixed = {k: p[k] for k in ("copies", "seed", "snr_db", "peak_dbfs", "shift_ms", "speed") if k in p}
        mixed.update(
            base=base.get("name"),
            real=p.get("real", {}).get("name"),
            noise=p.get("noise", {}).get("name"),
            choose_percent=p.get("real", {}).get("choose_percent"),
        )
        return {**{k: base[k] for k in keys if isinstance(base.get(k), int)}, "real_mix": mixed}
    params = (_info(Path(root) / INFO) or {}).get("params", {})
    if not isinstance(params, dict):
        return None
    return {k: params[k] for k in keys if isinstance(params.get(k), int)} or None


def corpus_record(rec: dict, root) -> dict:
    """How a model names its corpus: never a machine's path (it breaks on every other machine), but the
    folder's name and, for a corpus edgetp makes, the command that makes it under ``$EDGETP_HOME``."""
    from edgetp import paths
    from edgetp.kws.card import corpus_command

    name = Path(root).name
    made = corpus_command(rec)
    if made:
        return {"data": name, "data_command": made.replace("CORPUS", f"$EDGETP_HOME/{name}")}
    if rec.get("corpus") is not None or name == paths.default_data_root().name:
        return {"data": name, "data_command": "edgetp data prepare-default"}
    return {"data": name}


def _info(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def real_parts(root) -> dict | None:
    """A real-mix corpus's speaker parts (pretrain / choose / adapt), which the model records."""
    from edgetp.data.real import MIX_INFO

    parts = (_info(Path(root) / MIX_INFO) or {}).get("speakers")
    return parts if isinstance(parts, dict) else None


def run(args) -> int:
    from edgetp.audio.frontend import NormConstants
    from edgetp.kws.data import ModelInputs, check_gain, check_running_max, features, open_corpus, recompress
    from edgetp.kws.pretraining import Pretraining
    from edgetp.kws.train import AUGMENT, accuracy, check_augment, fit
    from edgetp.model import Model, save_model
    from edgetp.tp import init_params, parse_net

    ft = finetune_defaults(args.ft, args.ft_lr)  # checked before hours of training, not after
    extras = fixed_extras(args.device)
    if extras.get("frozen_hidden") and ft.get("train") != "readout":
        raise EdgetpError(
            "--device frozen_hidden=true needs --ft train=readout (the frozen hidden layers cannot learn)"
        )
    if args.source:
        return derive(args, ft, extras)
    s = Pretraining(**Pretraining.given(args))
    corpus = open_corpus(args.data_root, s.labels)
    cfg = parse_net(s.net, reset=s.reset)
    if cfg.n_out != len(corpus.label_names) or cfg.n_in != 120:
        raise EdgetpError(
            f"--net {s.net}: needs 120 inputs and {len(corpus.label_names)} classes for label set {s.labels}"
        )
    hold = s.hold_out
    if hold is None:
        from edgetp.data.synth import DEFAULT_SPEAKER

        hold = DEFAULT_SPEAKER if DEFAULT_SPEAKER in corpus.speaker_counts() else None
    pre, val = pretrain_indices(corpus, hold)
    roles = None
    if s.protocol:
        from edgetp.kws import speakers as sp

        roles = sp.roles(corpus)
        pre = sp.pretrain_indices(corpus, roles.pretrain)
    if len(pre) == 0:
        raise EdgetpError("the pretrain split is empty")
    t0 = time.perf_counter()
    check_gain(s.log_gain, "--log-gain")
    check_running_max(s.running_max, "--running-max")
    check_augment(s.shift, s.noise, s.warp, s.time_mask, s.freq_mask, [f"--{k.replace('_', '-')}" for k in AUGMENT])
    raw = recompress(np.asarray(features(corpus, pre)), s.log_gain, s.running_max, 0, s.channel_norm)
    norm = ModelInputs(
        NormConstants.fit(raw, per_utterance=s.per_utterance_norm), s.log_gain, s.running_max, 0, s.channel_norm
    )
    xs, ys = norm.norm.apply(raw), corpus.labels[pre]
    del raw
    xv, yv = (norm.apply(np.asarray(features(corpus, val))), corpus.labels[val]) if len(val) else (xs[:0], ys[:0])
    params = init_params(cfg, s.seed, np.float32)
    recipe = s.recipe()

    def on_epoch(e, p):
        acc = accuracy(p, cfg, xv, yv)
        print(f"epoch {e + 1}/{s.epochs}: validation accuracy {acc:.2f} %", flush=True)
        return acc

    hist = fit(params, cfg, xs, ys, recipe, on_epoch=on_epoch, desc="pretrain")
    metrics = {
        "train_acc": accuracy(params, cfg, xs, ys),
        "validation_acc": hist.metric[-1] if hist.metric else None,
        "validation_per_epoch": hist.metric,
        "pretrain_utterances": int(len(pre)),
        "seconds": time.perf_counter() - t0,
    }
    rec = recipe.to_dict()
    rec.update(
        data=Path(corpus.root).name,
        labels=s.labels,
        held_out_speaker=hold,
        net=s.net,
        command=f"edgetp pretrain --kws {s.command()}" + "".join(f" --ft {k}={v}" for k, v in ft.items()),
    )
    rec["pretrain_speakers"] = sorted({corpus.utterances[i].speaker for i in pre} - {""})
    synth = corpus_params(corpus.root)
    if synth:
        rec["corpus"] = synth
    rec.update(corpus_record(rec, corpus.root))
    parts = real_parts(corpus.root)
    if parts:
        rec["real_speakers"] = parts  # which real speakers trained, which choose, which are the adaptation measure
    if roles is not None:
        rec.update(roles.to_recipe(), protocol=True)
        rec["command"] += " --protocol"
    if ft:
        rec["finetune"] = ft
    model = Model(
        cfg,
        params,
        list(corpus.label_names),
        {
            "kind": "logmel40+d+dd",
            "label_set": s.labels,
            "per_utterance": norm.per_utterance,
            **({"log_gain": s.log_gain} if s.log_gain != 1.0 else {}),
            **({"running_max_decay": s.running_max} if s.running_max is not None else {}),
            **({"channel_norm": s.channel_norm} if s.channel_norm else {}),
        },
        rec,
        metrics,
        norm.scale,
    )
    if args.record_fixed or extras:
        record_fixed(model, corpus, hold or "", args.device, extras)
    digest = save_model(model, args.out)
    print(
        f"saved {args.out} ({model.n_params()} trainable parameters, hash {digest[:12]}); "
        f"train {metrics['train_acc']:.2f} %, validation {metrics['validation_acc']} %"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1))
    return 0


def record_fixed(model, corpus, hold: str, items: list[str], extras: dict) -> None:
    """recipe["fixed"]: the device defaults, the input format calibrated on pretraining utterances, and ``extras``."""
    from edgetp.kws.fixed_protocol import fixed_settings

    model.recipe["fixed"] = {**fixed_settings(model, corpus, hold), **extras}
    model.recipe["command"] += " --record-fixed" + "".join(f" --device {i}" for i in items)
    print(f'recorded the device quantization: recipe["fixed"] = {model.recipe["fixed"]}')


def derive(args, ft: dict, extras: dict) -> int:
    """``--from MODEL``: MODEL's network, weights and pretraining record with new fine-tuning and device settings."""
    import dataclasses

    from edgetp.kws.data import open_corpus
    from edgetp.model import load_model, save_model
    from edgetp.paths import portable

    from edgetp.kws.pretraining import Pretraining

    changed = [*Pretraining.given(args), *(["json"] if args.json else [])]
    if changed:
        raise EdgetpError(
            f"--from takes the pretraining of {args.source}; drop "
            + ", ".join(f"--{k.replace('_', '-')}" for k in changed)
        )
    src = load_model(args.source)
    rec = {k: v for k, v in src.recipe.items() if k not in ("finetune", "fixed", "derived_from", "relabelled_from")}
    # the weights' origin: a derived source passes on its own (its settings are replaced, its weights are that run's),
    # so deriving again, in place or from a derived model, records the same pretraining run
    if Path(str(rec.get("data", ""))).is_absolute():  # a model recorded before corpora were named
        rec.update(corpus_record(rec, rec["data"]))
    rec["derived_from"] = src.recipe.get("derived_from") or {
        "model": portable(args.source),
        "hash": src.hash(),
        "command": src.recipe.get("command", ""),
    }
    rec["command"] = f"edgetp pretrain --kws --from {portable(args.source)}" + "".join(
        f" --ft {k}={v}" for k, v in ft.items()
    )
    if ft:
        rec["finetune"] = ft
    model = dataclasses.replace(src, recipe=rec)
    if args.record_fixed or extras:
        record_fixed(
            model,
            open_corpus(args.data_root, src.frontend.get("label_set", "paper")),
            rec.get("held_out_speaker") or "",
            args.device,
            extras,
        )
    digest = save_model(model, args.out)
    print(
        f"saved {args.out}: the weights of {rec['derived_from']['model']} (hash {rec['derived_from']['hash'][:12]}) "
        f"with new settings, hash {digest[:12]}"
    )
    return 0
