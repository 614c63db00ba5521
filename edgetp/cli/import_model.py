"""`edgetp import-model`: an ONNX or NIR network becomes an edgetp model file."""

from __future__ import annotations

from pathlib import Path

from edgetp.cli._options import command
from edgetp.errors import EdgetpError


def register(subparsers) -> None:
    p = command(
        subparsers,
        "import-model",
        """import an ONNX or NIR spiking network as an edgetp model

        Read a spiking network (LIF layers, optional recurrence, leaky-integrator readout) from ONNX or NIR and save it
        as an edgetp model ready for TP fine-tuning (docs/interop.md).
        """,
    )
    p.add_argument("source", metavar="IN.onnx|IN.nir", help="the network to import")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="edgetp model file to write")
    p.add_argument(
        "--labels",
        metavar="A,B,...|FILE",
        help="class names: comma-separated or a text file with one per line "
        "(default: those stored by edgetp export, else 0..O-1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the target propagator S/S_rec when the file has none")
    p.add_argument("--dt", type=float, default=None, help="NIR only: time step (default: the file's, else 1e-4)")
    p.add_argument("--leak-t", type=float, default=None, help="trace leak lambda (default: stored, else 0.977)")
    p.add_argument("--gamma", type=float, default=None, help="surrogate scale (default: stored, else 10)")
    p.set_defaults(func=run)


def parse_labels(text: str | None) -> list[str] | None:
    if text is None:
        return None
    path = Path(text)
    if path.is_file():
        labels = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    else:
        labels = [s.strip() for s in text.split(",")]
    if not labels or not all(labels):
        raise EdgetpError(f"--labels {text!r}: empty class name")
    return labels


def run(args) -> int:
    from edgetp.interop import file_kind, import_file
    from edgetp.model import save_model

    kind = file_kind(args.source)
    opts = {"labels": parse_labels(args.labels), "seed": args.seed, "leak_t": args.leak_t, "gamma": args.gamma}
    if args.dt is not None:
        if kind != "nir":
            raise EdgetpError("--dt applies to NIR files only")
        opts["dt"] = args.dt
    model = import_file(args.source, **opts)
    digest = save_model(model, args.out)
    cfg = model.cfg
    print(
        f"imported {cfg.net_string()} ({cfg.reset} reset, leak {cfg.leak_m:g}, vth {cfg.vth:g}, "
        f"readout leak {cfg.leak_out:g}) from {args.source} ({kind})"
    )
    for note in model.recipe.get("imported", {}).get("notes", []):
        print(f"note: {note}")
    print(f"wrote {args.out} (hash {digest[:12]})")
    return 0
