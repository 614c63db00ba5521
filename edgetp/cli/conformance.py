"""`edgetp conformance FILE.npz ...`: replay golden trajectories of the TP rule."""
from __future__ import annotations

import json
from pathlib import Path

from edgetp.errors import EdgetpError


def register(sub):
    p = sub.add_parser("conformance", help="replay golden TP trajectories (float64) and report deviations",
                       description="Replays each golden file from its initial weights, inputs and labels and "
                                   "reports the largest deviation max|mine-golden|/max(1,max|golden|) per file. "
                                   "Exit status 1 if any file exceeds the tolerance, 2 on an unreadable file.")
    p.add_argument("files", nargs="+", type=Path, help="golden .npz files (or folders holding them)")
    p.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="write a JSON report to PATH (or standard output when no PATH is given)")
    p.add_argument("--tol", type=float, default=None, help="tolerance (default 1e-9)")
    p.set_defaults(func=run)


def _expand(paths):
    out = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.npz"))
            if not found:
                raise EdgetpError(f"{p}: folder holds no .npz files")
            out += found
        else:
            out.append(p)
    return out


def run(args) -> int:
    from edgetp.tp.golden import TOLERANCE, load_golden, replay

    tol = TOLERANCE if args.tol is None else args.tol
    report, failed, broken = [], 0, 0
    for path in _expand(args.files):
        try:
            worst = replay(load_golden(path))
        except EdgetpError as exc:
            broken += 1
            report.append({"file": str(path), "error": str(exc)})
            if args.json != "-":
                print(f"ERROR {exc}")
            continue
        key = max(worst, key=lambda k: worst[k][0])
        dev, step = worst[key]
        ok = dev <= tol
        failed += not ok
        report.append({"file": str(path), "max_deviation": dev, "array": key, "step": step, "pass": ok,
                       "arrays": {k: v[0] for k, v in sorted(worst.items())}})
        if args.json != "-":
            print(f"{'PASS' if ok else 'FAIL'} {path.name}: max deviation {dev:.3e} in {key} at step {step} "
                  f"({len(worst)} arrays, tolerance {tol:g})")
    summary = {"files": report, "tolerance": tol, "passed": sum(r.get("pass", False) for r in report),
               "failed": failed, "errors": broken}
    if args.json == "-":
        print(json.dumps(summary, indent=1))
    elif args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    if broken:
        return 2
    return 1 if failed else 0
