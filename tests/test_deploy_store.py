"""The power-safe weight store: its Python twin, the firmware's SAVE / FACTORY_RESET / boot
report, the power-cut sweep on the host build (every operation of a save, both cut modes)
and sampled on QEMU, and the sweep finding planted store bugs (the tester tested)."""

import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import require

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import device  # noqa: E402

from deploy import protocol as P  # noqa: E402
from deploy.build import build, store_geometry  # noqa: E402
from deploy.host import DeviceError  # noqa: E402
from deploy.powercut import cut_indices, power_cut_sweep  # noqa: E402
from deploy.reference import IntReference, export_c, int_features, tiny_qmodel  # noqa: E402
from edgetp.errors import EdgetpError  # noqa: E402
from firmware_gen import store  # noqa: E402
from firmware_gen.build import STRICT  # noqa: E402
from firmware_gen.generate import render  # noqa: E402
from firmware_gen.layout import device_layout, persistent  # noqa: E402
from firmware_gen.tensors import TableDevice  # noqa: E402

PAGE, PROG = 256, 16  # small pages: a tiny model's save spans several, so erases are swept too


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    qm = tiny_qmodel(n_in=12, hidden=(10,), n_out=4)
    root = tmp_path_factory.mktemp("store")
    cdir = export_c(qm, root / "model")
    rng = np.random.default_rng(1)
    samples = [(int_features(qm, 1.5 * rng.standard_normal((15, 12))), k % 4) for k in range(4)]
    return qm, cdir, samples, root


# ----------------------------------------------------------------------------- Python twin
def test_persistent_state_is_weights_and_optimizer_from_the_layout():
    qm = tiny_qmodel(n_in=5, hidden=(4, 3), n_out=2)
    lay = device_layout(qm)
    names = [it.name for it in persistent(lay)]
    assert names[: len(qm.trainable_names)] == list(qm.trainable_names)
    assert {"rng", "opt_steps", "opt_cfg"} <= set(names) and all(f"rr_{n}" in names for n in qm.trainable_names)
    assert not {"S", "v0", "vt0", "trl", "u", "steps"} & set(names)


def test_slot_twin_round_trip_newest_wins_and_damage_is_rejected():
    qm = tiny_qmodel(n_in=5, hidden=(4,), n_out=3)
    lay = device_layout(qm)
    dev = TableDevice(qm)
    dev.init(3)
    dev.train(np.full(5, 900), 1)
    h = IntReference(qm).model_hash
    geo = store.geometry(lay, PAGE, PROG)
    pay = store.payload_of(lay, dev.tensors())
    assert len(pay) == geo.payload == sum(lay.nbytes(it) for it in persistent(lay))
    a, b = store.encode_slot(geo, pay, 7, h), store.encode_slot(geo, pay[::-1], 8, h)
    assert len(a) == geo.slot_bytes and geo.slot_bytes % PAGE == 0
    hdr = a[: store.HEADER_SIZE]
    assert zlib.crc32(pay, zlib.crc32(hdr[: store.CRC_OFF])) == int.from_bytes(hdr[store.CRC_OFF :], "little")
    assert store.boot_select(geo, a + b, h).generation == 8
    assert store.boot_select(geo, b + a, h).index == 0
    torn = bytearray(b)
    torn[geo.header_area + 5] ^= 0x10  # one bit of the payload
    assert store.boot_select(geo, a + bytes(torn), h).generation == 7
    assert store.decode_slot(geo, bytes(torn), 1, h).why == "crc"
    other = store.encode_slot(geo, pay, 9, "ab" * 32)  # another model's slot is ignored
    assert store.boot_select(geo, a + other, h).generation == 7
    assert store.decode_slot(geo, other, 1, h).why == "model"
    assert store.boot_select(geo, b"\xff" * geo.flash_bytes, h) is None
    assert geo.erases == geo.slot_bytes // PAGE and geo.programs == (geo.header_area + geo.payload + PROG - 1) // PROG
    with pytest.raises(EdgetpError):
        store.check_params(256, 24)


def test_memory_plan_reports_the_store_beside_ram_and_flash():
    from firmware_gen.memplan import format_plan, totals

    qm = tiny_qmodel(n_in=12, hidden=(10,), n_out=4)
    ex = render(qm)
    geo = store.geometry(ex.layout)
    assert totals(ex.plan)["store"] == geo.flash_bytes == 2 * geo.slot_bytes
    text = "\n".join(format_plan(ex.plan) + store.wear_lines(geo))
    assert "total STORE" in text and "per save" in text and "20,000 saves" in text
    assert f"#define ETP_STORE_PAYLOAD {geo.payload}u" in ex.files["etp_store_cfg.h"]


def test_store_source_is_strict_c99_on_host_and_cortex_m4(tiny, tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    require("cc")
    _, cdir, _, _ = tiny
    src = cdir / "etp_store.c"
    for page, prog in ((4096, 16), (256, 8), (1024, 256)):
        subprocess.run(
            [
                cc,
                *STRICT,
                "-O2",
                f"-DETP_FLASH_PAGE={page}u",
                f"-DETP_FLASH_PROG={prog}u",
                "-I",
                str(cdir),
                "-c",
                str(src),
                "-o",
                str(tmp_path / "s.o"),
            ],
            check=True,
        )
    require("arm-none-eabi-gcc")
    from firmware_gen.build import CORTEX_M4

    subprocess.run(
        ["arm-none-eabi-gcc", *STRICT, *CORTEX_M4, "-O2", "-I", str(cdir), "-c", str(src), "-o", str(tmp_path / "a.o")],
        check=True,
    )


# ----------------------------------------------------------------------------- firmware
def test_a_firmware_without_a_store_says_so():
    require("cc")
    with device() as (_, dev):
        assert dev.hello().store == {"has_store": 0, "boot": 0, "slot": 0, "valid": 0, "generation": 0}
        with pytest.raises(DeviceError, match="UNSUPPORTED"):
            dev.save()


def test_locked_build_saves_and_factory_resets(tiny, tmp_path):
    import serial

    from deploy.host import Device
    from deploy.targets import start

    require("cc")
    qm, cdir, samples, _ = tiny
    image = build(cdir, "host", locked=True, flash_page=PAGE, flash_prog=PROG)
    flash = tmp_path / "flash.bin"
    ref = IntReference(qm)
    ref.init(5)

    def session():
        t = start("host", image, flash=flash)
        return t, Device(serial.serial_for_url(t.url, timeout=0.01), timeout=0.3)

    t, dev = session()
    with t:
        assert not dev.hello().debug and dev.info.store["boot"] == store.STATUS.index("EMPTY")
        dev.init(5)
        dev.reset_state()
        for x in samples[0][0]:
            dev.train(x, 1)
        ref.train_sample(samples[0][0], 1)
        r = dev.save()
        assert (r["slot"], r["generation"]) == (0, 1)
        geo = store_geometry(cdir, PAGE, PROG)
        assert (r["erases"], r["programs"]) == (geo.erases, geo.programs)
        with pytest.raises(DeviceError, match="BAD_LEN"):
            dev.request(P.Cmd.SAVE, b"\x00")
        dev.close()
    assert flash.stat().st_size == geo.flash_bytes
    ref.dev.reset()
    t, dev = session()
    with t:
        assert dev.hello().store == {"has_store": 1, "boot": 0, "slot": 0, "valid": 1, "generation": 1}
        assert dev.digest()["digest"] == ref.digest()
        r = dev.factory_reset()
        assert (r["slot"], r["generation"], r["erases"]) == (store.NO_SLOT, 0, 2 * geo.erases)
        dev.close()
    ref.init(0)
    t, dev = session()
    with t:
        assert dev.hello().store["boot"] == store.STATUS.index("EMPTY")
        assert dev.digest()["digest"] == ref.digest()  # the shipped weights, as etp_init(0)
        dev.close()
    assert flash.read_bytes() == b"\xff" * geo.flash_bytes  # nothing of the user's state is left


# ----------------------------------------------------------------------------- the sweep
def _sweep(target, tiny, tmp_path, image=None, **kw):
    qm, cdir, samples, _ = tiny
    image = image or build(cdir, target, flash_page=PAGE, flash_prog=PROG)
    return power_cut_sweep(
        target,
        image,
        IntReference(qm),
        samples,
        tmp_path,
        geo=store_geometry(cdir, PAGE, PROG),
        lay=device_layout(qm),
        timeout=0.3 if target == "host" else 5.0,
        **kw,
    )


def test_power_cut_sweep_every_operation_on_the_host(tiny, tmp_path):
    require("cc")
    res = _sweep("host", tiny, tmp_path)
    geo = store_geometry(tiny[1], PAGE, PROG)
    n = geo.erases + geo.programs
    assert res["ops_per_save"] == {"erases": geo.erases, "programs": geo.programs, "total": n}
    assert list(res)[:4] == ["cuts", "restored_old", "restored_new", "corrupt"]
    assert res["cuts"] == 2 * n and not res["sampled"]
    assert (res["corrupt"], res["misplaced"], res["not_cut"]) == (0, 0, 0), res["failures"]
    assert (res["restored_old"], res["restored_new"]) == (2 * n - 1, 1)  # new only once the header is whole
    assert res["resume"]["mismatches"] == 0 and res["resume"]["boot"]["generation"] == 3


PLANTED = {
    # the header before the payload, and the CRC not checked: a torn payload boots as a valid slot
    "header first, no CRC check": [
        (
            "st = program_payload(base);\n    }\n    if (st == ETP_STORE_OK) {\n        st = program_header(base);",
            "st = program_header(base);\n    }\n    if (st == ETP_STORE_OK) {\n        st = program_payload(base);",
        ),
        ("if (crc != etp_rd32(hdr + ETP_STORE_CRC_OFF)) {", "if (crc == 0 && crc != 0) {"),
    ],
    # a save over the slot that holds the newest state: a cut leaves no complete slot
    "save over the newest slot": [
        ("uint32_t target = info.slot == 0u ? 1u : 0u", "uint32_t target = info.slot == 1u ? 1u : 0u")
    ],
}
NO_CRC = PLANTED["header first, no CRC check"][1:]


def _planted_sweep(edits, tiny, tmp_path):
    qm, cdir, samples, root = tiny
    bad = tmp_path / "model"
    shutil.copytree(cdir, bad)
    text = (bad / "etp_store.c").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    (bad / "etp_store.c").write_text(text)
    image = build(bad, "host", flash_page=PAGE, flash_prog=PROG)
    return power_cut_sweep("host", image, IntReference(qm), samples, tmp_path / "w", timeout=0.3, sample=16)


@pytest.mark.parametrize("bug", list(PLANTED))
def test_the_sweep_finds_a_planted_store_bug(bug, tiny, tmp_path):
    require("cc")
    res = _planted_sweep(PLANTED[bug], tiny, tmp_path)
    assert res["corrupt"] > 0, res


def test_without_the_crc_check_a_slot_turns_valid_before_its_header_is_whole(tiny, tmp_path):
    """The header-last order alone keeps cuts from booting a mix, but the new state then boots
    at cuts before the CRC unit was programmed: the sweep reports it as misplaced."""
    require("cc")
    res = _planted_sweep(NO_CRC, tiny, tmp_path)
    assert res["corrupt"] == 0 and res["misplaced"] > 0, res
    assert all(f["outcome"] == "new" and f["cut"] >= res["ops_per_save"]["total"] - 2 for f in res["failures"])


def test_cut_indices_cover_the_ends_of_a_save():
    assert cut_indices(10) == list(range(10))
    got = cut_indices(2000, 12)
    assert {0, 1, 1997, 1998, 1999} <= set(got) and 12 <= len(got) <= 17 and got == sorted(set(got))


@pytest.mark.parametrize("target", ["qemu", "qemu-m33", "qemu-rv32"])
def test_power_cut_sweep_sampled_on_qemu(target, tiny, tmp_path):
    """The semihosted flash (firmware/semihost/) on an Arm and a RISC-V board: every cut recovers."""
    require(
        *(
            ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
            if target == "qemu-rv32"
            else ("arm-none-eabi-gcc", "qemu-system-arm")
        )
    )
    res = _sweep(target, tiny, tmp_path, sample=6, modes=("torn", "after"))
    assert res["sampled"] and res["cuts"] >= 12
    assert (res["corrupt"], res["misplaced"], res["not_cut"]) == (0, 0, 0), res["failures"]
    assert res["restored_new"] == 1 and res["restored_old"] == res["cuts"] - 1
    assert res["resume"]["mismatches"] == 0


# ----------------------------------------------------------------------------- the CLI
def test_edgetp_hil_power_cut_sweep_cli(tone_models, tmp_path):
    from conftest import run_cli

    require("cc")
    root, models = tone_models
    model = models["unit"]
    out = tmp_path / "sweep.json"
    r = run_cli(
        "hil",
        "--target",
        "host",
        "--model",
        model,
        "--data-root",
        root,
        "--power-cut-sweep",
        "--set",
        "cut_sample=4",
        "--set",
        "flash_page=1024",
        "--json",
        out,
        "--quiet",
        env={"EDGETP_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert list(res)[:4] == ["cuts", "restored_old", "restored_new", "corrupt"]
    assert res["corrupt"] == 0 and res["restored_new"] == 1 and res["restored_old"] == res["cuts"] - 1 >= 8
    assert res["store"]["page"] == 1024 and res["ops_per_save"]["total"] == (
        res["store"]["erases_per_save"] + res["store"]["programs_per_save"]
    )
    assert "0 corrupt" in r.stdout and "went on learning with 0 mismatches" in r.stdout
    bad = run_cli(
        "hil",
        "--target",
        "/dev/null",
        "--model",
        model,
        "--data-root",
        root,
        "--power-cut-sweep",
        env={"EDGETP_HOME": str(tmp_path / "home")},
    )
    assert bad.returncode == 2 and "needs --target host or qemu" in bad.stderr and "Traceback" not in bad.stderr


def test_the_firmware_boots_the_slot_the_python_twin_selects(tiny, tmp_path):
    """Flash images written by firmware_gen.store (valid, older, damaged, another model's,
    erased): the C boot must pick the slot boot_select picks, and load its state."""
    import serial

    from deploy.host import Device
    from deploy.targets import start

    require("cc")
    qm, cdir, samples, _ = tiny
    image = build(cdir, "host", flash_page=PAGE, flash_prog=PROG)
    lay, geo, ref = device_layout(qm), store_geometry(cdir, PAGE, PROG), IntReference(qm)
    states = []
    for k in range(2):  # two different learned states
        ref.init(k)
        ref.train_sample(samples[k][0], samples[k][1])
        states.append((store.payload_of(lay, ref.tensors()), copy_boot_digest(ref)))
    rng = np.random.default_rng(0)
    blank = b"\xff" * geo.slot_bytes

    def damaged(slot: bytes) -> bytes:
        b = bytearray(slot)
        b[int(rng.integers(0, store.HEADER_SIZE + geo.payload))] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)

    def slot(k, gen, model=ref.model_hash):
        return store.encode_slot(geo, states[k][0], gen, model)

    cases = [
        (blank, blank),
        (slot(0, 1), blank),
        (blank, slot(1, 5)),
        (slot(0, 4), slot(1, 3)),
        (slot(0, 4), slot(1, 9)),
        (damaged(slot(0, 7)), slot(1, 2)),
        (slot(0, 7), damaged(slot(1, 8))),
        (damaged(slot(0, 2)), damaged(slot(1, 3))),
        (slot(0, 3, "cd" * 32), slot(1, 1)),
        (slot(0, 1), slot(1, 2, "ef" * 32)),
        (slot(0, 1)[: -geo.page] + blank[: geo.page], slot(1, 6)),
    ]
    for i, (a, b) in enumerate(cases):
        img = a + b
        flash = tmp_path / f"f{i}.bin"
        flash.write_bytes(img)
        want = store.boot_select(geo, img, ref.model_hash)
        with start("host", image, flash=flash) as t:
            dev = Device(serial.serial_for_url(t.url, timeout=0.01), timeout=0.3)
            st, d = dev.hello().store, dev.digest()["digest"]
            dev.close()
        if want is None:
            ref.init(0)
            assert (st["boot"], st["slot"]) == (store.STATUS.index("EMPTY"), store.NO_SLOT), (i, st)
            assert d == ref.digest(), i
        else:
            k = 0 if want.payload == states[0][0] else 1
            assert (st["boot"], st["slot"], st["generation"]) == (0, want.index, want.generation), (i, st)
            assert d == states[k][1], i
        valid = sum(
            1 << s for s in range(2) if store.decode_slot(geo, img[s * geo.slot_bytes :], s, ref.model_hash).valid
        )
        assert st["valid"] == valid, (i, st)


def copy_boot_digest(ref) -> int:
    import copy

    r = copy.deepcopy(ref)
    r.dev.reset()
    return r.digest()


def test_a_frozen_hidden_build_saves_the_readout_and_refuses_another_layout(tmp_path):
    """Frozen-hidden (int8 hidden layers in flash): the store saves the readout and the optimizer
    only, a save boots back to the same state, and a slot written by the non-frozen export of the
    same weights (another layout and model hash) is ignored."""
    import serial

    from deploy.host import Device
    from deploy.targets import start
    from edgetp.fixed.device import DeviceConfig

    require("cc")
    qm = tiny_qmodel(n_in=12, hidden=(10,), n_out=4, hbits=8, frozen_hidden=True)
    cfg = DeviceConfig(train="readout", frozen_hidden=True)
    cdir = export_c(qm, tmp_path / "model", cfg)
    lay, geo = device_layout(qm), store_geometry(cdir, PAGE, PROG)
    assert [it.name for it in persistent(lay)] == ["W1", "rng", "opt_steps", "opt_cfg", "rr_W1", "cc_W1"]
    assert geo.payload == sum(lay.nbytes(it) for it in persistent(lay))
    image = build(cdir, "host", flash_page=PAGE, flash_prog=PROG)
    ref = IntReference(qm, cfg)
    ref.init(5)
    xs = int_features(qm, 1.5 * np.random.default_rng(4).standard_normal((15, 12)))
    flash = tmp_path / "flash.bin"
    with start("host", image, flash=flash) as t:
        dev = Device(serial.serial_for_url(t.url, timeout=0.01), timeout=0.3)
        dev.hello()
        dev.init(5)
        dev.reset_state()
        for x in xs:
            dev.train(x, 2)
        ref.train_sample(xs, 2)
        assert dev.digest()["digest"] == ref.digest()
        dev.save()
        dev.close()
    saved = store.boot_select(geo, flash.read_bytes(), ref.model_hash)
    assert saved is not None and saved.payload == store.payload_of(lay, ref.tensors())
    ref.dev.reset()
    with start("host", image, flash=flash) as t:
        dev = Device(serial.serial_for_url(t.url, timeout=0.01), timeout=0.3)
        assert dev.hello().store["boot"] == 0 and dev.digest()["digest"] == ref.digest()
        dev.close()
    # the same weights exported with trainable hidden layers: another model hash and payload
    other_qm = tiny_qmodel(n_in=12, hidden=(10,), n_out=4)
    other_lay = device_layout(other_qm)
    other_ref = IntReference(other_qm)
    other_ref.init(5)
    other_geo = store.geometry(other_lay, PAGE, PROG)
    assert other_ref.model_hash != ref.model_hash and other_geo.payload != geo.payload
    foreign = store.encode_slot(other_geo, store.payload_of(other_lay, other_ref.tensors()), 9, other_ref.model_hash)
    img = (foreign + b"\xff" * geo.flash_bytes)[: geo.flash_bytes]
    flash.write_bytes(img)
    assert store.boot_select(geo, img, ref.model_hash) is None
    ref.init(0)
    with start("host", image, flash=flash) as t:
        dev = Device(serial.serial_for_url(t.url, timeout=0.01), timeout=0.3)
        assert dev.hello().store["boot"] == store.STATUS.index("EMPTY") and dev.digest()["digest"] == ref.digest()
        dev.close()
