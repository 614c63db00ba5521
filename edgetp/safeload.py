"""Bounded reading of files edgetp did not write itself (docs/checks.md, "Loading files edgetp did not write").

Model files, golden files, feature caches and ONNX/NIR imports all read through here:

- ``.npz``: every member's ``.npy`` header (dtype, shape, byte size) is read and checked
  *before* any array is allocated: plain numeric dtypes only (no objects, no records),
  header size + data size must equal the member's declared uncompressed size, and the
  declared sizes of all members together must stay under the load limit (so a zip bomb
  is refused from its directory, and a member is never decompressed past what it
  declares). The caller checks each header against the shapes its format implies.
- JSON metadata: at most ``MAX_JSON_BYTES`` and ``MAX_JSON_DEPTH`` levels.
- every decoding error (zip, zlib, JSON, RecursionError, MemoryError, ...) becomes an
  :class:`~edgetp.errors.EdgetpError` ``"<file>: <what is wrong>"``, which the CLI prints
  as one line (exit status 2).

The load limit is ``EDGETP_MAX_LOAD_MB`` (MiB, default 1024): the total size of the
arrays one file may declare.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tokenize
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
import io

import numpy as np

from edgetp.errors import EdgetpError

LIMIT_ENV = "EDGETP_MAX_LOAD_MB"
DEFAULT_LIMIT_MB = 1024
MAX_JSON_BYTES = 1 << 20
MAX_JSON_DEPTH = 32
MAX_MEMBERS = 4096
MAX_NPY_HEADER = 10_000  # numpy's own default for headers it trusts
NUMERIC_KINDS = "biuf"

# Everything a malformed file can make a decoder raise (RecursionError and MemoryError included).
DECODE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OSError,
    EOFError,
    struct.error,
    UnicodeError,
    NotImplementedError,
    OverflowError,
    RecursionError,
    MemoryError,
    AssertionError,
    SyntaxError,
    tokenize.TokenError,
)


def load_limit() -> int:
    """Bytes one file may declare in total (``EDGETP_MAX_LOAD_MB``, MiB)."""
    raw = os.environ.get(LIMIT_ENV)
    if raw is None or raw == "":
        return DEFAULT_LIMIT_MB << 20
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not (math.isfinite(mb) and mb > 0):
        raise EdgetpError(f"{LIMIT_ENV}={raw!r}: must be a positive number of MiB")
    return int(mb * (1 << 20))


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply (RecursionError)"
    if isinstance(exc, MemoryError):
        return "too large to hold in memory (MemoryError)"
    text = " ".join(str(exc).split())[:200]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


@contextmanager
def guarded(path, what: str):
    """Turn any decoding error inside the block into ``EdgetpError("<path>: <what> (<why>)")``;
    an EdgetpError raised inside gets the path prefixed (once)."""
    try:
        yield
    except EdgetpError as exc:
        msg = " ".join(str(exc).split())
        raise EdgetpError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from None
    except DECODE_ERRORS as exc:
        raise EdgetpError(f"{path}: {what} ({_why(exc)})") from None


def json_depth_ok(obj, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``obj`` (parsed JSON) nests at most ``limit`` levels (iterative, no recursion)."""
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            if d > limit:
                return False
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return True


def parse_json(text: str | bytes, what: str):
    """JSON of at most MAX_JSON_BYTES and MAX_JSON_DEPTH levels; else an EdgetpError about ``what``."""
    if len(text) > MAX_JSON_BYTES:
        raise EdgetpError(f"{what} is {len(text)} bytes, more than the {MAX_JSON_BYTES} allowed")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EdgetpError(f"{what} is not UTF-8 ({exc})") from None
    try:
        obj = json.loads(text)
    except RecursionError:
        raise EdgetpError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError
        raise EdgetpError(f"{what} is not JSON ({exc})") from None
    if not json_depth_ok(obj):
        raise EdgetpError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return obj


@dataclass(frozen=True)
class Entry:
    """What an ``.npy`` header declares."""

    dtype: np.dtype
    shape: tuple
    fortran: bool
    nbytes: int
    offset: int  # header length: the data starts here

    def describe(self) -> str:
        return f"{self.dtype.str} {self.shape}"


def read_npy_header(f, size: int, what: str) -> Entry:
    """Read and check an ``.npy`` header from file object ``f`` holding ``size`` bytes in all."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER)
        else:
            raise EdgetpError(f"{what}: .npy format version {version} is not supported")
    except EdgetpError:
        raise
    except Exception as exc:  # numpy parses the header text with ast/tokenize: SyntaxError, TokenError, ...
        raise EdgetpError(f"{what}: bad .npy header ({_why(exc)})") from None
    dtype = np.dtype(dtype)
    if (
        dtype.hasobject
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.kind not in NUMERIC_KINDS + "U"
    ):
        raise EdgetpError(f"{what}: dtype {dtype} is not a plain numeric array")
    if not all(isinstance(n, int) and n >= 0 for n in shape) or len(shape) > 8:
        raise EdgetpError(f"{what}: bad shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    offset = f.tell()
    if offset + nbytes != size:
        raise EdgetpError(
            f"{what}: header declares {dtype.str} {tuple(shape)} ({nbytes} bytes) but the entry "
            f"holds {size - offset} bytes of data"
        )
    return Entry(dtype, tuple(shape), bool(fortran), nbytes, offset)


def _read_exact(f, n: int, what: str) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise EdgetpError(f"{what}: data ends after {got} of {n} bytes")
        got += k
    return buf


def _array(buf, e: Entry) -> np.ndarray:
    a = np.frombuffer(buf, dtype=e.dtype)
    return a.reshape(e.shape, order="F" if e.fortran else "C")


class Npz:
    """An ``.npz`` archive opened for bounded reading: ``entries`` maps each array name to the
    :class:`Entry` its header declares; nothing is allocated until :meth:`read`."""

    def __init__(self, path, limit: int | None = None):
        self.path = Path(path)
        self.limit = load_limit() if limit is None else limit
        if not self.path.is_file():
            raise EdgetpError(f"{self.path}: no such file")
        self.zf = None
        try:
            with guarded(self.path, "not a readable .npz archive"):
                if not zipfile.is_zipfile(self.path):
                    raise EdgetpError("not an .npz archive (not a zip file)")
                self.zf = zipfile.ZipFile(self.path)
                self.entries, self._info = self._scan()
        except EdgetpError:
            self.close()
            raise

    def _scan(self):
        infos = self.zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise EdgetpError(f"not an .npz archive: {len(infos)} members (at most {MAX_MEMBERS})")
        declared = sum(i.file_size for i in infos)
        if declared > self.limit:
            raise EdgetpError(
                f"its members declare {declared} bytes uncompressed, more than the load limit "
                f"({self.limit} bytes; {LIMIT_ENV} raises it)"
            )
        entries, info = {}, {}
        for i in infos:
            if not i.filename.endswith(".npy") or i.is_dir():
                raise EdgetpError(f"member {i.filename!r} is not an .npy array")
            name = i.filename[:-4]
            if name in entries:
                raise EdgetpError(f"member {i.filename!r} appears twice")
            if i.flag_bits & 0x1:
                raise EdgetpError(f"member {i.filename!r} is encrypted")
            if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise EdgetpError(f"member {i.filename!r}: compression method {i.compress_type} is not supported")
            with self.zf.open(i) as f:
                entries[name] = read_npy_header(f, i.file_size, f"array {name!r}")
            info[name] = i
        return entries, info

    def read(self, name: str) -> np.ndarray:
        """The array ``name`` (its header already checked), read up to its declared size only."""
        e = self.entries[name]
        with guarded(self.path, f"array {name!r} is unreadable"):
            with self.zf.open(self._info[name]) as f:
                f.read(e.offset)
                buf = _read_exact(f, e.nbytes, f"array {name!r}")
                if f.read(1):
                    raise EdgetpError(f"array {name!r} holds more data than its header declares")
            return _array(buf, e)

    def close(self):
        if self.zf is not None:
            self.zf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_entry(
    e: Entry, name: str, shape: tuple | None = None, kinds: str = "f", dtypes: tuple = ("float32", "float64")
) -> None:
    """An EdgetpError unless entry ``name`` has one of ``dtypes`` (when ``kinds`` is "f") / one of
    ``kinds``, and ``shape`` (when given)."""
    ok = e.dtype.kind in kinds and (kinds != "f" or e.dtype.name in dtypes)
    if not ok:
        raise EdgetpError(
            f"array {name!r} has dtype {e.dtype}, expected {' or '.join(dtypes) if kinds == 'f' else kinds}"
        )
    if shape is not None and e.shape != tuple(shape):
        raise EdgetpError(f"array {name!r} has shape {e.shape}, expected {tuple(shape)}")


def npy_from_bytes(data: bytes, what: str, limit: int | None = None) -> np.ndarray:
    """An array from the bytes of one ``.npy`` file, its header checked before allocating."""
    limit = load_limit() if limit is None else limit
    if len(data) > limit:
        raise EdgetpError(f"{what}: {len(data)} bytes, more than the load limit ({limit})")
    f = io.BytesIO(data)
    e = read_npy_header(f, len(data), what)
    return _array(bytearray(data[e.offset :]), e).copy()


def open_npy_memmap(path, dtype, shape: tuple, what: str) -> np.memmap:
    """Memory-map an ``.npy`` file that must hold exactly ``dtype`` ``shape`` (header and size checked)."""
    path = Path(path)
    with guarded(path, f"unreadable {what}"):
        size = path.stat().st_size
        with open(path, "rb") as f:
            e = read_npy_header(f, size, what)
        want = np.dtype(dtype)
        if e.dtype != want or e.shape != tuple(shape) or e.fortran:
            raise EdgetpError(f"{what} holds {e.describe()}, expected {want.str} {tuple(shape)}")
        if e.nbytes == 0:
            return np.zeros(shape, dtype)
        return np.memmap(path, dtype=want, mode="r", offset=e.offset, shape=tuple(shape))


def check_hdf5(
    path,
    what: str = "not a readable HDF5 file",
    limit: int | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    max_objects: int = 100_000,
) -> None:
    """Walk an HDF5 file's groups, datasets and attributes *without reading data*: declared sizes
    under the load limit, plain dtypes, bounded nesting. An EdgetpError says what is wrong."""
    import h5py

    path = Path(path)
    limit = load_limit() if limit is None else limit
    with guarded(path, what):
        if path.stat().st_size > limit:
            raise EdgetpError(
                f"{path.stat().st_size} bytes, more than the load limit ({limit} bytes; {LIMIT_ENV} raises it)"
            )
        total, count = 0, 0
        with h5py.File(path, "r") as f:
            stack = [(f, 0)]
            while stack:
                obj, depth = stack.pop()
                count += 1
                if count > max_objects:
                    raise EdgetpError(f"more than {max_objects} objects")
                if depth > max_depth:
                    raise EdgetpError(f"{obj.name} nests deeper than {max_depth} levels")
                for aname in obj.attrs:
                    aid = obj.attrs.get_id(aname)
                    total += _declared(aid.dtype, aid.shape, f"attribute {obj.name}@{aname}")
                if isinstance(obj, h5py.Dataset):
                    total += _declared(obj.dtype, obj.shape, f"dataset {obj.name}")
                elif isinstance(obj, h5py.Group):
                    for key in obj:
                        link = obj.get(key, getlink=True)
                        if not isinstance(link, h5py.HardLink):
                            raise EdgetpError(
                                f"{obj.name}/{key} is a {type(link).__name__}; only plain groups and datasets are read"
                            )
                        stack.append((obj[key], depth + 1))
                if total > limit:
                    raise EdgetpError(
                        f"its datasets declare more than the load limit ({limit} bytes; {LIMIT_ENV} raises it)"
                    )


def _declared(dtype, shape, what) -> int:
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        import h5py

        if h5py.check_string_dtype(dtype) is None:
            raise EdgetpError(f"{what}: dtype {dtype} is not a plain array")
        return (math.prod(shape or ()) or 1) * 64  # variable-length strings: count their slots
    if dtype.fields is not None:
        raise EdgetpError(f"{what}: compound dtype {dtype} is not supported")
    return math.prod(shape or ()) * dtype.itemsize
