"""`edgetp hil`: fine-tune on a device over serial and check its state digest against Python after every sample.

Builds and starts the firmware (``--target host`` or ``qemu``) or opens a serial port
(a board), streams one speaker's support set for on-device TP fine-tuning, evaluates
the query set on the device before and after, and after every sample compares the
device's state digest with the integer reference (docs/deploy.md). ``--audio`` sends raw
PCM instead of features: the device runs the integer audio frontend (deploy/hil_audio.py).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from deploy.hil_settings import HilSettings
from edgetp.cli._options import add_model_option, add_seen_speaker_option, build_image, command
from edgetp.errors import EdgetpError
from edgetp.settings import add_recipe_options, fields, help_keys, moved_flags, read
from firmware_gen.defaults import BUDGETS, DeviceSettings


def register(sub):
    p = command(
        sub,
        "hil",
        """host-in-the-loop: fine-tune on a device (host pty, QEMU Cortex-M4 or a board) and verify it bit for bit

        Builds the firmware for --model, starts it (host, qemu) or opens a serial port, fine-tunes it on one speaker's
        support set over the serial protocol, evaluates the query set on the device and compares the device's state
        digest with the Python integer reference after every sample.
        """,
    )
    p.add_argument(
        "--target",
        required=True,
        metavar="host|qemu|qemu-m7|qemu-m33|qemu-rv32|PORT",
        help="host (native build on a pty), qemu (mps2-an386 Cortex-M4), qemu-m7 (mps2-an500 Cortex-M7), "
        "qemu-m33 (mps2-an505 Cortex-M33), qemu-rv32 (RISC-V virt RV32IMAC), or a serial port / "
        "pyserial URL",
    )
    add_model_option(p)
    p.add_argument("--data-root", help="GSC-layout corpus (default: the offline corpus set-up generated)")
    p.add_argument("--speaker", help="held-out speaker id (default: the one the model was pretrained without)")
    add_seen_speaker_option(
        p, "use a speaker the model was pretrained on (refused by default: not held out); the report then says so"
    )
    p.add_argument(
        "--shots",
        default="1",
        help="utterances per word in the support set: 1, 5, ... or all (default 1: with the recipe's "
        "epochs a session that learns in a few minutes on QEMU; finetune's 5 shots take ~3x longer)",
    )
    p.add_argument("--seed", type=int, default=0, help="support-set draw, training order and device PRNG seed")
    add_recipe_options(
        p,
        ": the device's quantization and learning settings (default: the model's recorded recipe) "
        "and the session's: " + help_keys((DeviceSettings, HilSettings)),
        "epochs=1",
    )
    p.add_argument(
        "--locked",
        action="store_true",
        help="build without the commands that dump or write state (a deployed device's firmware)",
    )
    p.add_argument(
        "--faults",
        metavar="SPEC",
        help="put the fault relay in between, e.g. drop=0.001,dup=0.01,reset=500 (docs/deploy.md)",
    )
    p.add_argument("--elf", help="with a serial-port target: the ELF flashed on the board, for its flash/RAM figures")
    p.add_argument("--build-dir", help="keep the exported C and the build here (default: a cache folder)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON (keys samples, mismatches, then the rest)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--audio",
        action="store_true",
        help="send raw 16 kHz PCM: the device runs the integer audio frontend, then TP (AUDIO_PCM/AUDIO_RUN)",
    )
    p.add_argument(
        "--stream",
        metavar="WAV",
        help="always listening: stream this 16 kHz WAV as raw PCM (STREAM) through the device's stream frontend, "
        "network and keyword detector, every frame compared with the integer reference (deploy/hil_stream.py)",
    )
    p.add_argument(
        "--power-cut-sweep",
        action="store_true",
        help="fine-tune 3 samples with 3 saves, then cut the power at every erase and program of the "
        "last save (torn and just after), restart and check that the old or the new state booted "
        "(the recipe's cut_sample, cut_modes, flash_page, flash_prog)",
    )
    keys = tuple(fields(DeviceSettings)) + tuple(fields(HilSettings))
    p.set_defaults(
        func=run,
        moved=moved_flags(
            keys, {"no_recover": "recover", "no_frozen_hidden": "frozen_hidden", "no_row_scales": "row_scales"}
        ),
    )


def apply_settings(args) -> None:
    """The recipe file and --set items onto ``args``: every DeviceSettings and HilSettings field as an attribute
    (a device setting left None: the model's recipe decides, firmware_gen.options.device_from_args)."""
    if getattr(args, "given", None) is not None:
        return
    given = read((DeviceSettings, HilSettings), getattr(args, "recipe", None), getattr(args, "set", ()) or ())
    for cls in (DeviceSettings, HilSettings):
        d = cls()
        for k in fields(cls):
            setattr(args, k, given.get(k, getattr(d, k)))
    args.given = given


def _shots(text):
    from edgetp.cli.finetune import _shots as parse

    return parse(text)


def prepare(args):
    """(qm, device config, epochs, support, query, speaker, notes) from the model and the data options."""
    import numpy as np

    from deploy.reference import int_features
    from edgetp.kws.data import check_speaker, model_corpus, seen_note, speaker_data
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model
    from firmware_gen.options import device_from_args

    from edgetp.kws.train import Recipe

    apply_settings(args)
    model = load_model(args.model)
    ft = dict(model.recipe.get("finetune", {}))
    # the same default as finetune --kws --fixed (one epoch of one shot learns nothing on kws-mcu: 57.1 -> 57.1 %)
    epochs = args.epochs if args.epochs is not None else int(ft.get("epochs", Recipe.epochs))
    if epochs < 1:
        raise EdgetpError("epochs must be >= 1")
    corpus, speaker = model_corpus(model, args.data_root, args.speaker)
    args.seen = check_speaker(model, corpus, speaker, args.allow_seen_speaker, args.model)
    note = seen_note(args.seen, speaker)
    if note:
        args.seen["note"] = note
        print(f"warning: {note}", flush=True)
    d = speaker_data(corpus, speaker, _shots(args.shots), args.seed, model_norm(model))
    qm, cfg, notes = device_from_args(model, args)
    (sx, sy), (qx, qy) = d.support, d.query
    if args.support_limit:
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(sy))[: args.support_limit])
        sx, sy = sx[keep], sy[keep]
    if args.query_limit:
        qx, qy = qx[: args.query_limit], qy[: args.query_limit]
    if getattr(args, "audio", False):
        from deploy.hil_audio import audio_sets
        from edgetp.audio.frontend_q import InputNorm

        support, query = audio_sets(
            corpus, d.split, InputNorm.for_model(model, qm), qm, args.support_limit, args.query_limit, args.seed
        )
    else:
        support = (int_features(qm, sx), np.asarray(sy))
        query = (int_features(qm, qx), np.asarray(qy))
    return model, qm, cfg, epochs, support, query, speaker, notes


def run(args) -> int:
    from deploy.hil import HilError, run_session
    from deploy.host import Device, open_port
    from deploy.reference import IntReference, export_c
    from deploy.relay import FaultPlan, FaultyLink
    from deploy.targets import builds, check_target, start

    check_target(args.target)
    apply_settings(args)
    if args.stream:
        from deploy.hil_stream import hil_stream

        return hil_stream(args, build_image, (lambda m: None) if args.quiet else (lambda m: print(m, flush=True)))
    if args.power_cut_sweep:
        from edgetp.cli.hil_store import run_sweep

        return run_sweep(args, prepare)  # prepare is passed in: hil_store must not import hil (a cycle)
    t0 = time.perf_counter()
    say = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))
    plan = FaultPlan.parse(args.faults) if args.faults else None
    model, qm, cfg, epochs, support, query, speaker, notes = prepare(args)
    for n in notes:
        say(f"note: {n}")
    say(
        f"model {args.model} ({qm.cfg.net_string()}, {qm.widths()}), speaker {speaker}: "
        f"{len(support[1])} support and {len(query[1])} query utterances, {epochs} epoch(s)"
    )
    image = None
    if builds(args.target):
        root = Path(args.build_dir) if args.build_dir else Path(tempfile.mkdtemp(prefix="etp-hil-"))
        norm = None
        if args.audio:
            from edgetp.audio.frontend_q import InputNorm

            norm = InputNorm.for_model(model, qm)
        cdir = export_c(qm, root / "model", cfg, frontend=norm)
        image = build_image(cdir, args, root)
        say(
            f"built {image.path}"
            + (f" (flash {image.sizes['flash']} B, RAM {image.sizes['ram']} B)" if image.sizes else "")
        )
    elif args.elf:
        from deploy.build import Image, elf_sizes

        image = Image("board", Path(args.elf), args.locked, elf_sizes(Path(args.elf)))
    timeout = args.timeout or (0.5 if args.target == "host" else 5.0)
    ref = IntReference(qm, cfg)
    with start(args.target, image) as target:
        reopen = lambda: open_port(target.url, args.baud)  # noqa: E731 - also after a lost connection
        port = reopen()
        link = (
            FaultyLink(port, plan, reset=target.reset if target.can_reset else None, reopen_port=reopen)
            if plan
            else port
        )
        dev = Device(link, timeout=timeout, reopen=link.reopen if plan else reopen)
        try:
            session_cls = None
            if args.audio:
                from deploy.hil_audio import AudioSession

                session_cls = AudioSession
            res = run_session(
                dev,
                ref,
                support,
                query,
                epochs=epochs,
                lr=cfg.lr,
                seed=args.seed,
                recover=args.recover,
                progress=say,
                session_cls=session_cls,
            )
            err = None
        except HilError as exc:
            res, err = exc.result, str(exc)
        finally:
            dev.close()
        info = dev.info
    out = {"samples": res.get("samples", 0), "mismatches": res.get("mismatches", 0)}
    out.update(
        {
            "target": args.target,
            "board": info.board if info else None,
            "model": args.model,
            "model_hash": ref.model_hash,
            "net": qm.cfg.net_string(),
            "wbits": qm.wbits,
            "hbits": qm.hbits,
            "frozen_hidden": qm.frozen_hidden,
            **({"row_scales": True} if qm.row_scales else {}),
            "speaker": speaker,
            "shots": args.shots,
            "epochs": epochs,
            "lr": cfg.lr,
            "optimizer": cfg.optimizer,
            "update_every": cfg.update_every,
            "support": int(len(support[1])),
            "query": int(len(query[1])),
            **({"query_limit": args.query_limit} if args.query_limit else {}),
        }
    )
    out.update({k: v for k, v in res.items() if k not in out})
    out["store_boot"] = info.store if info else None  # HELLO's weight-store report (docs/deploy.md)
    out.update(args.seen)
    if image is not None and image.sizes:
        out["image"] = dict(image.sizes)
        c = res.get("counters") or {}
        out["image"]["stack_used"] = c.get("stack_used")
    if plan is not None:
        out["faults"] = {"plan": args.faults, **link.stats.__dict__}
    if args.audio:
        out["audio"] = True
        c = res.get("counters") or {}
        r = (info.counter_res if info else 1) or 1
        for k in ("train", "infer"):  # per-step costs of AUDIO_RUN's network steps, from the device's COUNTERS
            if c.get(f"{k}_n"):
                out[f"{k}_step"] = {
                    "mean": c[f"{k}_sum"] / c[f"{k}_n"] * r,
                    "max": c[f"{k}_max"] * r,
                    "min": c[f"{k}_min"] * r,
                    "n": c[f"{k}_n"],
                }
    out["error"] = err
    out["seconds"] = round(time.perf_counter() - t0, 1)
    _print(out, say)
    if out.get("note"):
        print(f"note: {out['note']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    if err:
        raise EdgetpError(err)
    return 0 if out["mismatches"] == 0 else 1


def _fmt(v) -> str:
    return f"{v:,.0f}" if isinstance(v, (int, float)) else "n/a"


def _print(out: dict, say) -> None:
    pct = lambda k: f"{out[k]:.2f} %" if out.get(k) is not None else "n/a"
    print(
        f"\nHIL on {out.get('board')}: {out['samples']} training samples, {out['mismatches']} mismatches, "
        f"{out.get('lost', 0)} lost, {out.get('double_applied', 0)} applied twice, "
        f"{out.get('query_samples', 0)} query samples, {out.get('resets', 0)} device resets"
    )
    print(f"  query accuracy on the device: before {pct('query_acc_before')}, after {pct('query_acc_after')}")
    unit = out.get("counter", "none")
    tr, inf = out.get("train_step") or {}, out.get("infer_step") or {}
    print(
        f"  per 10 ms frame ({unit}): training mean {_fmt(tr.get('mean'))} (max {_fmt(tr.get('max'))}), "
        f"inference mean {_fmt(inf.get('mean'))} (max {_fmt(inf.get('max'))})"
    )
    mpm = lambda d: f"{_fmt(d.get('mean'))} / {_fmt(d.get('p999'))} / {_fmt(d.get('max'))}"
    frames = [
        ("inference", inf),
        ("learning", tr.get("learn") or {}),
        ("forward-only training", tr.get("forward") or {}),
    ]
    print("  network step, mean / p99.9 / max: " + "; ".join(f"{n} {mpm(d)}" for n, d in frames if d))
    if tr.get("window"):
        k = tr["window"]
        print(
            f"  training learns every {k} frame(s): worst mean over {k} consecutive frames "
            f"{_fmt(tr.get('worst_window_mean'))} (within one sample {_fmt(tr.get('worst_window_mean_in_sample'))})"
        )
    img = out.get("image")
    if img:
        print(
            f"  image: flash {_fmt(img['flash'])} B (text {_fmt(img['text'])} + data {_fmt(img['data'])}), "
            f"RAM {_fmt(img['ram'])} B (data + bss incl. a {_fmt(img['stack'])} B stack, "
            f"{_fmt(img.get('stack_used'))} B of it used)"
        )
    if img and img.get("stack_used") and img["stack_used"] > 0.75 * img["stack"]:
        print(f"  warning: {img['stack_used']} B of the {img['stack']} B stack used; give more with the recipe's stack")
    if unit == "instructions" and img:
        checks = [
            ("training step", tr.get("max"), BUDGETS["train_step"]),
            ("inference step", inf.get("max"), BUDGETS["infer_step"]),
            ("RAM", img["ram"], BUDGETS["ram"]),
            ("flash", img["flash"], BUDGETS["flash"]),
        ]
        print(
            "  budgets: "
            + "; ".join(
                f"{n} {_fmt(v)} {'<=' if v is not None and v <= b else '>'} {_fmt(b)}"
                + ("" if v is None or v <= b else f" (over by {100 * (v - b) / b:.0f} %)")
                for n, v, b in checks
            )
        )
    fe = out.get("frontend")
    if fe:
        print(
            f"  audio frontend on the device ({fe['counter']}): per 10 ms hop {_fmt(fe['per_hop_mean'])} mean, "
            f"{_fmt(fe['per_hop_max'])} max (streamed frame {_fmt(fe['hop_mean'])} + delta/scaling "
            f"{_fmt(fe['features_per_frame_mean'])}); end of utterance {_fmt(fe['finish_mean'])}; "
            f"per utterance {_fmt(fe['per_utterance_mean'])}"
        )
        # one frame = a hop of the frontend + a network step; AUDIO_RUN reports its steps' sum and maximum,
        # so the frame's maximum is bounded by the two maxima added (they need not meet in one frame)
        both = [
            (n, fe.get(f"network_{k}_mean"), fe.get(f"network_{k}_max"))
            for n, k in (("inference", "infer"), ("training", "train"), ("learning", "learn"))
            if fe.get(f"network_{k}_mean") is not None
        ]
        if both:
            print(
                f"  frontend hop (p99.9 {_fmt(fe.get('hop_p999'))}) + network step, mean / max (the maxima added): "
                + "; ".join(f"{n} {_fmt(fe['per_hop_mean'] + m)} / {_fmt(fe['per_hop_max'] + x)}" for n, m, x in both)
            )
        if fe.get("frame_max") is not None:
            print(
                f"  any 10 ms frame: a hop {_fmt(fe['hop_max'])} + the largest slot of an utterance's work "
                f"{_fmt(fe['slot_max'])} (a padded frame, or a frame's input + network step) = {_fmt(fe['frame_max'])}"
            )
        if unit == "instructions":
            b = BUDGETS["frontend_hop"]
            v = fe["per_hop_max"]
            line = f"  frontend budget: per hop {_fmt(v)} {'<=' if v <= b else '>'} {_fmt(b)}"
            if fe.get("frame_max") is not None:
                b, v = BUDGETS["frame"], fe["frame_max"]
                line += f"; any frame {_fmt(v)} {'<=' if v <= b else '>'} {_fmt(b)}"
            print(line)
    if out.get("error"):
        print(f"  stopped: {out['error']}")
