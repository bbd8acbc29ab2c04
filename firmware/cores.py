"""Cortex-M cores, the QEMU machine that emulates each, and the boards that set budgets.

A *core* says how to compile (`-mcpu`, floating-point ABI) and which QEMU machine runs
the code. A *board* is a core plus real limits: flash and RAM bytes and a clock. The
firmware is linked against the board's flash and RAM sizes, so a model that does not fit
fails at link time, as it would on the board. With a bare core name the budget is all the
memory QEMU emulates for that core.

QEMU machines (`qemu-system-arm -machine help`) used here, with the memory QEMU gives them
(from `info mtree` in the QEMU monitor):

    core        machine     code at 0x00000000   RAM at 0x20000000   free RAM for test data
    cortex-m3   mps2-an385  4 MiB SSRAM          4 MiB SSRAM         16 MiB at 0x21000000
    cortex-m4   mps2-an386  4 MiB SSRAM          4 MiB SSRAM         16 MiB at 0x21000000
    cortex-m7   mps2-an500  4 MiB SSRAM          4 MiB SSRAM         16 MiB at 0x60000000
    cortex-m55  mps3-an547  512 KiB ITCM         512 KiB DTCM         2 MiB SRAM at 0x01000000

A board with more memory than QEMU emulates for its core (a Cortex-M55 part with 5.5 MB
of MRAM) is linked into what QEMU has; the report still measures against the board.

The test inputs and outputs the harness carries live in the last column: emulator memory
that the board's budget does not count.

The -icount fallback counter reads the FPGA I/O block's COUNTER register (offset 0x18), a
32-bit up-counter at the board's peripheral clock: FPGAIO at 0x40028000 on the MPS2 boards
and 0x49302000 on the AN547 (Arm application notes AN385/AN386/AN500/AN547, "FPGA I/O").
"""
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Core:
    name: str              # 'cortex-m4'
    machine: str           # QEMU -machine
    cflags: tuple          # how arm-none-eabi-gcc targets this core
    flash_max: int         # bytes QEMU emulates from 0x00000000
    ram_max: int           # bytes QEMU emulates from 0x20000000
    testdata: tuple        # (origin, size): memory for test inputs/outputs, outside the budget
    counter_addr: int      # FPGAIO COUNTER register, read by the -icount fallback counter
    dsp: bool              # has the DSP extension (SMLAD, SSAT, ...)


CORES = {
    # Armv7-M, no FPU, no DSP instructions.
    "cortex-m3": Core("cortex-m3", "mps2-an385", ("-mcpu=cortex-m3", "-mfloat-abi=soft"),
                      4 * MIB, 4 * MIB, (0x21000000, 16 * MIB), 0x40028018, dsp=False),
    # Armv7E-M: DSP instructions and a single-precision FPU (fpv4-sp-d16), hard-float ABI.
    "cortex-m4": Core("cortex-m4", "mps2-an386",
                      ("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
                      4 * MIB, 4 * MIB, (0x21000000, 16 * MIB), 0x40028018, dsp=True),
    # Armv7E-M with a double-precision FPU (fpv5-d16).
    "cortex-m7": Core("cortex-m7", "mps2-an500",
                      ("-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
                      4 * MIB, 4 * MIB, (0x60000000, 16 * MIB), 0x40028018, dsp=True),
    # Armv8.1-M with the MVE (Helium) vector extension; -mcpu=cortex-m55 selects its FPU.
    "cortex-m55": Core("cortex-m55", "mps3-an547", ("-mcpu=cortex-m55", "-mfloat-abi=hard"),
                       512 * KIB, 512 * KIB, (0x01000000, 2 * MIB), 0x49302018, dsp=True),
}


@dataclass(frozen=True)
class Target:
    """What the firmware is built for: a core, and the budget it must fit in."""
    name: str              # the board or core name the user gave
    core: Core
    flash_bytes: int       # the budget the report measures against
    ram_bytes: int
    clock_hz: float = None  # None for a bare core (no clock to turn instructions into time)
    cpi: tuple = None      # (low, typ, high) cycles per instruction, from the board's entry
    is_board: bool = False

    @property
    def flash_link(self):
        """Flash the linker may fill: the budget, but no more than QEMU emulates."""
        return min(self.flash_bytes, self.core.flash_max)

    @property
    def ram_link(self):
        return min(self.ram_bytes, self.core.ram_max)

    def describe(self):
        what = f"board {self.name!r} ({self.core.name})" if self.is_board else self.core.name
        return f"{what}, QEMU {self.core.machine}"


def core_name(text):
    """'Cortex-M4F', 'm4', 'cortex_m4' -> 'cortex-m4' (None if it names no known core)."""
    t = str(text).strip().lower().replace("_", "-")
    if t.startswith("m") and t[1:2].isdigit():
        t = "cortex-" + t
    if t.endswith("f") and t[:-1] in CORES:      # 'cortex-m4f': the FPU is implied
        t = t[:-1]
    return t if t in CORES else None


def target(name):
    """A core name ('cortex-m4', 'm55') or a board name ('nano33ble', 'tiny') -> Target.

    Boards come from minitiny.deploy.boards (boards.json: flash, RAM, clock, cycles per
    instruction, each with its data sheet). A board object may be passed directly."""
    from minitiny.deploy import boards
    core = core_name(name) if isinstance(name, str) else None
    if core is not None:
        c = CORES[core]
        return Target(c.name, c, c.flash_max, c.ram_max)
    spelled = str(name).strip().lower().replace("_", "-")
    spelled = "cortex-" + spelled if spelled[:1] == "m" and spelled[1:2].isdigit() else spelled
    if spelled in getattr(boards, "CORES", ()):
        raise ValueError(f"the firmware cannot emulate a {spelled}: it runs {', '.join(CORES)} "
                         f"(QEMU machines with the memory map link.ld uses)")
    try:
        board = boards.get(name)
    except boards.BoardError as e:
        raise ValueError(f"{name!r} is neither a core ({', '.join(CORES)}) nor a board: {e}") from None
    core = core_name(board.core)
    if core is None:
        raise ValueError(f"board {board.name!r} has a {board.core}, which the firmware cannot "
                         f"emulate; it runs {', '.join(CORES)}")
    cpi = getattr(board, "cpi", None)
    return Target(board.name, CORES[core], int(board.flash_bytes), int(board.ram_bytes),
                  board.clock_hz or None, cpi and (cpi.low, cpi.typ, cpi.high), is_board=True)
