"""The emulated boards the firmware is built for and run on: one row each, the only place their
differences are written down (deploy/build.py compiles a row into C defines and link symbols,
deploy/targets.py starts QEMU from it).

The three MPS2 boards share one port (firmware/mps2/: CMSDK APB UART, SysTick, startup) and one
linker script; what differs - the core, the UART's base address and RX interrupt, the core clock,
the memory map - is a parameter here. The RISC-V ``virt`` board has its own port (firmware/riscv_virt/).
The weight store's flash is a file of the host on every board, reached by semihosting
(firmware/semihost/).

Cost counter: under ``-icount shift=S`` each instruction advances virtual time by 2^S ns. The Arm
ports count SysTick ticks of the core clock, ``tick_ns`` ns each, so one tick is tick_ns >> S
instructions (S is chosen to make that whole); the RISC-V port reads ``minstret``, which QEMU
derives from the same virtual clock (ns): shift 0 makes it the instruction count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgetp.errors import EdgetpError
from firmware_gen.build import CPU_FLAGS, CROSS

FIRMWARE = Path(__file__).resolve().parent / "firmware"


@dataclass(frozen=True)
class Board:
    target: str  # the --target name
    machine: str  # qemu -M
    cpu: str  # a key of firmware_gen.build.CPU_FLAGS
    qemu: str  # the QEMU binary
    port: str  # folder under deploy/firmware
    flash: tuple  # (origin, length): where the image is linked ("flash")
    ram: tuple  # (origin, length)
    icount_shift: int
    counter_res: int  # instructions per count of the port's counter under -icount
    defines: dict = field(default_factory=dict)
    qemu_args: tuple = ()

    @property
    def cpu_flags(self) -> list[str]:
        return CPU_FLAGS[self.cpu]

    @property
    def cc(self) -> str:
        return CROSS[self.cpu][0]

    @property
    def size(self) -> str:
        return self.cc.replace("-gcc", "-size")

    @property
    def specs(self) -> str:
        return CROSS[self.cpu][1]

    def port_sources(self) -> list[Path]:
        """The port's C, the shared C start and the semihosted flash."""
        return [
            *sorted((FIRMWARE / self.port).glob("*.c")),
            FIRMWARE / "etp_crt.c",
            FIRMWARE / "semihost" / "semihost_flash.c",
        ]

    ld = FIRMWARE / "etp_image.ld"  # one image layout; the memory map comes from link_flags()

    def c_defines(self) -> list[str]:
        """The board's parameters as -D flags (the port's C has no defaults: one definition, here)."""
        return [f"-D{k}={v}" for k, v in self.defines.items()] + [
            f"-DETP_ICOUNT_SHIFT={self.icount_shift}",
            f"-DETP_COUNTER_RES={self.counter_res}u",
        ]

    def link_flags(self) -> list[str]:
        """The memory map as symbols of the shared linker script."""
        syms = {
            "__flash_origin": self.flash[0],
            "__flash_length": self.flash[1],
            "__ram_origin": self.ram[0],
            "__ram_length": self.ram[1],
        }
        return [f"-Wl,--defsym={k}={v:#x}" for k, v in syms.items()]

    def qemu_cmd(self, kernel: Path, serial: str = "pty") -> list[str]:
        return [
            self.qemu,
            "-M",
            self.machine,
            *self.qemu_args,
            "-display",
            "none",
            "-nodefaults",
            "-serial",
            serial,
            "-icount",
            f"shift={self.icount_shift},align=off,sleep=on",
            "-kernel",
            str(kernel),
        ]


def _mps2(target, machine, cpu, uart, rx_irq, sysclk, flash_at, ram_at, shift) -> Board:
    """An Arm MPS2 FPGA image in QEMU: the board's name is its machine's; 4 MB of flash and of RAM."""
    tick_ns = 10**9 // sysclk
    if tick_ns * sysclk != 10**9 or tick_ns % (1 << shift):
        raise EdgetpError(f"{target}: a SysTick tick must be a whole number of instructions")
    defs = {
        "ETP_BOARD_NAME": f'"{machine}"',
        "ETP_UART_BASE": f"{uart:#x}u",
        "ETP_UART_RX_IRQ": rx_irq,
        "ETP_SYSCLK_HZ": f"{sysclk}u",
    }
    mem = (flash_at, 4 * MB), (ram_at, 4 * MB)
    return Board(target, machine, cpu, "qemu-system-arm", "mps2", *mem, shift, tick_ns >> shift, defs)


MB = 1 << 20
BOARDS = {
    b.target: b
    for b in (
        # AN386 (Cortex-M4) and AN500 (Cortex-M7): the same FPGA map (QEMU hw/arm/mps2.c), 25 MHz, UART0 RX = IRQ 0.
        _mps2("qemu", "mps2-an386", "cortex-m4", 0x40004000, 0, 25_000_000, 0x00000000, 0x20000000, 3),
        _mps2("qemu-m7", "mps2-an500", "cortex-m7", 0x40004000, 0, 25_000_000, 0x00000000, 0x20000000, 3),
        # AN505 (Cortex-M33, IoT Kit, QEMU hw/arm/mps2-tz.c): the core starts Secure with VTOR at 0x10000000, the
        # Secure alias of SSRAM1; SSRAM2/3 at 0x38000000 (Secure); UART0 behind the APB PPC at 0x50200000 (Secure
        # alias), its RX interrupt is IRQ 32 (the AN505's number; QEMU 7.2 wakes the core on it, not on 33: measured).
        # The core clock is 20 MHz: 50 ns a tick, shift 1 makes it 25 instructions.
        _mps2("qemu-m33", "mps2-an505", "cortex-m33", 0x50200000, 32, 20_000_000, 0x10000000, 0x38000000, 1),
        # RISC-V virt (QEMU hw/riscv/virt.c): DRAM at 0x80000000, entered there with -bios none; its first 4 MB stand
        # for the flash, the next 4 MB for the RAM. ns16550a UART0 at 0x10000000 on PLIC source 10; CLINT mtime 10 MHz.
        Board(
            "qemu-rv32",
            "virt",
            "rv32imac",
            "qemu-system-riscv32",
            "riscv_virt",
            (0x80000000, 4 * MB),
            (0x80400000, 4 * MB),
            0,
            1,
            {
                "ETP_BOARD_NAME": '"riscv-virt"',
                "ETP_UART_BASE": "0x10000000u",
                "ETP_UART_PLIC_SRC": 10,
                "ETP_MTIME_HZ": "10000000u",
            },
            qemu_args=("-bios", "none", "-m", "16M"),
        ),
    )
}
EMULATED = tuple(BOARDS)


def board(target: str) -> Board:
    try:
        return BOARDS[target]
    except KeyError:
        raise EdgetpError(f"no emulated board {target!r}; one of {', '.join(EMULATED)}") from None
