"""One board's memory map checked (issue 29): the export's memory plan says whether kws-mcu fits an
nRF52840 and an ESP32-C3-class part, and a link with each part's regions proves it (link only)."""

import dataclasses

import pytest

from deploy.build import link_for_part
from edgetp.errors import EdgetpError
from firmware_gen import memplan
from firmware_gen.memplan import PARTS, STACK, fit_lines


@pytest.fixture(scope="module")
def kws_export(tmp_path_factory):
    import argparse

    from deploy.reference import export_c
    from edgetp.model import load_model
    from firmware_gen.options import add_device_options, device_from_args

    ap = argparse.ArgumentParser()
    add_device_options(ap)
    qm, cfg, _ = device_from_args(load_model("kws-mcu"), ap.parse_args([]))
    return export_c(qm, tmp_path_factory.mktemp("kws") / "model", cfg)


def _plan(cdir):
    import json

    return [memplan.Row(**r) for r in json.loads((cdir / "etp_manifest.json").read_text())["memory"]["items"]]


@pytest.mark.parametrize(
    "part,tools", [("nrf52840", ("arm-none-eabi-gcc",)), ("esp32c3", ("riscv64-unknown-elf-gcc",))]
)
def test_kws_mcu_plan_and_link_fit_the_part(part, tools, kws_export, tmp_path):
    from conftest import require

    require(*tools)
    p = PARTS[part]
    line = next(x for x in fit_lines(_plan(kws_export), STACK) if f"({part})" in x)
    assert "fits" in line and "NOT" not in line
    im = link_for_part(kws_export, part, tmp_path)
    assert 0 < im.sizes["flash"] < p.flash[1] and 0 < im.sizes["ram"] <= p.ram[1] and im.sizes["stack"] == STACK
    text = (im.path.parent / "etp_fw.map").read_text()
    assert f"0x{p.flash[0]:08x}" in text.lower() and f"0x{p.ram[0]:08x}" in text.lower()  # the part's regions


def test_a_part_too_small_fails_the_plan_and_the_link(kws_export, tmp_path, monkeypatch):
    from conftest import require

    require("arm-none-eabi-gcc")
    small = dataclasses.replace(PARTS["nrf52840"], ram=(0x20000000, 32 * 1024))
    monkeypatch.setitem(PARTS, "nrf52840", small)
    assert "does NOT fit" in next(x for x in fit_lines(_plan(kws_export), STACK) if "(nrf52840)" in x)
    with pytest.raises(EdgetpError, match="overflow"):
        link_for_part(kws_export, "nrf52840", tmp_path)
