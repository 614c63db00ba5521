"""`edgetp export`: write a model's inference network in other formats.

Each format is one entry of ``EXPORTERS``: ``(dest, add_arguments, run)``. ``add_arguments``
adds the format's options to the parser (its main option's ``dest`` is ``dest``);
``run(model, args)`` writes the file(s) and returns the lines to print. A new format
(e.g. ``--c OUT_DIR`` for the firmware generator) is a new pair of functions and one
more entry; the loop in ``run`` and ``register`` stays as it is.
"""

from __future__ import annotations

import argparse

from edgetp.cli._options import command
from edgetp.errors import EdgetpError


def _onnx_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ONNX")
    g.add_argument("--onnx", metavar="OUT.onnx", help="write the inference network as ONNX")
    g.add_argument(
        "--onnx-form",
        choices=("step", "scan"),
        default="step",
        help="step: one time step with explicit state in/out (default); scan: whole utterances",
    )
    g.add_argument(
        "--check",
        action="store_true",
        help="run the ONNX file with onnxruntime (and a torch-dialect NIR file with Norse and snnTorch, "
        "if installed) on random utterances and report its deviation from the float reference",
    )


def _onnx_run(model, args) -> list[str]:
    from edgetp.interop.onnx_io import OPSET, export_onnx

    path = export_onnx(model, args.onnx, args.onnx_form)
    lines = [
        f"wrote {path} (ONNX opset {OPSET}, form {args.onnx_form}, {model.cfg.net_string()}, {model.cfg.reset} reset)"
    ]
    if args.check:
        import numpy as np

        from edgetp.interop.common import reference_readout
        from edgetp.interop.onnx_io import onnx_readout

        dtype = np.result_type(*model.params.W)
        xs = np.random.default_rng(0).normal(size=(4, 50, model.cfg.n_in)).astype(dtype)
        dev = float(np.abs(onnx_readout(path, xs) - reference_readout(model, xs)).max())
        lines.append(
            f"checked with onnxruntime: max |u_onnx - u_reference| = {dev:.3g} over 4 x 50 random steps ({dtype})"
        )
    return lines


def _nir_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("NIR")
    g.add_argument("--nir", metavar="OUT.nir", help="write the inference network as a NIR graph (HDF5)")
    g.add_argument(
        "--nir-dt",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time step of the continuous-time mapping tau = dt/(1-alpha) (default 1e-4, as snnTorch)",
    )
    g.add_argument(
        "--nir-dialect",
        choices=("torch", "plain"),
        default="torch",
        help="torch: CubaLIF nodes and a never-firing readout, run as edgetp does by Norse (from_nir) and "
        "snnTorch (import_from_nir) (default); plain: LIF nodes and an LI|I readout node "
        "(docs/interop.md)",
    )


def _nir_run(model, args) -> list[str]:
    import warnings

    from edgetp.interop.nir_io import DT, NIRDialectWarning, dialect_caveats, export_nir

    dt = DT if args.nir_dt is None else args.nir_dt
    with warnings.catch_warnings():  # printed below as "warning:" lines
        warnings.simplefilter("ignore", NIRDialectWarning)
        path = export_nir(model, args.nir, dt, args.nir_dialect)
    lines = [
        f"wrote {path} (NIR, dialect {args.nir_dialect}, dt {dt:g} s, {model.cfg.net_string()}, "
        f"{model.cfg.reset} reset)"
    ]
    if args.nir_dialect == "torch" and dt != DT:
        lines.append(f"warning: snnTorch's importer assumes dt = {DT:g} s; with dt {dt:g} it runs other leaks")
    lines += [f"{level}: {text}" for level, text in dialect_caveats(model, args.nir_dialect)]
    if args.check:
        from edgetp.interop.nir_clients import check_lines

        lines += check_lines(model, path)
    return lines


def _c_arguments(p: argparse.ArgumentParser) -> None:
    from firmware_gen.options import add_device_options

    g = p.add_argument_group("C (firmware_gen; docs/firmware-gen.md)")
    g.add_argument(
        "--c",
        metavar="OUT_DIR",
        help="write C99 sources (arrays, learning routines, API) for a microcontroller, and print the memory plan",
    )
    g.add_argument("--ram-budget", metavar="BYTES", help="fail if the RAM plan exceeds this (e.g. 96K)")
    g.add_argument("--flash-budget", metavar="BYTES", help="fail if the flash plan exceeds this (e.g. 512K)")
    add_device_options(g)


def _c_run(model, args) -> list[str]:
    from firmware_gen.export import export_c

    return export_c(model, args.c, args, args.ram_budget, args.flash_budget)


EXPORTERS = [("onnx", _onnx_arguments, _onnx_run), ("nir", _nir_arguments, _nir_run), ("c", _c_arguments, _c_run)]


def register(subparsers) -> None:
    p = command(
        subparsers,
        "export",
        """export a model (ONNX, NIR, C for a microcontroller)

        Write a model's inference network in other formats (docs/interop.md).
        """,
    )
    p.add_argument("--model", required=True, metavar="NAME|PATH", help="shipped model name or model file (.npz)")
    for _dest, add_arguments, _run in EXPORTERS:
        add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    chosen = [(dest, fn) for dest, _add, fn in EXPORTERS if getattr(args, dest, None)]
    if not chosen:
        raise EdgetpError("nothing to export: give " + " and/or ".join(f"--{d}" for d, _a, _r in EXPORTERS))
    from edgetp.model import load_model

    model = load_model(args.model)
    for _dest, fn in chosen:
        for line in fn(model, args):
            print(line)
    return 0
