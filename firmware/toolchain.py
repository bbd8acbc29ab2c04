"""The tools a firmware build runs (arm-none-eabi-gcc, nm, QEMU), found on PATH, and the
errors a build or a run raises. build.py compiles with them, sizes.py reads the ELF with
them, runner.py starts QEMU with them.
"""
import functools
import shutil
import subprocess

APT_INSTALL = "apt-get install -y --no-install-recommends gcc-arm-none-eabi qemu-system-arm"


class FirmwareError(RuntimeError):
    """The firmware could not be built or run (the message says what and why)."""


class ToolchainError(FirmwareError):
    """A tool the firmware needs is not installed."""


def tool(name, hint=APT_INSTALL):
    """The path of the program `name`, or ToolchainError saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found on PATH: install the Cortex-M toolchain and "
                             f"emulator with\n    {hint}")
    return path


@functools.lru_cache(maxsize=None)
def version(exe):
    """The first line of `exe --version` (part of every build's cache key)."""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else exe
