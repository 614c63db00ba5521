"""`edgetp hil --power-cut-sweep`: prove the weight store by cutting the power at every
flash operation of a save (deploy/powercut.py; docs/deploy.md, "The weight store"). Its settings (cut_sample,
cut_modes, flash_page, flash_prog) are hil recipe settings (deploy.hil_settings)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from edgetp.errors import EdgetpError


def run_sweep(args, prepare) -> int:
    import numpy as np

    from deploy.build import store_geometry
    from edgetp.cli._options import build_image
    from deploy.hil_settings import QEMU_SAMPLE
    from deploy.powercut import N_SAMPLES, power_cut_sweep
    from deploy.reference import IntReference, export_c
    from firmware_gen.layout import device_layout
    from firmware_gen.store import ENDURANCE

    from deploy.targets import builds

    if not builds(args.target):
        raise EdgetpError(
            f"--power-cut-sweep needs --target host or qemu (or another emulated board: it restarts "
            f"the device), not {args.target!r}"
        )
    modes = tuple(m.strip() for m in args.cut_modes.split(",") if m.strip())
    t0 = time.perf_counter()
    say = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))
    model, qm, cfg, codes, support, query, speaker, notes = prepare(args)
    for n in notes:
        say(f"note: {n}")
    xs, ys = support
    if len(ys) < N_SAMPLES:
        raise EdgetpError(f"--power-cut-sweep needs {N_SAMPLES} support utterances, the support set has {len(ys)}")
    order = np.random.default_rng(args.seed).permutation(len(ys))[:N_SAMPLES]
    samples = [(xs[i], int(ys[i])) for i in order]
    page, prog = args.flash_page, args.flash_prog
    tmp = None if args.build_dir else Path(tempfile.mkdtemp(prefix="etp-sweep-"))
    root = Path(args.build_dir) if args.build_dir else tmp
    try:
        cdir = export_c(qm, root / "model", cfg)
        geo = store_geometry(cdir, page, prog)
        image = build_image(cdir, args, root, flash_page=page, flash_prog=prog)
        say(
            f"model {args.model} ({qm.cfg.net_string()}), speaker {speaker}: weight store of {geo.payload:,d} B in "
            f"2 slots of {geo.slot_bytes:,d} B (pages of {page} B, program unit {prog} B)"
        )
        sample = args.cut_sample if args.cut_sample is not None else (0 if args.target == "host" else QEMU_SAMPLE)
        timeout = args.timeout or (0.5 if args.target == "host" else 5.0)
        res = power_cut_sweep(
            args.target,
            image,
            IntReference(qm, cfg),
            samples,
            root / "flash",
            geo=geo,
            lay=device_layout(qm, cfg.targets),
            seed=args.seed,
            sample=sample,
            modes=modes,
            timeout=timeout,
            progress=say,
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    out = {k: res[k] for k in ("cuts", "restored_old", "restored_new", "corrupt")}
    out.update(
        {
            "model": args.model,
            "model_hash": IntReference(qm, cfg).model_hash,
            "net": qm.cfg.net_string(),
            "speaker": speaker,
            "store": {
                "payload": geo.payload,
                "slot_bytes": geo.slot_bytes,
                "flash_bytes": geo.flash_bytes,
                "page": page,
                "prog": prog,
                "erases_per_save": geo.erases,
                "programs_per_save": geo.programs,
                "endurance_cycles": ENDURANCE,
                "saves_until_worn": geo.saves_per_endurance,
            },
        }
    )
    out.update({k: v for k, v in res.items() if k not in out})
    out["seconds"] = round(time.perf_counter() - t0, 1)
    ok = not (out["corrupt"] or out["misplaced"] or out["not_cut"] or out["resume"]["mismatches"])
    print(
        f"\npower-cut sweep on {args.target}: {out['cuts']} cuts ({out['indices']} of the save's "
        f"{out['ops_per_save']['total']} operations x {'/'.join(out['modes'])}): {out['restored_old']} restored "
        f"the old state, {out['restored_new']} the new, {out['corrupt']} corrupt, {out['misplaced']} misplaced, "
        f"{out['not_cut']} not cut"
    )
    print(
        f"  restart after a complete save: generation {out['resume']['boot']['generation']}, went on learning with "
        f"{out['resume']['mismatches']} mismatches"
    )
    s = out["store"]
    print(
        f"  flash {s['flash_bytes']:,d} B; per save {s['erases_per_save']} erases + {s['programs_per_save']:,d} "
        f"programs; {ENDURANCE:,d}-cycle flash: {s['saves_until_worn']:,d} saves"
    )
    for f in out["failures"][:5]:
        print(f"  failure: {f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0 if ok else 1
