"""The Cortex-M4 firmware under QEMU (mps2-an386): the instruction counter is exact,
the image's sizes are reported, and the protocol behaves as on the host build."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import FAKE_DIR, device  # noqa: E402

from deploy.build import build  # noqa: E402

pytestmark = pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")


def test_instruction_counter_is_exact_to_its_resolution():
    """A step that is a loop of exactly 2 instructions run n times reads 2 n + a constant,
    to one SysTick tick (5 instructions): where a step starts within a tick varies."""
    with device("qemu", model_dir=FAKE_DIR / "calib") as (_, dev):
        info = dev.hello()
        assert info.counter_name == "instructions" and info.counter_res == 5
        dev.init(0)
        cost = {}
        for n in (0, 1000, 5000, 30000):
            x = np.zeros(8, dtype=np.int16)
            x[0] = n
            got = [dev.train(x, 0)["cost"] * info.counter_res for _ in range(5)]
            assert max(got) - min(got) <= 5
            cost[n] = got
        base = min(cost[0])
        for n in (1000, 5000, 30000):
            assert all(abs(c - base - 2 * n) <= 5 for c in cost[n]), (n, cost[n], base)


@pytest.mark.parametrize(
    "target",
    [
        "qemu",
        "qemu-m7",
        "qemu-m33",
        pytest.param("qemu-rv32", marks=pytest.mark.needs("riscv64-unknown-elf-gcc", "qemu-system-riscv32")),
    ],
)
def test_image_sizes_and_ram_report(target):
    """On every emulated board (deploy/boards.py): the ELF's figures and the firmware's own agree."""
    image = build(FAKE_DIR, target)
    s = image.sizes
    assert s["flash"] == s["text"] + s["data"] and s["ram"] == s["data"] + s["bss"]
    assert s["stack"] == 2048 and s["bss"] >= s["stack"] and 0 < s["text"] < 64 * 1024
    with device(target) as (_, dev):
        dev.hello()
        dev.init(1)
        dev.train(np.arange(8), 1)
        c = dev.counters()
        assert 0 < c["stack_used"] < c["stack_size"] == 2048
        assert c["ram_static"] == s["ram"] - s["stack"]
        assert c["train_n"] == 1 and c["train_last"] > 0


def test_locked_build_links_for_the_board_counter():
    image = build(FAKE_DIR, "board", locked=True)
    assert image.path.is_file() and image.sizes["flash"] > 0


def test_profile_names_the_functions_of_a_training_and_an_inference_step():
    from deploy.profile import build_profile, run_profile

    import tempfile

    res = run_profile(build_profile(FAKE_DIR, Path(tempfile.mkdtemp()), steps=10), timeout=60)
    names = {f["name"]: f for f in res["functions"]["train"]}
    assert names["etp_train_step"]["calls"] == 10 and names["forward"]["calls"] == 10
    assert names["etp_train_step"]["inclusive"] >= names["forward"]["inclusive"] > 0
    # the inference table holds the inference steps alone (the training table was cleared after it was printed)
    infer = {f["name"]: f for f in res["functions"]["infer"]}
    assert "etp_train_step" not in infer and infer["etp_infer_step"]["calls"] == 10 and infer["forward"]["calls"] == 10
    assert 0 < infer["etp_infer_step"]["inclusive"] < names["etp_train_step"]["inclusive"]
    assert 0 < res["totals"]["hook_h"] < 1000
    fr = res["frames"]  # every step's cost: the test double learns on every step
    assert (fr["learn"]["n"], fr["forward"], fr["infer"]["n"]) == (10, {}, 10)
    assert fr["learn"]["max"] == fr["learn"]["p999"] >= fr["learn"]["mean"] > 0


def test_another_boards_port_folder_builds(tmp_path):
    import shutil

    from deploy.build import FIRMWARE
    from edgetp.errors import EdgetpError

    for f in ("mps2/startup.c", "mps2/port_mps2.c", "etp_crt.c", "semihost/semihost_flash.c", "etp_image.ld"):
        shutil.copy(FIRMWARE / f, tmp_path / Path(f).name.replace("mps2", "myboard"))
    image = build(FAKE_DIR, "board", tmp_path / "out", port_dir=tmp_path)
    assert image.sizes["flash"] > 0
    (tmp_path / "second.ld").write_text("")
    with pytest.raises(EdgetpError, match="exactly one linker script"):
        build(FAKE_DIR, "board", tmp_path / "out", port_dir=tmp_path)
