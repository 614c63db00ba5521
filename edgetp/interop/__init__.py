"""Interop: the inference network to and from ONNX and NIR (docs/interop.md).

``edgetp.interop.onnx_io`` and ``edgetp.interop.nir_io`` need the optional extra
``interop`` (onnx, onnxruntime, nir); importing this package does not. ``import_file``
picks the reader from the file's suffix (``.onnx``; ``.nir``/``.h5``/``.hdf5``) or,
failing that, from its first bytes.
"""

from __future__ import annotations

from pathlib import Path

from edgetp.errors import EdgetpError
from edgetp.interop.nir_io import import_nir

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def file_kind(path) -> str:
    """``"onnx"`` or ``"nir"`` for an input file, else an EdgetpError."""
    p = Path(path)
    if not p.is_file():
        raise EdgetpError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".nir", ".h5", ".hdf5"):
        return "nir"
    with open(p, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        return "nir"
    raise EdgetpError(f"{p}: cannot tell the format; name it *.onnx or *.nir")


def import_file(path, **opts):
    """An edgetp Model from an ONNX or NIR file; ``opts`` as for ``common.build_model``."""
    if file_kind(path) == "onnx":
        from edgetp.interop.onnx_io import import_onnx

        return import_onnx(path, **opts)
    return import_nir(path, **opts)
