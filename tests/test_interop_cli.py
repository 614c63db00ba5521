"""`edgetp export` and `edgetp import-model`: files in tmp_path, one-line errors."""

import numpy as np
import pytest

from conftest import require  # noqa: E402

require("onnx", "onnxruntime", "nir", module_level=True)

from edgetp.cli import main  # noqa: E402
from edgetp.model import Model, load_model, save_model  # noqa: E402
from edgetp.tp.config import NetConfig, init_params  # noqa: E402


@pytest.fixture
def model_file(tmp_path):
    cfg = NetConfig(12, (16, 8), 5, recurrent=True, reset="soft", vth=0.5)
    save_model(Model(cfg, init_params(cfg, seed=4), ["yes", "no", "up", "down", "go"]), tmp_path / "m.npz")
    return tmp_path / "m.npz"


def test_export_then_import_both_formats_is_lossless(tmp_path, model_file, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "export",
                "--model",
                str(model_file),
                "--onnx",
                str(out / "m.onnx"),
                "--check",
                "--nir",
                str(out / "m.nir"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "opset 17" in text and "max |u_onnx - u_reference| = 0" in text and "reset='soft'" in text
    for src in ("m.onnx", "m.nir"):
        assert main(["import-model", str(out / src), "--out", str(tmp_path / f"{src}.npz")]) == 0
        assert load_model(tmp_path / f"{src}.npz").hash() == load_model(model_file).hash()


def test_scan_form_and_labels_file(tmp_path, model_file, capsys):
    assert main(["export", "--model", str(model_file), "--onnx", str(tmp_path / "s.onnx"), "--onnx-form", "scan"]) == 0
    (tmp_path / "labels.txt").write_text("a\nb\nc\nd\ne\n")
    assert (
        main(
            [
                "import-model",
                str(tmp_path / "s.onnx"),
                "--out",
                str(tmp_path / "s.npz"),
                "--labels",
                str(tmp_path / "labels.txt"),
                "--gamma",
                "1",
            ]
        )
        == 0
    )
    back = load_model(tmp_path / "s.npz")
    assert back.labels == list("abcde") and back.cfg.gamma == 1.0
    assert np.array_equal(back.params.S_rec, load_model(model_file).params.S_rec)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["export", "--model", "{m}"], "nothing to export: give --onnx and/or --nir"),
        (["export", "--model", "{d}/none.npz", "--onnx", "{d}/x.onnx"], "model file not found"),
        (["import-model", "{d}/bad.onnx", "--out", "{d}/x.npz"], "not a valid ONNX model"),
        (["import-model", "{d}/bad.nir", "--out", "{d}/x.npz"], "not a readable NIR graph"),
        (["import-model", "{d}/bad.bin", "--out", "{d}/x.npz"], "cannot tell the format"),
        (["import-model", "{d}/none.onnx", "--out", "{d}/x.npz"], "no such file"),
        (
            ["import-model", "{d}/good.onnx", "--out", "{d}/x.npz", "--labels", "a,b"],
            "2 labels given for a network with 5",
        ),
        (["import-model", "{d}/good.onnx", "--out", "{d}/x.npz", "--dt", "0.001"], "--dt applies to NIR files only"),
    ],
)
def test_errors_are_one_line(tmp_path, model_file, capsys, argv, message):
    for name in ("bad.onnx", "bad.nir", "bad.bin"):
        (tmp_path / name).write_bytes(b"\x00corrupt")
    main(["export", "--model", str(model_file), "--onnx", str(tmp_path / "good.onnx")])
    capsys.readouterr()
    assert main([a.format(m=model_file, d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
