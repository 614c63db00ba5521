"""`edgetp export --c` (memory plan, budgets, Cortex-M4 build) and `edgetp verify-c` as a user runs them."""

import json

import pytest

from edgetp.data.labels import label_names
from edgetp.model import MODELS_DIR, Model, load_model, save_model
from edgetp.tp.config import NetConfig, init_params
from conftest import can
from firmware_gen.build import build_arm

pytestmark = pytest.mark.needs("cc")


def model_file(tmp_path, net=(10, (8,), 4), name="m.npz"):
    cfg = NetConfig(net[0], net[1], net[2], True)
    labels = label_names("paper") if net[2] == 36 else [f"w{k}" for k in range(net[2])]
    path = tmp_path / name
    save_model(Model(cfg, init_params(cfg, 0), labels), path)
    return path


def kws_model(tmp_path):
    """The shipped kws-mcu when it exists, else a 120-128r-36 model of the same shape."""
    shipped = MODELS_DIR / "kws-mcu" / "model.npz"
    return shipped if shipped.is_file() else model_file(tmp_path, (120, (128,), 36), "kws.npz")


def test_export_c_prints_the_plan_and_builds_for_cortex_m4(cli, tmp_path):
    out = tmp_path / "c"
    r = cli("export", "--model", kws_model(tmp_path), "--c", out, "--ram-budget", "192K", "--flash-budget", "1M")
    assert r.returncode == 0, r.stderr
    for want in (
        "memory plan",
        "trainable weights",
        "target set",
        "scratch",
        "frozen weights",
        "total RAM",
        "total FLASH",
        "fits: RAM",
    ):
        assert want in r.stdout
    assert (out / "etp_model.h").is_file() and (out / "etp_manifest.json").is_file()
    man = json.loads((out / "etp_manifest.json").read_text())
    # the table starts with the trainable weights: W0, or the readout alone when the hidden layers are frozen
    frozen = (load_model(kws_model(tmp_path)).recipe.get("fixed") or {}).get("frozen_hidden")
    assert man["memory"]["totals"]["ram"] > 0 and man["tensors"][0]["name"] == ("W1" if frozen else "W0")
    if can("arm-none-eabi-gcc"):
        sizes = build_arm(out)
        assert sizes["etp_model.o"][2] == man["memory"]["totals"]["ram"]


def test_export_c_over_budget_fails_clearly_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "c"
    r = cli("export", "--model", model_file(tmp_path), "--c", out, "--ram-budget", "1K")
    assert r.returncode == 2
    assert "does not fit" in r.stderr and "--ram-budget" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_export_c_options_reach_the_header(cli, tmp_path):
    out = tmp_path / "c"
    r = cli(
        "export",
        "--model",
        model_file(tmp_path),
        "--c",
        out,
        "--wbits",
        "8",
        "--xbits",
        "8",
        "--fx",
        "5",
        "--targets",
        "batch",
        "--optimizer",
        "sgd",
        "--lr",
        "0.01",
    )
    assert r.returncode == 0, r.stderr
    h = (out / "etp_model.h").read_text()
    for want in (
        "typedef int8_t etp_x_t;",
        "typedef int8_t etp_w_t;",
        "#define ETP_X_FRAC 5",
        "#define ETP_N_TARGETS 1",
        "#define ETP_OPT_KIND_DEFAULT ETP_OPT_SGD",
    ):
        assert want in h
    r = cli("export", "--model", model_file(tmp_path), "--c", tmp_path / "d", "--optimizer", "adam")
    assert r.returncode == 2 and "optimizer" in r.stderr


def test_update_every_from_the_recipe_or_the_option(cli, tmp_path):
    """export --c / verify-c take ETP_UPDATE_EVERY from the model's recipe["finetune"]["update_every"]
    unless --update-every says otherwise; K < 1 is one line, exit 2."""
    from dataclasses import replace
    from edgetp.model import load_model

    path = tmp_path / "k2.npz"
    m = load_model(model_file(tmp_path))
    save_model(replace(m, recipe={"finetune": {"update_every": 2, "lr": 2e-4}}), path)
    r = cli("export", "--model", path, "--c", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert "#define ETP_UPDATE_EVERY 2u" in (tmp_path / "a" / "etp_model.h").read_text()
    assert json.loads((tmp_path / "a" / "etp_manifest.json").read_text())["device"]["update_every"] == 2
    r = cli("export", "--model", path, "--c", tmp_path / "b", "--update-every", "3")
    assert r.returncode == 0 and "#define ETP_UPDATE_EVERY 3u" in (tmp_path / "b" / "etp_model.h").read_text()
    r = cli("export", "--model", model_file(tmp_path), "--c", tmp_path / "c")
    assert r.returncode == 0 and "#define ETP_UPDATE_EVERY 1u" in (tmp_path / "c" / "etp_model.h").read_text()
    r = cli("export", "--model", path, "--c", tmp_path / "d", "--update-every", "0")
    assert r.returncode == 2 and r.stderr.startswith("ERROR") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("verify-c", "--model", path, "--steps", "5", "--epochs", "1", "--samples", "2", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["update_every"] == 2 and out["mismatches"] == 0 and out["steps"] == 2 * 2 * 5


def test_learning_rate_from_a_device_recipe_only(cli, tmp_path):
    """export --c's lr: --lr, else recipe["finetune"]["lr"] when the model records a device recipe
    (recipe["fixed"], as kws-mcu), else 1e-4 - a float recipe's lr (kws-paper's Adam) is not the device rule's."""
    from dataclasses import replace
    from edgetp.model import load_model

    m = load_model(model_file(tmp_path))
    dev = tmp_path / "dev.npz"
    save_model(replace(m, recipe={"fixed": {"targets": "classes"}, "finetune": {"lr": 2e-4}}), dev)
    flt = tmp_path / "float.npz"
    save_model(replace(m, recipe={"finetune": {"lr": 2e-4, "optimizer": "adam"}}), flt)

    def lr_of(model, name, *extra):
        r = cli("export", "--model", model, "--c", tmp_path / name, *extra)
        assert r.returncode == 0, r.stderr
        return json.loads((tmp_path / name / "etp_manifest.json").read_text())["device"]["lr"], r.stdout

    lr, out = lr_of(dev, "a")
    assert lr == 2e-4 and "learning rate 0.0002 from the model's recipe" in out
    assert lr_of(flt, "b")[0] == 1e-4
    assert lr_of(dev, "c", "--lr", "5e-5")[0] == 5e-5
    assert lr_of(model_file(tmp_path), "d")[0] == 1e-4


def test_verify_c_random_models_json(cli, tmp_path):
    path = tmp_path / "v.json"
    r = cli("verify-c", "--random-models", "3", "--seed", "11", "--steps", "4", "--json", path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(path.read_text())
    assert out["cases"] == 3 and out["steps"] >= 3 * 4 and out["mismatches"] == 0 and out["errors"] == 0
    assert all(isinstance(out[k], int) for k in ("cases", "steps", "mismatches"))
    assert "3 cases" in r.stdout and "0 mismatches" in r.stdout


def test_verify_c_model_run(cli, tmp_path):
    r = cli("verify-c", "--model", model_file(tmp_path), "--steps", "12", "--epochs", "2", "--samples", "3", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["cases"] == 1 and out["steps"] == (2 + 1) * 3 * 12 and out["mismatches"] == 0
    assert "finetune_fixed" in out["protocol"]


def test_verify_c_needs_a_subject(cli):
    r = cli("verify-c")
    assert r.returncode == 2 and "--model" in r.stderr
