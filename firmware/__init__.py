"""minitiny.firmware: run a generated model on an emulated Cortex-M (QEMU).

    import minitiny.firmware as fw
    result = fw.run("build/sine", board="cortex-m4")   # or 'cortex-m3', 'm55', 'nano33ble', ...
    print(result.table())                             # per-layer instructions, flash, RAM
    result.outputs, result.instructions, result.flash, result.ram

Needs arm-none-eabi-gcc and qemu-system-arm (Debian/Ubuntu:
`apt-get install -y --no-install-recommends gcc-arm-none-eabi qemu-system-arm`).
Files, in reading order: cores.py (cores and boards), model.py (the contract with
codegen, and a layer's name in the C), startup.c, semihosting.c, link.ld, marker.h,
harness.c.j2 (the program), toolchain.py (the tools on PATH, the errors), build.py
(compiling), mtcount.c (counting instructions), runner.py (running), sizes.py and
report.py (flash, RAM, the table), __main__.py (the command line); arduino.py writes a
model as an Arduino library (`minitiny export arduino`).
"""
from .arduino import ArduinoExportError, export_arduino
from .build import BuildError, DoesNotFit
from .cores import CORES, Target, target
from .model import ModelDirError
from .runner import FirmwareResult, run
from .toolchain import FirmwareError, ToolchainError

__all__ = ["run", "export_arduino", "ArduinoExportError", "FirmwareResult", "FirmwareError",
           "BuildError", "DoesNotFit", "ToolchainError", "ModelDirError", "CORES", "Target", "target"]
