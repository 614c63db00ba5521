"""The export as a CMake project (firmware_gen/cmake.py): `edgetp export --c` writes it; CMake builds
the host firmware from it (run bit for bit against the integer reference) and the library for two
cross cores with the toolchain files (the objects are for that core; the intrinsics option works)."""

import subprocess
from pathlib import Path

import pytest

from conftest import require

from deploy.bitexact import run_script, serve
from deploy.build import FIRMWARE, Image
from firmware_gen.cases import CaseSpec, build_model, build_script, device_config
from firmware_gen.cmake import LISTS, cmake_files
from firmware_gen.generate import render
from firmware_gen.tensors import TableDevice

pytestmark = pytest.mark.needs("cmake", "cc")
DSP = ("smlald", "sxtb16")  # the runtime's Arm DSP intrinsics (etp_kernels.c), as instructions


def _export(tmp_path, spec):
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    src = tmp_path / "export"
    ex.write(src)
    for name, text in cmake_files(ex.files, ex.model_hash).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    return qm, dev, src


def _cmake(src, build, *defs):
    for cmd in (["cmake", "-S", str(src), "-B", str(build), *defs], ["cmake", "--build", str(build), "-j2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_export_c_writes_the_cmake_project(tmp_path):
    from conftest import run_cli

    out = tmp_path / "c"
    r = run_cli("export", "--model", "kws-mcu", "--c", out)
    assert r.returncode == 0, r.stdout + r.stderr
    lists = (out / LISTS).read_text()
    assert "add_library(edgetp_model STATIC" in lists and "option(ETP_ARM_INTRINSICS" in lists
    assert all(f"    {p.name}" in lists for p in out.glob("*.c"))  # every source of the export, once
    assert sorted(p.name for p in (out / "cmake").iterdir()) == [
        "cortex-m33.cmake",
        "cortex-m4.cmake",
        "cortex-m7.cmake",
        "rv32imac.cmake",
    ]


def test_cmake_host_firmware_is_bit_exact(tmp_path):
    """The host firmware built by CMake (the export's library + edgetp's server + the host port)."""
    spec = CaseSpec(steps=3, samples=2)
    qm, dev, src = _export(tmp_path, spec)
    _cmake(
        src,
        tmp_path / "build",
        f"-DETP_FIRMWARE_DIR={FIRMWARE}",
        f"-DETP_PORT_SOURCES={FIRMWARE / 'host' / 'port_host.c'}",
    )
    image = Image("host", tmp_path / "build" / "edgetp_fw", False)
    with serve(image) as d:
        assert d.info.model_hash == render(qm, dev).model_hash[:64]
        steps, mm = run_script(d, TableDevice(qm, dev), build_script(spec))
    assert mm is None and steps == 6, mm


def _objdump(tool, archive: Path) -> str:
    return subprocess.run([tool, "-d", str(archive)], capture_output=True, text=True, check=True).stdout


def test_cmake_cross_builds_for_cortex_m33_and_rv32(tmp_path):
    require("arm-none-eabi-gcc", "riscv64-unknown-elf-gcc")
    _, _, src = _export(tmp_path, CaseSpec())
    m33 = tmp_path / "m33"
    _cmake(src, m33, f"-DCMAKE_TOOLCHAIN_FILE={src / 'cmake' / 'cortex-m33.cmake'}")
    lib = m33 / "libedgetp_model.a"
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(lib)], capture_output=True, text=True).stdout
    assert "Tag_CPU_arch: v8-M.mainline" in attrs and "Tag_DSP_extension: Allowed" in attrs
    assert any(i in _objdump("arm-none-eabi-objdump", lib).split() for i in DSP)
    # the intrinsics option: OFF leaves the portable C (no DSP instruction in the library)
    off = tmp_path / "m33-portable"
    _cmake(src, off, f"-DCMAKE_TOOLCHAIN_FILE={src / 'cmake' / 'cortex-m33.cmake'}", "-DETP_ARM_INTRINSICS=OFF")
    assert not any(i in _objdump("arm-none-eabi-objdump", off / "libedgetp_model.a").split() for i in DSP)

    rv = tmp_path / "rv32"
    _cmake(src, rv, f"-DCMAKE_TOOLCHAIN_FILE={src / 'cmake' / 'rv32imac.cmake'}")
    head = subprocess.run(
        ["riscv64-unknown-elf-readelf", "-h", str(rv / "libedgetp_model.a")], capture_output=True, text=True
    ).stdout
    assert "ELF32" in head and "RISC-V" in head
