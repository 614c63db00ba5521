"""Loading untrusted files is bounded (edgetp/safeload.py): crafted model, golden, feature-cache,
ONNX and NIR files each get one line `<file>: <what is wrong>` (exit 2), never a traceback, and
within 2 GiB of address space; a hypothesis property test mutates real model and golden files."""

import base64
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import GOLDEN_DIR, ROOT, require
from edgetp.errors import EdgetpError
from edgetp.model import MODELS_DIR, load_model
from edgetp.tp.golden import load_golden

REAL_MODEL = MODELS_DIR / "kws-mcu" / "model.npz"
REAL_GOLDEN = GOLDEN_DIR / "tp_mlp_1hidden_rec_adam.npz"
GIB = 1 << 30


# ------------------------------------------------------------------ crafting helpers
def npy_header(descr: str, shape: tuple, fortran=False, version=1) -> bytes:
    """An .npy header as numpy writes it (no data)."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode("latin1")
    pre = 10 if version == 1 else 12
    text += b" " * ((64 - (pre + len(text) + 1) % 64) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_zip(path, entries: dict, deflate=()) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED)
    return path


def declare_size(path, member: str, size: int) -> Path:
    """Patch the uncompressed size the zip declares for ``member`` (local and central headers)."""
    raw = bytearray(Path(path).read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    struct.pack_into("<I", raw, info.header_offset + 22, size)
    name = member.encode()
    at = raw.find(b"PK\x01\x02" + b"", 0)
    while at != -1:
        n = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46 : at + 46 + n] == name:
            struct.pack_into("<I", raw, at + 24, size)
        at = raw.find(b"PK\x01\x02", at + 4)
    Path(path).write_bytes(bytes(raw))
    return Path(path)


def _bomb_zip(path, entries, member, shape, mib=160):
    """``entries`` with ``member`` replaced by a deflated .npy that really expands to ``mib`` MiB of zeros."""
    header = npy_header("<f4", shape)
    info = zipfile.ZipInfo(member)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            if name != member:
                z.writestr(name, data)
        with z.open(info, "w", force_zip64=True) as f:
            f.write(header)
            chunk = bytes(8 << 20)
            for _ in range(mib // 8):
                f.write(chunk)
    return Path(path)


def deep_json(depth=100_000) -> bytes:
    return b"[" * depth + b"]" * depth


# ------------------------------------------------------------------ the crafted files
def crafted_models(d: Path):
    """(path, what the error says) for crafted model files built from the shipped kws-mcu."""
    m = members(REAL_MODEL)
    meta = json.loads(np.load(io.BytesIO(m["meta.npy"])).tobytes())
    W0 = np.load(io.BytesIO(m["W0.npy"]))
    out = []

    def add(name, entries, expect, deflate=()):
        out.append((write_zip(d / f"{name}.npz", entries, deflate), expect))

    def with_meta(**change):
        return npy(np.frombuffer(json.dumps(dict(meta, **change)).encode(), np.uint8))

    add(
        "lying_header",
        dict(m, **{"W0.npy": npy_header("<f4", (100_000, 100_000)) + m["W0.npy"][128:]}),
        "header declares",
    )
    add("huge_header_len", dict(m, **{"W0.npy": b"\x93NUMPY\x01\x00\xff\xff" + b" " * 100}), "bad .npy header")
    add(
        "object_dtype",
        dict(m, **{"W0.npy": npy_header("|O", W0.shape) + bytes(8 * W0.size)}),
        "not a plain numeric array",
    )
    add("wrong_shape", dict(m, **{"W0.npy": npy(np.zeros(W0.shape[::-1], np.float32))}), f"expected {W0.shape}")
    add("int_weights", dict(m, **{"W0.npy": npy(W0.astype(np.int32))}), "dtype int32")
    add("unknown_entry", dict(m, **{"extra.npy": npy(np.zeros(3))}), "'extra' is not part of")
    add("deep_meta", dict(m, **{"meta.npy": npy(np.frombuffer(deep_json(), np.uint8))}), "nests deeper")
    add("big_meta", dict(m, **{"meta.npy": npy(np.frombuffer(b" " * (2 << 20) + b"{}", np.uint8))}), "more than the")
    add("meta_not_json", dict(m, **{"meta.npy": npy(np.frombuffer(b"\xff\xfe{", np.uint8))}), "not UTF-8")
    add(
        "net_too_big",
        dict(m, **{"meta.npy": with_meta(net=dict(meta["net"], hidden=[100_000]))}),
        "expected (100000, 120)",
    )
    add("labels_not_list", dict(m, **{"meta.npy": with_meta(labels="yes")}), "'labels' must be")
    add("recipe_not_dict", dict(m, **{"meta.npy": with_meta(recipe=[1])}), "'recipe' must be")
    add(
        "nan_weight",
        dict(m, **{"W0.npy": npy(np.where(np.arange(W0.size).reshape(W0.shape) == 5, np.nan, W0).astype(np.float32))}),
        "NaN",
    )
    add("not_npy_member", dict(m, **{"readme.txt": b"hello"}), "is not an .npy array")
    add(
        "npy_version_7",
        dict(m, **{"W0.npy": npy_header("<f4", W0.shape)[:6] + b"\x07\x00"}),
        "format version (7, 0) is not supported",
    )
    add(
        "fortran_order",
        dict(m, **{"W0.npy": npy_header("<f4", W0.shape, fortran=True) + m["W0.npy"][128:]}),
        "hash mismatch",
    )
    out.append(
        (
            declare_size(
                write_zip(
                    d / "declared_3gib.npz",
                    dict(m, **{"W0.npy": npy_header("<f4", (30_000, 30_000)) + bytes(1000)}),
                    deflate=("W0.npy",),
                ),
                "W0.npy",
                3 * GIB + 5,
            ),
            "declare",
        )
    )
    out.append((_bomb_zip(d / "bomb.npz", m, "W0.npy", (160 << 18,)), f"expected {W0.shape}"))
    raw = REAL_MODEL.read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 3])
    out.append((d / "truncated.npz", "not"))
    (d / "random.npz").write_bytes(os.urandom(5000))
    out.append((d / "random.npz", "not an .npz archive"))
    return out


def crafted_goldens(d: Path):
    m = members(REAL_GOLDEN)
    cfg = json.loads(str(np.load(io.BytesIO(m["config.npy"]))))
    out = []

    def add(name, entries, expect):
        out.append((write_zip(d / f"{name}.npz", entries), expect))

    add("lying_header", dict(m, **{"h1.npy": npy_header("<f8", (10**5, 10**5))}), "header declares")
    add("deep_config", dict(m, **{"config.npy": npy(np.array(deep_json().decode()))}), "config nests deeper")
    add("config_number", dict(m, **{"config.npy": npy(np.array(3.0))}), "config must be one JSON string")
    add("huge_steps", dict(m, **{"config.npy": npy(np.array(json.dumps(dict(cfg, steps=10**9))))}), "has shape")
    add("unknown_array", dict(m, **{"secret.npy": npy(np.zeros(4))}), "'secret' is not understood")
    add("object_array", dict(m, **{"h1.npy": npy_header("|O", (10, 4, 8)) + bytes(8 * 320)}), "not a plain")
    out.append((_bomb_zip(d / "bomb.npz", m, "h1.npy", (160 << 18,)), "has shape"))
    out.append((declare_size(write_zip(d / "declared_3gib.npz", m), "h1.npy", 3 * GIB), "declare"))
    return out


def crafted_onnx(d: Path):
    require("onnx")
    import onnx

    from edgetp.interop.common import META_KEY
    from edgetp.interop.onnx_io import to_onnx

    model = load_model(REAL_MODEL)
    base = to_onnx(model)
    out = []

    def add(name, change, expect):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        change(m)
        onnx.save(m, str(d / f"{name}.onnx"))
        out.append((d / f"{name}.onnx", expect))

    def huge_dims(m):
        t = m.graph.initializer[0]
        del t.dims[:]
        t.dims.extend([100_000, 100_000])

    def external(m):
        t = m.graph.initializer[0]
        t.ClearField("raw_data")
        del t.float_data[:]
        t.data_location = onnx.TensorProto.EXTERNAL
        t.external_data.add(key="location", value="/etc/passwd")

    def prop(key, value):
        def f(m):
            for p in m.metadata_props:
                if p.key == key:
                    p.value = value
                    return
            m.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))

        return f

    add("huge_dims", huge_dims, "declares 10000000000 elements")
    add("external_data", external, "external file")
    add("deep_meta", prop(META_KEY, deep_json().decode()), "nests deeper")
    add(
        "bomb_meta_array",
        prop("edgetp.S", base64.b64encode(npy_header("<f8", (10**6, 10**6))).decode()),
        "header declares",
    )
    add("not_base64", prop("edgetp.S", "!!!"), "corrupt edgetp metadata")
    add("bad_graph", lambda m: m.graph.node[0].input.append("nowhere"), "not a valid ONNX model")
    raw = (d / "huge_dims.onnx").read_bytes()
    (d / "truncated.onnx").write_bytes(raw[: len(raw) // 2])
    out.append((d / "truncated.onnx", "not a valid ONNX model"))
    (d / "random.onnx").write_bytes(os.urandom(3000))
    out.append((d / "random.onnx", "not a valid ONNX model"))
    (d / "nested.onnx").write_bytes(_nested_proto(5000))
    out.append((d / "nested.onnx", "not a valid ONNX model"))
    return out


def _nested_proto(depth: int) -> bytes:
    """A ModelProto whose graph nests Scan bodies ``depth`` deep (protobuf's recursion limit)."""
    inner = b""
    for _ in range(depth):  # GraphProto.node (1) -> NodeProto.attribute (5) -> AttributeProto.g (6)
        attr = b"\x32" + _varint(len(inner)) + inner
        node = b"\x2a" + _varint(len(attr)) + attr
        inner = b"\x0a" + _varint(len(node)) + node
    return b"\x3a" + _varint(len(inner)) + inner  # ModelProto.graph (7)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def crafted_nir(d: Path):
    require("nir", "h5py")
    import h5py

    from edgetp.interop.nir_io import export_nir

    good = export_nir(load_model(REAL_MODEL), d / "good.nir")
    out = []
    with h5py.File(d / "huge_dataset.nir", "w") as f:
        f.create_dataset(
            "node/nodes/x/weight", shape=(100_000, 100_000), dtype="f8", chunks=(100, 100), compression="gzip"
        )
    out.append((d / "huge_dataset.nir", "more than the load limit"))
    with h5py.File(d / "deep.nir", "w") as f:
        f.create_group("/".join(["g"] * 60))
    out.append((d / "deep.nir", "nests deeper"))
    with h5py.File(d / "vlen.nir", "w") as f:
        f.create_dataset(
            "node/x", data=np.array([np.arange(3), np.arange(2)], dtype=object), dtype=h5py.vlen_dtype(np.int64)
        )
    out.append((d / "vlen.nir", "not a plain array"))
    with h5py.File(d / "soft_link.nir", "w") as f:
        f["node/a"] = np.zeros(3)
        f["node/b"] = h5py.ExternalLink("/etc/passwd", "/")
    out.append((d / "soft_link.nir", "only plain groups"))
    raw = good.read_bytes()
    (d / "truncated.nir").write_bytes(raw[: len(raw) // 2])
    out.append((d / "truncated.nir", "not a readable NIR graph"))
    return out


# ------------------------------------------------------------------ in process: one EdgetpError naming the file
def _one_line_error(fn, path, expect):
    with pytest.raises(EdgetpError) as e:
        fn(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and expect in msg, (path.name, msg)


def test_crafted_model_files(tmp_path):
    for path, expect in crafted_models(tmp_path):
        _one_line_error(load_model, path, expect)


def test_crafted_golden_files(tmp_path):
    for path, expect in crafted_goldens(tmp_path):
        _one_line_error(load_golden, path, expect)


def test_crafted_onnx_files(tmp_path):
    from edgetp.interop import import_file

    for path, expect in crafted_onnx(tmp_path):
        _one_line_error(import_file, path, expect)


def test_crafted_nir_files(tmp_path):
    from edgetp.interop import import_file

    for path, expect in crafted_nir(tmp_path):
        _one_line_error(import_file, path, expect)


def test_the_load_limit_is_configurable(tmp_path, monkeypatch):
    from edgetp import safeload

    assert REAL_MODEL.stat().st_size > 20 << 10
    monkeypatch.setenv(safeload.LIMIT_ENV, "0.01")  # 10 KiB: the shipped model is refused
    _one_line_error(load_model, REAL_MODEL, "more than the load limit")
    monkeypatch.setenv(safeload.LIMIT_ENV, "nonsense")
    with pytest.raises(EdgetpError, match=safeload.LIMIT_ENV):
        load_model(REAL_MODEL)
    monkeypatch.delenv(safeload.LIMIT_ENV)
    assert load_model(REAL_MODEL).hash() == load_model("kws-mcu").hash()  # the limit lifted, it loads


def test_crafted_feature_caches(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "data"))
    from tone_corpus import make_corpus

    from edgetp.data import cache
    from edgetp.data.gsc import load_corpus

    make_corpus(tmp_path / "c", words=("yes", "no"), speakers={"0a1b2c3d": ("train", 2)})
    corpus = load_corpus(tmp_path / "c", labels="12")
    train = corpus.select(split="train")
    good = np.asarray(cache.cached_features(corpus, train, tmp_path / "fc")).copy()
    path = next((tmp_path / "fc").rglob("train-*.npy"))
    raw = path.read_bytes()
    for expect, data in (
        ("holds", raw[: len(raw) - 100]),
        ("holds", npy_header("<f8", good.shape) + raw[128:]),
        ("holds", npy_header("<f4", (len(train) + 1, 101, 120)) + raw[128:]),
        ("expected <f4", npy_header("<f4", (len(train), 120, 101)) + raw[128:]),
        ("expected <f4", npy_header("<i4", good.shape) + raw[128:]),
        ("bad .npy header", b"garbage" * 100),
    ):
        path.write_bytes(data)
        _one_line_error(lambda p: cache.cached_features(corpus, train, tmp_path / "fc"), path, expect)
        with pytest.raises(EdgetpError, match="delete the file and the features are recomputed"):
            cache.cached_features(corpus, train, tmp_path / "fc")
    path.unlink()
    np.testing.assert_array_equal(np.asarray(cache.cached_features(corpus, train, tmp_path / "fc")), good)


# ------------------------------------------------------------------ the CLI, within 2 GiB of address space
RUNNER = r'''
import contextlib, io, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from edgetp.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException as exc:          # a traceback would land here
            import traceback
            code, err = -1, io.StringIO(traceback.format_exc())
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
'''


def _cli_under_2gib(argvs, env=None):
    r = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(argvs)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        env=dict(os.environ, **(env or {})),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_every_crafted_file_is_one_line_and_exit_2_within_2_gib(tmp_path):
    require("onnx", "nir", "h5py")
    cases = [
        (["export", "--model", str(p), "--onnx", str(tmp_path / "o.onnx")], p, e)
        for p, e in crafted_models(_mk(tmp_path / "m"))
    ]
    cases += [(["conformance", str(p)], p, e) for p, e in crafted_goldens(_mk(tmp_path / "g"))]
    cases += [
        (["import-model", str(p), "--out", str(tmp_path / "x.npz")], p, e)
        for p, e in crafted_onnx(_mk(tmp_path / "o")) + crafted_nir(_mk(tmp_path / "n"))
    ]
    for env in ({}, {"EDGETP_MAX_LOAD_MB": "4096"}):  # a cap above the 2 GiB: the format's own checks bound it
        results = _cli_under_2gib([a for a, _, _ in cases], env)
        for (argv, path, expect), (code, out, err) in zip(cases, results):
            text = (out + err).strip()
            assert code == 2 and "Traceback" not in text, (argv, code, text[-2000:])
            lines = text.splitlines()
            assert len(lines) == 1 and f"{path}: " in lines[0], (argv, lines)
            if argv[0] == "conformance":
                assert lines[0].startswith(f"ERROR {path}: ")
            if not (env and "load limit" in expect):
                assert expect in lines[0] or "load limit" in lines[0], (argv, lines)


def _mk(d: Path) -> Path:
    d.mkdir()
    return d


# ------------------------------------------------------------------ property: mutate real files
@st.composite
def mutations(draw, size: int):
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "header_edit", "replace_entry"]))
    if kind == "truncate":
        return kind, draw(st.integers(0, size - 1)), None
    if kind in ("flip", "overwrite", "insert"):
        at = draw(st.integers(0, size - 1))
        return kind, at, draw(st.binary(min_size=1, max_size=16))
    if kind == "header_edit":
        return (
            kind,
            draw(st.integers(0, 50)),
            draw(st.sampled_from([b"'shape': (", b"'descr': '", b"fortran_order", b"<f4", b"<f8", b"<i8"])),
        )
    return (
        kind,
        draw(st.integers(0, 50)),
        draw(st.sampled_from(["zeros", "nan", "huge_header", "object", "text", "empty", "big_shape"])),
    )


def mutate(raw: bytes, tmp: Path, m) -> bytes:
    kind, at, arg = m
    if kind == "truncate":
        return raw[:at]
    if kind == "flip":
        return raw[:at] + bytes(b ^ (x or 1) for b, x in zip(raw[at : at + len(arg)], arg)) + raw[at + len(arg) :]
    if kind == "overwrite":
        return raw[:at] + arg + raw[at + len(arg) :]
    if kind == "insert":
        return raw[:at] + arg + raw[at:]
    src = tmp / "src.npz"
    src.write_bytes(raw)
    entries = members(src)
    name = sorted(entries)[at % len(entries)]
    if kind == "header_edit":  # edit a header field of one member in place, rezip (valid zip)
        data = entries[name]
        i = data.find(arg)
        if i >= 0:
            j = i + len(arg)
            data = data[:j] + bytes([(data[j] + 1) % 128 or 49]) + data[j + 1 :] if j < len(data) else data
        entries[name] = data
    else:
        entries[name] = {
            "zeros": lambda: npy(np.zeros((3, 4))),
            "nan": lambda: npy(np.full((2,), np.nan)),
            "huge_header": lambda: npy_header("<f4", (1 << 40,)) + bytes(64),
            "object": lambda: npy_header("|O", (4,)) + bytes(32),
            "text": lambda: npy(np.array("{}")),
            "empty": lambda: b"",
            "big_shape": lambda: npy_header("<f8", (1 << 20, 1 << 20)),
        }[arg]()
    write_zip(src, entries)
    return src.read_bytes()


def _check_mutant(loader, equal, path):
    try:
        got = loader(path)
    except EdgetpError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith(f"{path}: "), msg
        return "error"
    assert equal(got), "a changed file loaded with different content"
    return "loaded"


def _same_model(m):
    ref = load_model(REAL_MODEL)
    return m.hash() == ref.hash() and all(
        np.array_equal(a, b) for a, b in zip(m.arrays().values(), ref.arrays().values())
    )


def _same_golden(g):
    ref = load_golden(REAL_GOLDEN)
    return (
        g.config == ref.config
        and set(g.arrays) == set(ref.arrays)
        and all(np.array_equal(g.arrays[k], ref.arrays[k]) for k in ref.arrays)
    )


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(data=st.data())
def test_mutated_model_files_give_one_line_or_the_same_model(tmp_path, data):
    raw = REAL_MODEL.read_bytes()
    m = data.draw(mutations(len(raw)))
    path = tmp_path / "mutant.npz"
    path.write_bytes(mutate(raw, tmp_path, m))
    event(_check_mutant(load_model, _same_model, path))


@PROPERTY
@given(data=st.data())
def test_mutated_golden_files_give_one_line_or_the_same_file(tmp_path, data):
    raw = REAL_GOLDEN.read_bytes()
    m = data.draw(mutations(len(raw)))
    path = tmp_path / "mutant.npz"
    path.write_bytes(mutate(raw, tmp_path, m))
    event(_check_mutant(load_golden, _same_golden, path))


def test_a_few_mutants_through_the_cli(tmp_path, cli):
    """The same property end to end: exit 2 and one line, or exit 0 for an unchanged content."""
    import random

    rnd = random.Random(12)
    argvs, paths = [], []
    for i in range(6):
        for src, cmd in ((REAL_MODEL, "export"), (REAL_GOLDEN, "conformance")):
            raw = src.read_bytes()
            kind = ["truncate", "flip", "overwrite", "insert", "header_edit", "replace_entry"][i]
            arg = {
                "truncate": None,
                "flip": b"\xff\x01",
                "overwrite": b"\0" * 8,
                "insert": b"PK",
                "header_edit": b"'shape': (",
                "replace_entry": "big_shape",
            }[kind]
            at = rnd.randrange(len(raw)) if kind in ("truncate", "flip", "overwrite", "insert") else i
            p = tmp_path / f"{cmd}{i}.npz"
            p.write_bytes(mutate(raw, tmp_path, (kind, at, arg)))
            paths.append(p)
            argvs.append(
                ["export", "--model", str(p), "--onnx", str(tmp_path / "o.onnx")]
                if cmd == "export"
                else ["conformance", str(p)]
            )
    for argv, p in zip(argvs, paths):
        r = cli(*argv)
        text = (r.stdout + r.stderr).strip()
        assert "Traceback" not in text, text
        if r.returncode == 2:
            assert len(text.splitlines()) == 1 and f"{p}: " in text, text
        else:
            assert r.returncode == 0, text
