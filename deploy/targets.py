"""Start a built firmware and give back where to connect: the host pty or QEMU's pty.

- :class:`HostTarget` runs the native build; it prints its pty. Reset: SIGUSR1 (the
  process re-executes itself on the same pty, so all its RAM state is new).
- :class:`QemuTarget` runs an emulated board of deploy/boards.py (``qemu``: ``qemu-system-arm
  -M mps2-an386``; ``qemu-m7``, ``qemu-m33``, ``qemu-rv32``) with ``-serial pty`` and
  ``-icount shift=S,sleep=on`` (instruction counting, deploy/boards.py; while the core
  sleeps in WFI virtual time follows real time, which is twice as fast on the link as
  sleep=off) and an HMP monitor on a UNIX socket. Reset: ``system_reset`` (the whole
  board, as a reset button would).
- :class:`PortTarget` is an already running device behind a serial URL (a board);
  it cannot be reset from here.
- :class:`PipeTarget` runs the native build with ``--stdio``: the link is a pair of pipes,
  its ``port`` (verify-c: no pty to allocate, and a firmware that dies - a sanitizer report,
  a crash - is seen at once, with its exit status and stderr, as :class:`TargetExited`).

Each is a context manager; ``close()`` ends only the process it started.

Flash (the weight store, firmware_gen/store.py): ``flash=PATH`` backs the simulated NOR
with a file, so a saved state survives the process (the host port reads
``$ETP_FLASH_FILE``, the QEMU port reaches the file by semihosting); ``cut=N``,
``cut_mode="torn"|"after"`` cut the power at the N-th flash operation (the power-cut sweep).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from deploy.boards import BOARDS, EMULATED
from deploy.build import Image
from edgetp.errors import EdgetpError

QEMU = BOARDS["qemu"].qemu


def have_qemu(target: str = "qemu") -> bool:
    return shutil.which(BOARDS[target].qemu) is not None


class Target:
    url: str = ""
    name: str = "device"

    def reset(self) -> None:
        raise EdgetpError(f"{self.name}: cannot reset this target from the host")

    @property
    def can_reset(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Proc(Target):
    """A child process that announces its pty on stdout or stderr."""

    pattern = re.compile(r"(/dev/pts/\d+)")

    def _start(self, cmd: list[str], what: str, wait: float = 20.0, env: dict | None = None) -> None:
        self.log: list[str] = []
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env=env,
            )
        except FileNotFoundError:
            raise EdgetpError(f"{what}: {cmd[0]} is not installed (./setup.sh installs it)") from None
        found = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                m = self.pattern.search(line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(wait) or not self.url:
            self.close()
            raise EdgetpError(f"{what} did not announce its serial port:\n" + "\n".join(self.log[-20:]))

    @property
    def can_reset(self) -> bool:
        return True

    def close(self) -> None:
        p = getattr(self, "proc", None)
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


class HostTarget(_Proc):
    name = "host firmware"

    def __init__(self, image: Image, flash=None, cut: int | None = None, cut_mode: str = "torn"):
        self.image = image
        env = dict(os.environ)
        for k in ("ETP_FLASH_FILE", "ETP_FLASH_CUT", "ETP_FLASH_CUT_MODE"):
            env.pop(k, None)
        if flash is not None:
            env["ETP_FLASH_FILE"] = str(flash)
        if cut is not None:
            env.update(ETP_FLASH_CUT=str(int(cut)), ETP_FLASH_CUT_MODE=cut_mode)
        self._start([str(image.path)], "the host firmware", 10.0, env)

    def reset(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)


class QemuTarget(_Proc):
    def __init__(self, image: Image, flash=None, cut: int | None = None, cut_mode: str = "torn", board: str = "qemu"):
        self.image = image
        bd = BOARDS[board]
        self.name = f"QEMU {bd.machine}"
        self._dir = tempfile.mkdtemp(prefix="etp-qemu-")
        self.monitor = os.path.join(self._dir, "mon.sock")
        semi = "enable=on,target=native,arg=etp_fw"  # the port's flash file and power cut (semihost_flash.c)
        if flash is not None:
            if any(c in str(flash) for c in " ,") or len(str(flash)) > 200:
                raise EdgetpError(
                    f"the QEMU flash file's path may not hold spaces or commas, nor exceed 200 characters: {flash}"
                )
            semi += f",arg=flash={flash}"
        if cut is not None:
            semi += f",arg=cut={int(cut)},arg=mode={cut_mode}"
        cmd = [
            *bd.qemu_cmd(image.path),
            "-monitor",
            f"unix:{self.monitor},server=on,wait=off",
            "-semihosting-config",
            semi,
        ]
        self.cmd = cmd
        self._start(cmd, bd.qemu)

    def hmp(self, command: str) -> str:
        """One human-monitor command (e.g. ``system_reset``)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.monitor)
            time.sleep(0.05)
            s.recv(4096)  # banner
            s.sendall(command.encode() + b"\n")
            time.sleep(0.1)
            try:
                return s.recv(4096).decode(errors="replace")
            except socket.timeout:
                return ""

    def reset(self) -> None:
        self.hmp("system_reset")

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._dir, ignore_errors=True)


class TargetExited(EdgetpError):
    """The firmware process ended (a sanitizer report, a crash, or an exit status != 0)."""


class _PipePort:
    """The port of a :class:`PipeTarget`: what deploy.host.Device reads and writes."""

    in_waiting = 0  # Device then reads with read(1): read returns whatever has come

    def __init__(self, target: "PipeTarget"):
        self.target = target
        self.fd = target.proc.stdout.fileno()

    def write(self, data: bytes) -> None:
        try:
            self.target.proc.stdin.write(data)
            self.target.proc.stdin.flush()
        except BrokenPipeError:
            raise self.target.exited() from None

    def read(self, n: int) -> bytes:
        if not select.select([self.fd], [], [], 0.02)[0]:
            return b""
        data = os.read(self.fd, 1 << 16)
        if not data:
            raise self.target.exited()
        return data

    def close(self) -> None:
        pass


class PipeTarget(Target):
    name = "host firmware (pipes)"
    url = "stdio"

    def __init__(self, image: Image, env: dict | None = None):
        self.image = image
        self._err = tempfile.TemporaryFile()  # a file, not a pipe: a long report cannot block the firmware
        self.proc = subprocess.Popen(
            [str(image.path), "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            preexec_fn=_die_with_parent,
            env=dict(os.environ, **(env or {})),
        )
        self.port = _PipePort(self)

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def exited(self) -> TargetExited:
        """The error for a firmware that stopped answering: its exit status and stderr."""
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return TargetExited(f"the firmware stopped (exit status {self.proc.returncode}):\n{self.stderr()[-4000:]}")

    def close(self) -> None:
        """End the link (end of stdin: the firmware exits, a sanitizer build after its exit checks);
        raises :class:`TargetExited` if the exit status is not 0."""
        if self._err.closed:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except BrokenPipeError:
                pass
        err = self.stderr()
        self._err.close()
        if self.proc.returncode != 0:
            raise TargetExited(f"the firmware exited with status {self.proc.returncode}:\n{err[-4000:]}")


class PortTarget(Target):
    def __init__(self, url: str):
        self.url = url
        self.name = f"device at {url}"


def builds(target: str) -> bool:
    """Whether the firmware for ``target`` is built here (host, an emulated board), not on a board."""
    return target == "host" or target in EMULATED


def check_target(target: str) -> None:
    if builds(target):
        return
    if not target or (not re.match(r"^[a-z]+://", target) and not Path(target).exists()):
        raise EdgetpError(
            f"--target must be host, {', '.join(EMULATED)}, a serial port or a pyserial URL; {target!r} is none"
        )


def start(target: str, image: Image | None = None, **flash) -> Target:
    """``host`` or an emulated board start ``image`` (``flash``: ``flash=PATH``, ``cut=N``,
    ``cut_mode``); anything else is a serial URL or port name."""
    check_target(target)
    if target == "host":
        return HostTarget(image, **flash)
    if target in EMULATED:
        return QemuTarget(image, **flash, board=target)
    return PortTarget(target)
