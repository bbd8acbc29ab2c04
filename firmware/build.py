"""Building the firmware: one generated model + the harness + a tiny runtime -> an ELF.

Four C files make the program, each compiled to its own object so that sizes can be told
apart afterwards (sizes.py):

    NAME_model.c     the generated model                         (from the model directory;
                     with any further C files its manifest lists: model.py)
    harness.c        main(): test inputs, calls, outputs         (rendered from harness.c.j2)
    startup.c        vector table, reset, faults, memcpy/memset  (firmware/)
    semihosting.c    printing and exiting through the host       (firmware/)

then link.ld places them in the board's flash and RAM. Every flag is explained where it
is set. A build is cached under a hash of its sources, flags and compiler version, so the
same model on the same board is compiled once.
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import sizes
from .toolchain import FirmwareError, tool, version

HERE = Path(__file__).resolve().parent
RUNTIME = ("startup.c", "semihosting.c", "semihosting.h", "marker.h", "link.ld")

# -icount fallback: virtual time advances 2**ICOUNT_SHIFT ns per instruction. At 2**7 =
# 128 ns an instruction spans more than one tick of the boards' 20-25 MHz counters
# (40-50 ns), so the counter resolves single instructions.
ICOUNT_SHIFT = 7


class BuildError(FirmwareError):
    """The compiler or the linker refused the program (the message has their output)."""


class DoesNotFit(BuildError):
    """The program links for the emulator but not within the board's flash or RAM."""

    def __init__(self, message, needs):
        super().__init__(message)
        self.needs = needs   # {'flash': bytes, 'ram': bytes, 'flash_budget': ..., 'ram_budget': ...}


def cache_root(cache_dir=None):
    """Where builds are kept: cache_dir, else $MINITINY_CACHE, else ~/.cache/minitiny."""
    if cache_dir is None:
        cache_dir = os.environ.get("MINITINY_CACHE") or (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minitiny")
    root = Path(cache_dir) / "firmware"
    root.mkdir(parents=True, exist_ok=True)
    return root


def compile_flags(core, opt="-O2"):
    return [
        *core.cflags,           # the core: instruction set, FPU and float ABI (cores.py)
        "-mthumb",              # Cortex-M cores execute only the Thumb instruction set
        "-std=c99", opt, "-g",  # the C the generator promises; speed; debug info (not in flash)
        # The generated C promises zero warnings under these; the firmware holds it to that.
        "-Wall", "-Wextra", "-pedantic", "-Werror",
        "-ffreestanding",       # no hosted C library behind the program
        "-fno-tree-loop-distribute-patterns",  # keep loops as loops: no surprise memset/memcpy calls
        "-ffunction-sections", "-fdata-sections",  # one section per function and per array, so
                                # the linker drops unused ones and nm can size each alone
        "-fstack-usage",        # NAME.su: the stack frame of every function
        "-fcallgraph-info=su",  # NAME.ci: who calls whom, for the worst-case stack depth
    ]


def link_flags(core, flash, ram, stack):
    origin, size = core.testdata
    return [
        *core.cflags, "-mthumb",       # the same core flags choose the matching libgcc
        "-nostdlib",                   # no C library and no crt0: startup.c is the runtime
        "-T", "link.ld",               # our memory map (link.ld)
        "-Wl,--gc-sections",           # drop every function and array nothing refers to
        f"-Wl,--defsym=__flash_size={flash}",  # the board's budget: link.ld's regions
        f"-Wl,--defsym=__ram_size={ram}",
        f"-Wl,--defsym=__stack_size={stack}",  # RAM kept free for the stack
        f"-Wl,--defsym=__testdata_origin={origin:#x}",  # emulator memory for the test data
        f"-Wl,--defsym=__testdata_size={size:#x}",
        "-Wl,-Map=firmware.map",       # where every section went, for the curious
        "-Wl,--print-memory-usage",    # a per-region usage table in the linker's output
        "-lgcc",                       # compiler helpers (64-bit division, ...)
    ]


@dataclass
class Build:
    dir: Path          # cache directory holding sources, objects, .su/.ci files, map and ELF
    elf: Path
    model_objects: list  # [Path]: NAME_model.o first, then the program's further sources
    profile: bool
    counter: str       # 'plugin' (mov r11, r11 markers) or 'icount' (counter stamps)
    flash_budget: int
    ram_budget: int
    stack_reserved: int
    cached: bool


def _run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr).strip()


def build(files, harness_source, target, *, profile, counter, stack, cache_dir=None,
          fault_test=None, opt="-O2"):
    """Compile and link (or reuse the cached result). Returns a Build.

    files: model.ModelFiles; harness_source: the rendered harness.c; target: cores.Target.
    """
    gcc = tool("arm-none-eabi-gcc")
    core = target.core
    cflags = compile_flags(core, opt)
    model_flags = []
    if profile:
        model_flags = ["-include", "marker.h", "-DMINITINY_PROFILE"]  # layer hooks -> markers
    defines = []
    if counter == "icount":
        defines.append(f"-DMINITINY_COUNTER_ADDR={core.counter_addr:#x}u")  # markers read a counter
    if fault_test is not None:
        defines.append(f"-DMINITINY_FAULT_TEST={fault_test:#x}u")
    lflags = link_flags(core, target.flash_link, target.ram_link, stack)

    model_sources = [files.source] + files.extra_sources          # the model program's C files
    sources = {p.name: p.read_bytes() for p in model_sources + [files.header] + files.extra_headers}
    sources["harness.c"] = harness_source.encode()
    sources.update({name: (HERE / name).read_bytes() for name in RUNTIME})
    key = hashlib.sha256()
    for name in sorted(sources):
        key.update(name.encode() + b"\0" + sources[name] + b"\0")
    key.update(repr((cflags, model_flags, defines, lflags, version(gcc))).encode())
    digest = key.hexdigest()[:20]
    final = cache_root(cache_dir) / f"{files.name}-{core.name}-{digest}"
    result = Build(final, final / "firmware.elf", [final / _object(p.name) for p in model_sources],
                   profile, counter, target.flash_bytes,
                   target.ram_bytes, stack, cached=True)
    if result.elf.is_file():
        return result

    work = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        for name, data in sources.items():
            (work / name).write_bytes(data)
        commands = []
        objects = []
        for src, extra in ([(p.name, model_flags + defines) for p in model_sources]
                           + [("harness.c", defines), ("startup.c", []), ("semihosting.c", [])]):
            obj = _object(src)
            cmd = [gcc, *cflags, *extra, "-I.", "-c", src, "-o", obj]
            commands.append(cmd)
            rc, out = _run(cmd, work)
            if rc:
                raise BuildError(f"compiling {src} for {core.name} failed:\n{out}")
            objects.append(obj)
        cmd = [gcc, *objects, *lflags, "-o", "firmware.elf"]
        commands.append(cmd)
        rc, out = _run(cmd, work)
        (work / "link.log").write_text(out)
        if rc:
            if re.search(r"overflowed by|will not fit in region|RAM overflow", out):
                _explain_overflow(files, target, stack, work, cmd, out,
                                  [work / _object(p.name) for p in model_sources])
            raise BuildError(f"linking the firmware for {target.describe()} failed:\n{out}")
        (work / "build_commands.txt").write_text(
            "# run in this directory to rebuild firmware.elf\n"
            + "".join(" ".join(_quote(c) for c in cmd) + "\n" for cmd in commands))
        try:
            os.replace(work, final)          # atomic: a build directory appears whole or not at all
        except OSError:                      # another process built the same thing first
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result.cached = False
    return result


def _object(source_name):
    return source_name[:-2] + ".o"          # NAME.c -> NAME.o


def _quote(arg):
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def _explain_overflow(files, target, stack, work, cmd, log, model_objects):
    """Link again with all the memory QEMU has, measure, and say what does not fit where."""
    core = target.core
    big = [a for a in cmd if not a.startswith(("-Wl,--defsym=__flash_size", "-Wl,--defsym=__ram_size"))]
    big[-2:-2] = [f"-Wl,--defsym=__flash_size={core.flash_max}",
                  f"-Wl,--defsym=__ram_size={core.ram_max}"]
    big[big.index("firmware.elf")] = "measure.elf"
    rc, out = _run(big, work)
    if rc:   # does not fit even the emulator: report the linker's words
        raise DoesNotFit(f"model {files.name!r} does not fit {target.describe()}, nor the "
                         f"{core.flash_max:,} B flash / {core.ram_max:,} B RAM QEMU emulates:\n{log}",
                         {})
    linked = sizes.linker_figures(work / "measure.elf")
    model = sizes.program_sizes(sizes.linked_symbols(work / "measure.elf"), model_objects)
    need_flash = linked["flash_used"]
    need_ram = linked["ram_used"] + stack
    lines = [f"model {files.name!r} does not fit {target.describe()}:"]
    for what, need, budget, room in (("flash", need_flash, target.flash_bytes, target.flash_link),
                                     ("RAM", need_ram, target.ram_bytes, target.ram_link)):
        if need > budget:
            verdict = f"over by {need - budget:,} B"
        elif need > room:
            verdict = f"fits the board, but QEMU emulates only {room:,} B for {core.name}"
        else:
            verdict = "fits"
        lines.append(f"  {what:5s} needs {need:,} B of {budget:,} B ({verdict})")
    lines.append(f"  flash = model weights and tables {model['weights']:,} B"
                 f" + model code {model['code']:,} B"
                 f" + runtime {need_flash - model['weights'] - model['code']:,} B")
    lines.append(f"  RAM   = model arena {model['ram']:,} B + runtime "
                 f"{linked['ram_used'] - model['ram']:,} B + stack reservation {stack:,} B")
    lines += ["  the linker said: " + re.sub(r"^.*?\bld: ", "", l.strip()) for l in log.splitlines()
              if re.search(r"overflow|not fit", l)]
    raise DoesNotFit("\n".join(lines), {"flash": need_flash, "ram": need_ram,
                                        "flash_budget": target.flash_bytes,
                                        "ram_budget": target.ram_bytes})


def plugin(cache_dir=None):
    """Build mtcount.c with the host C compiler (once, cached); None if there is none."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    source = (HERE / "mtcount.c").read_bytes()
    digest = hashlib.sha256(source + version(cc).encode()).hexdigest()[:20]
    lib = cache_root(cache_dir) / f"libmtcount-{digest}.so"
    if not lib.is_file():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        # -shared -fPIC: a shared library QEMU loads; -O2: the callbacks run per instruction
        p = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), "-x", "c", "-"],
                           input=source, capture_output=True)
        if p.returncode:
            tmp.unlink(missing_ok=True)
            return None
        os.replace(tmp, lib)
    return lib
