"""verify-c's core: play one script on the firmware (etp_server built for the host, on pipes,
or for an emulated board, over its UART; driven by deploy.host.Device) and on the integer
reference, and compare every state tensor after every step, the prediction and the digest
after every sample.

:func:`verify_export` writes and builds an export (deploy.build, every warning an error,
optionally ASan+UBSan) and plays it; :func:`run_script` plays a script on an open Device.
The first difference is named by deploy.compare (the HIL's comparator too).
"""

from __future__ import annotations

import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy import protocol as P
from deploy.build import build
from deploy.compare import Difference, first_difference
from deploy.host import Device, DeviceError, LinkError
from deploy.host import open_port
from deploy.targets import PipeTarget, TargetExited, start
from edgetp.errors import EdgetpError
from firmware_gen.build import SAN_ENV
from firmware_gen.generate import Export
from firmware_gen.script import Script, op_method, play
from firmware_gen.tensors import TableDevice, tensor_bytes

ERROR_OPS = ("compile", "run", "exit")  # the C program failed, rather than computed something else
ETP_EBADARG = 1  # etp_api.h: etp_status_t
TIMEOUT = 60.0  # seconds for one answer (a pipe loses nothing: no retries)


@dataclass
class Mismatch:
    case: int
    step: int
    op: str
    tensor: str = ""
    index: int = -1
    c_value: int = 0
    ref_value: int = 0
    detail: str = ""
    differing: tuple = ()  # every tensor that differs at that step, in table order
    diff: Difference | None = None

    def __str__(self) -> str:
        if self.diff is not None:
            return f"case {self.case}: first difference after step {self.step} ({self.op}): {self.diff}"
        return f"case {self.case}: step {self.step} ({self.op}): {self.detail}"


def refusal(fn, *args) -> int:
    """Run a Device command; 0, or the model API's status (etp_status_t) when the firmware
    refused it (MODEL: its detail; BAD_ARG, READONLY: ETP_EBADARG). Other errors raise."""
    try:
        fn(*args)
    except DeviceError as exc:
        if exc.status == P.Status.MODEL:
            return exc.detail
        if exc.status in (P.Status.BAD_ARG, P.Status.READONLY):
            return ETP_EBADARG
        raise
    return 0


def play_device(dev: Device, op) -> int:
    """Apply one script operation (not "end_sample") to the firmware; returns its status."""
    return refusal(op_method(dev, op, {"reset": "reset_state"}), *op[1:])  # the RESET command: Device.reset_state


def run_script(dev: Device, ref: TableDevice, script: Script, case: int = 0, shapes: dict | None = None):
    """Play ``script`` on both; returns (steps done, Mismatch or None)."""
    steps = 0
    shapes = shapes or {}
    for op in script.ops:
        kind = op[0]
        if kind == "end_sample":
            p, d = dev.predict(), dev.digest()["digest"]
            if p != ref.predict() or d != ref.digest():
                return steps, Mismatch(
                    case,
                    steps,
                    "end of sample",
                    detail=f"predict C {p} / Python {ref.predict()}, digest C {d:08x} / Python {ref.digest():08x}",
                )
            continue
        got = play_device(dev, op)
        play(ref, op)
        if got != 0:
            return steps, Mismatch(case, steps, kind, c_value=got, detail=f"C returned status {got}")
        if kind in ("train", "infer"):
            steps += 1
        ref_t = ref.tensors()
        blob = dev.read_state()
        if blob != tensor_bytes(ref_t):
            shaped = [
                (n, a.reshape(shapes[n]) if n in shapes and a.size == math.prod(shapes[n]) else a) for n, a in ref_t
            ]
            diff = first_difference(dev.state_tensors(blob), shaped)
            what = kind + (f" label {op[2]}" if kind == "train" else "")
            if diff is None:
                return steps, Mismatch(case, steps, what, "<bytes>", detail="the state's bytes differ")
            return steps, Mismatch(
                case,
                steps,
                what,
                diff.tensor or "<table>",
                diff.index,
                diff.device,
                diff.reference,
                str(diff),
                diff.differing,
                diff,
            )
    return steps, None


def build_firmware(
    export_dir: Path, sanitize: bool = False, cc: str | None = None, out_root: Path | None = None, target: str = "host"
):
    """The export's firmware: strict C99, every warning an error, and the frontend's trace
    (READ_FE) when the export carries the frontend; built under ``out_root`` (default
    ``export_dir``/firmware). For the host optionally ASan+UBSan, with frames of up to
    PIPE_MAX_PAYLOAD bytes (a pipe is no UART: the state of a kws model, ~300 KB, is then 10
    frames, not 1 200); for an emulated board (deploy/boards.py) the UART's frames."""
    out = out_root or Path(export_dir) / "firmware"
    if target != "host":
        if sanitize or cc:
            raise EdgetpError("sanitizers and a compiler choice are for the host build only")
        return build(export_dir, target, out_root=out, extra_cflags=["-Werror", "-DETP_FE_TRACE=1"])
    return build(
        export_dir,
        "host",
        out_root=out,
        cc=cc,
        sanitize=sanitize,
        extra_cflags=["-Werror", f"-DETP_MAX_PAYLOAD={P.PIPE_MAX_PAYLOAD}u", "-DETP_FE_TRACE=1"],
    )


@contextmanager
def _board(image):
    """An emulated board running ``image``, and a Device on its UART (as hil drives it)."""
    with start(image.target, image) as target:
        dev = Device(open_port(target.url), timeout=5.0)
        try:
            dev.hello()
            yield dev
        finally:
            dev.close()


@contextmanager
def serve(image, sanitize: bool = False):
    """Start ``image`` and yield a Device in session with it: a host build on pipes (at the end
    the firmware exits; TargetExited if its status is not 0: a sanitizer's exit checks), a board's
    under QEMU over its UART."""
    if image.target != "host":
        with _board(image) as dev:
            yield dev
        return
    target = PipeTarget(image, SAN_ENV if sanitize else None)
    try:
        dev = Device(target.port, timeout=TIMEOUT, retries=0)
        dev.hello()
        yield dev
    except BaseException:
        try:
            target.close()
        except TargetExited:
            pass  # the error on its way out says more
        raise
    target.close()


def verify_export(
    export: Export,
    ref: TableDevice,
    script: Script,
    case: int = 0,
    sanitize: bool = False,
    workdir: Path | None = None,
    cc: str | None = None,
    target: str = "host",
):
    """Write ``export``, build its firmware for ``target`` (host or an emulated board), play
    ``script``; returns (steps, Mismatch or None)."""
    with tempfile.TemporaryDirectory(prefix="etp_verify_") as tmp:
        workdir = Path(workdir or tmp)
        export.write(workdir)
        try:
            image = build_firmware(workdir, sanitize, cc, target=target)
        except EdgetpError as exc:
            return 0, Mismatch(case, 0, "compile", detail=str(exc))
        shapes = {it.name: it.shape for it in export.layout.table()}
        steps, mm, played = 0, None, False
        try:
            with serve(image, sanitize) as dev:
                if dev.info.model_hash != export.model_hash[:64]:
                    return 0, Mismatch(case, 0, "meta", detail="the C model hash differs")
                if not dev.info.debug:
                    return 0, Mismatch(case, 0, "meta", detail="the firmware is locked: its state cannot be read")
                steps, mm = run_script(dev, ref, script, case, shapes)
                played = True
        except (TargetExited, LinkError, DeviceError) as exc:
            if not played:
                return 0, Mismatch(case, -1, "run", detail=str(exc))
            return steps, mm or Mismatch(case, steps, "exit", detail=str(exc))
        return steps, mm
