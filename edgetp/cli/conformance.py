"""`edgetp conformance FILE.npz ...`: replay golden trajectories of the TP rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

from edgetp.cli._options import command
from edgetp.errors import EdgetpError


def register(sub):
    p = command(
        sub,
        "conformance",
        """replay golden TP trajectories (float64) and report deviations

        Replays each golden file from its initial weights, inputs and labels and reports the largest deviation
        max|mine-golden|/max(1,max|golden|) per file. A NaN or infinity on either side fails, naming array, step and
        index; a file holding an array that is not understood is refused. Exit status 1 if any file exceeds the
        tolerance, 2 on an unreadable file.
        """,
    )
    p.add_argument("files", nargs="+", type=Path, help="golden .npz files (or folders holding them)")
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write a JSON report to PATH (or standard output when no PATH is given)",
    )
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


def _where(d) -> str:
    where = f"at step {d.step}" + (f", index {d.index}" if d.index else "")
    return where + (f": {d.note}" if d.note else "")


def run(args) -> int:
    from edgetp.tp.golden import TOLERANCE, load_golden, not_compared, replay

    tol = TOLERANCE if args.tol is None else args.tol
    if not math.isfinite(tol) or tol < 0:
        raise EdgetpError(f"--tol {tol}: must be a finite number >= 0")
    report, failed, broken = [], 0, 0
    for path in _expand(args.files):
        try:
            g = load_golden(path)
            worst = replay(g)
            left = not_compared(g, worst)
            if left:
                raise EdgetpError(f"{path}: array {left[0]!r} is not understood (it would not be compared)")
        except EdgetpError as exc:
            broken += 1
            msg = " ".join(str(exc).split())
            report.append({"file": str(path), "error": msg})
            if args.json != "-":
                print(f"ERROR {msg}")
            continue
        bad = sorted(k for k, d in worst.items() if not d.dev <= tol)  # NaN deviations fail too
        # the news is the first non-finite value: in an input of the replay, else the earliest step, the
        # file's side first; without one, the largest deviation
        key = min(
            (k for k in worst if worst[k].note),
            default=None,
            key=lambda k: ("an input" not in worst[k].note, worst[k].step, "in golden" not in worst[k].note, k),
        ) or max(worst, key=lambda k: worst[k].dev)
        d = worst[key]
        ok = not bad
        failed += not ok
        report.append(
            {
                "file": str(path),
                "max_deviation": d.dev,
                "array": key,
                "step": d.step,
                "index": list(d.index),
                "note": d.note,
                "pass": ok,
                "failing": bad,
                "nonfinite": sorted(k for k in worst if worst[k].note),
                "arrays": {k: v.dev for k, v in sorted(worst.items())},
            }
        )
        if args.json != "-":
            what = f"max deviation {d.dev:.3e}" if not d.note else "non-finite value"
            print(
                f"{'PASS' if ok else 'FAIL'} {path.name}: {what} in {key} {_where(d)} "
                f"({len(worst)} arrays, {len(bad)} failing, tolerance {tol:g})"
            )
    summary = {
        "files": report,
        "tolerance": tol,
        "passed": sum(r.get("pass", False) for r in report),
        "failed": failed,
        "errors": broken,
    }
    if args.json == "-":
        print(json.dumps(summary, indent=1))
    elif args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    if broken:
        return 2
    return 1 if failed else 0
