"""C text for the generators: integers as C literals (one spelling for every generated table: model arrays,
the frontend's tables), #define lines and the opening of a generated header.

A leaf module, so that every generator can use it without importing another generator.
"""

from __future__ import annotations

import numpy as np


def c_int(v: int, ctype: str) -> str:
    v = int(v)
    if ctype == "int64_t":
        return f"INT64_C({v})"
    if ctype in ("uint32_t", "uint16_t", "uint8_t"):
        return f"{v}u"
    if ctype == "int32_t" and v == -(1 << 31):
        return "(-2147483647 - 1)"
    return str(v)


def c_values(a: np.ndarray, ctype: str, per_line: int = 12) -> str:
    flat = [c_int(v, ctype) for v in np.asarray(a).reshape(-1)]
    width = max(len(s) for s in flat)
    rows = [", ".join(s.rjust(width) for s in flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return "{\n    " + ",\n    ".join(rows) + ",\n}"


def c_define(name: str, value, note: str = "") -> str:
    """One ``#define`` line, its note as a trailing C comment."""
    return f"#define {name} {value}" + (f"   /* {note} */" if note else "")


def header_open(stamp_text: str, guard: str) -> list[str]:
    """A generated header's first lines: its stamp, the include guard ``guard`` and <stdint.h>."""
    return [stamp_text, f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", ""]


def snapshot_main(argv, module: str, files) -> int:
    """``python -m <module> OUT_DIR``: (re)write a generator's snapshot files (``files()``: name -> text)."""
    import sys
    from pathlib import Path

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f"usage: python -m {module} OUT_DIR")
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files().items():
        (out / name).write_text(text)
        print(out / name)
    return 0
