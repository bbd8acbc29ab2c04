"""The tail every example shares: quantize -> generate C -> check the C -> emulated M4 -> table.

Each example script does steps 1-4 (goal, data, model, training) itself, where the reader
can see them, then calls

    d = deploy(model, x_representative, x_test, name="digits", args=args)   # steps 5-6
    row = result(args, "digits (Fashion-MNIST MLP)", "accuracy", float_acc, int8_acc, d)
    print_table([row])                                                      # step 7

deploy() quantizes the float model (post-training, TFLite's int8 scheme), writes the C
(minitiny.codegen), compiles it on the host and runs it on the test inputs through cffi,
stops with an error unless the C outputs equal the NumPy int8 reference bit for bit, and,
when arm-none-eabi-gcc and qemu-system-arm are installed, runs a few inputs on an emulated
Cortex-M4 for the instruction count and the measured flash and RAM. The int8 numbers the
examples print are computed from the C's outputs: what the device would answer.

The keyword-spotting example chains the audio front end and the model into one C program
(codegen/frontend.py); `run_program_on_m4` builds such a multi-file program with the
firmware's own flags, runtime, harness and QEMU command (firmware.run takes one model file).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---- the command line every example takes ---------------------------------------------------
def arguments(name, description, argv=None):
    """--quick (small data, few epochs: for CI), --out, --seed, --board, --no-firmware."""
    p = argparse.ArgumentParser(prog=f"examples/{name}.py", description=description)
    p.add_argument("--quick", action="store_true",
                   help="a fast run on less data with fewer epochs (for tests and CI)")
    p.add_argument("--out", default=None, help=f"output folder (default build/{name})")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, shuffling, splits")
    p.add_argument("--board", default="cortex-m4",
                   help="core or board for the emulated run (default cortex-m4)")
    p.add_argument("--no-firmware", action="store_true",
                   help="skip the emulated Cortex-M run even if the toolchain is installed")
    args = p.parse_args(argv)
    args.name = name
    args.out = args.out or os.path.join("build", name)
    os.makedirs(args.out, exist_ok=True)
    import minitiny as mt
    mt.random.seed(args.seed)
    return args


def step(number, title):
    """A banner for one of the seven steps of the TinyML workflow."""
    print(f"\n== {number}. {title} " + "=" * max(0, 70 - len(title)))


def toolchain_missing():
    """None when the Cortex-M toolchain and QEMU are installed, else what is missing."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    return None if not missing else f"{' and '.join(missing)} not installed"


# ---- steps 5-6: convert, generate, check, run ---------------------------------------------
class NotBitExact(AssertionError):
    """The generated C disagrees with the NumPy int8 reference: a bug, never tolerated."""


@dataclass
class Deployment:
    qmodel: object               # the int8 QModel
    dir: str                     # the generated C
    manifest: dict
    x_int8: np.ndarray           # the test inputs, quantized
    out_int8: np.ndarray         # the C's outputs on them (== the NumPy reference)
    out: np.ndarray              # the same, dequantized to floats
    host_us: float               # microseconds per inference of the C on this machine
    m4: dict = None              # the emulated run: instructions, flash, ram, ...; None if skipped
    m4_note: str = ""            # why there was no emulated run, if there was none


def quantize(model, x_representative):
    import minitiny as mt
    return mt.quantize(model, x_representative)


def time_per_call(fn, x, repeats=3):
    """Microseconds per input of fn(x), the best of a few runs (one call per input)."""
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return 1e6 * best / len(x)


def deploy(model, x_representative, x_test, name, args, qmodel=None, n_m4=None, board=None):
    """Quantize (unless qmodel is given), generate C, check it against NumPy on x_test,
    time it, and run a few inputs on the emulated Cortex-M (args.board, or `board`)."""
    from minitiny import codegen
    qmodel = qmodel or quantize(model, x_representative)
    out_dir = os.path.join(args.out, name)
    g = codegen.generate(qmodel, out_dir, name=name)
    c_model = codegen.load(out_dir)
    x_int8 = qmodel.quantize_input(np.asarray(x_test, dtype=np.float32))
    reference = qmodel.predict_int8(x_int8)                                  # NumPy int8
    out_c = c_model(x_int8)                                                  # the C, via cffi
    if not np.array_equal(out_c, reference):
        bad = int(np.sum(np.any(out_c.reshape(len(x_int8), -1) != reference.reshape(len(x_int8), -1), axis=1)))
        raise NotBitExact(f"{name}: the C differs from the NumPy int8 reference on {bad} of "
                          f"{len(x_int8)} test inputs")
    print(f"C on the host == NumPy int8 on all {len(x_int8):,} test inputs (bit for bit)")
    host_us = time_per_call(c_model, x_int8[:1000])
    d = Deployment(qmodel, out_dir, g.manifest, x_int8, out_c, qmodel.dequantize_output(out_c), host_us)
    d.m4, d.m4_note = run_model_on_m4(out_dir, x_int8, args, n_m4, board)
    return d


def _m4_skipped(args):
    if args.no_firmware:
        return "skipped (--no-firmware)"
    return toolchain_missing()


def run_model_on_m4(model_dir, x_int8, args, n=None, board=None):
    """firmware.run on the first n inputs -> ({instructions, flash, ram, ...}, note).

    The program is linked against the board's flash and RAM: a model that does not fit
    fails here (firmware.DoesNotFit), as it would on the board."""
    board = board or args.board
    why = _m4_skipped(args)
    if why:
        print(f"emulated {board}: {why}")
        return None, why
    from minitiny import firmware
    x = x_int8[:n or (2 if args.quick else 4)]
    r = firmware.run(model_dir, board=board, inputs=x, n=None, profile=not args.quick)
    if not r.ok:
        raise NotBitExact(f"emulated {board}: {r.status}: {r.message}")
    if not args.quick:
        print(r.table())
    m4 = {"instructions": r.instructions, "flash": r.flash["weights"] + r.flash["code"] + r.flash["model_data"],
          "ram": r.ram["arena"] + (r.ram["stack_used"] or 0), "flash_total": r.flash["used"],
          "ram_total": r.ram["static"] + (r.ram["stack_used"] or 0), "board": board,
          "flash_budget": r.flash["budget"], "ram_budget": r.ram["budget"],
          "ram_reserved": r.ram["static"] + r.ram["stack_reserved"],
          "matches": bool(r.matches_reference)}
    print(f"emulated {board}: {len(x)} inputs, outputs == NumPy int8, {r.instructions:,} "
          f"instructions per inference; firmware flash {m4['flash_total']:,} B, RAM {m4['ram_total']:,} B "
          f"(static {r.ram['static']:,} + stack used {r.ram['stack_used'] or 0:,})")
    return m4, ""


def budget_text(d, board):
    """'flash 19,172 of 1,048,576 B (1.8%), RAM 4,912 of 262,144 B (1.9%)' for the board:
    the whole firmware measured by the linker, or the model alone estimated (no toolchain)."""
    from minitiny import boards
    b = boards.get(board)
    if d.m4 and d.m4.get("flash_budget"):
        flash, ram, how = d.m4["flash_total"], d.m4["ram_reserved"], "whole firmware, linked"
    else:
        m = d.manifest
        flash, ram, how = m["weight_bytes"] + m["code_bytes_estimate"], m["arena_bytes"], "model only, estimated"
    return (f"flash {flash:,} of {b.flash_bytes:,} B ({100 * flash / b.flash_bytes:.1f}%), RAM {ram:,} "
            f"of {b.ram_bytes:,} B ({100 * ram / b.ram_bytes:.1f}%) ({how})")


# ---- a program of several C files on the emulated Cortex-M ---------------------------------
def run_program_on_m4(program_dir, manifest, inputs_int8, args, expected=None, timeout=120):
    """Build the C files manifest['sources'] (+ 'headers') with the firmware's harness,
    runtime, flags and linker script, run it in QEMU, return ({...}, note).

    manifest: name, sources, headers (paths relative to program_dir), output_shape; the first
    source defines NAME_invoke(const int8_t *, int8_t *) and the first header NAME_INPUT_SIZE
    and NAME_OUTPUT_SIZE: the firmware's model contract. firmware.run builds one model file;
    this does the same for several (firmware/build.py's steps, in a loop over the sources).
    """
    why = _m4_skipped(args)
    if why:
        print(f"emulated {args.board}: {why}")
        return None, why
    from minitiny.firmware import build as fwbuild, cores, runner, sizes
    target = cores.target(args.board)
    core = target.core
    gcc = fwbuild.tool("arm-none-eabi-gcc")
    x = np.ascontiguousarray(inputs_int8, dtype=np.int8).reshape(len(inputs_int8), -1)
    counter, plugin = runner._choose_counter("auto", None)
    files = SimpleNamespace(name=manifest["name"], macro=manifest["name"].upper())
    harness = runner._render_harness(files, x, 2)
    work = tempfile.mkdtemp(prefix="minitiny-program-")
    try:
        for rel in manifest["sources"] + manifest["headers"]:
            shutil.copy(os.path.join(program_dir, rel), work)
        for name in fwbuild.RUNTIME:
            shutil.copy(fwbuild.HERE / name, work)
        with open(os.path.join(work, "harness.c"), "w") as f:
            f.write(harness)
        defines = [f"-DMINITINY_COUNTER_ADDR={core.counter_addr:#x}u"] if counter == "icount" else []
        objects = []
        for src in [os.path.basename(s) for s in manifest["sources"]] + ["harness.c", "startup.c", "semihosting.c"]:
            obj = src[:-2] + ".o"
            p = subprocess.run([gcc, *fwbuild.compile_flags(core), *defines, "-I.", "-c", src, "-o", obj],
                               cwd=work, capture_output=True, text=True)
            if p.returncode:
                raise RuntimeError(f"compiling {src} for {core.name} failed:\n{p.stdout}{p.stderr}")
            objects.append(obj)
        p = subprocess.run([gcc, *objects, *fwbuild.link_flags(core, target.flash_link, target.ram_link,
                                                              runner.DEFAULT_STACK), "-o", "firmware.elf"],
                           cwd=work, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"linking for {target.describe()} failed:\n{p.stdout}{p.stderr}")
        out_size = int(np.prod(manifest["output_shape"]))
        r = runner.run_elf(os.path.join(work, "firmware.elf"), core, len(x), out_size, counter=counter,
                           timeout=timeout, plugin_lib=plugin)
        if r.status != "ok":
            raise NotBitExact(f"emulated {args.board}: {r.status}: {r.message}")
        if expected is not None and not np.array_equal(r.outputs, np.asarray(expected).reshape(len(x), -1)):
            raise NotBitExact(f"emulated {args.board}: the outputs differ from the NumPy reference")
        linked = sizes.linker_figures(os.path.join(work, "firmware.elf"))
        per_file = {s: sizes.object_sizes(os.path.join(work, os.path.basename(s)[:-2] + ".o"))
                    for s in manifest["sources"]}
        flash = sum(v["flash"] for v in per_file.values())
        ram = sum(v["ram"] for v in per_file.values()) + (r.stack_used or 0)
        instructions = None if r.intervals is None else int(r.intervals[:, 0].max())
        m4 = {"instructions": instructions, "flash": flash, "ram": ram, "board": args.board,
              "flash_total": linked["flash_used"], "ram_total": linked["ram_used"] + (r.stack_used or 0),
              "per_file": {os.path.basename(s): {"flash": v["flash"], "ram": v["ram"]} for s, v in per_file.items()},
              "matches": expected is not None}
        print(f"emulated {args.board}: {len(x)} inputs, outputs == NumPy, {instructions:,} "
              f"instructions per inference; firmware flash {m4['flash_total']:,} B, RAM "
              f"{m4['ram_total']:,} B (static {linked['ram_used']:,} + stack used {r.stack_used or 0:,}); "
              + ", ".join(f"{k}: flash {v['flash']:,} B, RAM {v['ram']:,} B" for k, v in m4["per_file"].items()))
        return m4, ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- step 7: the results table ---------------------------------------------------------------
@dataclass
class Result:
    example: str                 # 'digits: Fashion-MNIST MLP'
    metric: str                  # 'accuracy', 'MSE', 'ROC AUC', ...
    float_value: float           # the float model on the held-out test set
    int8_value: float            # the generated C (int8) on the same test set
    model_bytes: int             # int8 weights and biases (flash)
    flash: int                   # bytes of flash: the whole firmware as linked (the model and
                                 # ~1.3 KB of startup, harness and semihosting), or the estimate
    ram: int                     # bytes of RAM: static data + the stack the run used (measured),
                                 # or the arena alone (estimate)
    measured: bool               # flash and RAM from the emulated build (else from the manifest)
    host_us: float               # the generated C on this machine, per inference
    m4_instructions: int = None  # per inference on the emulated Cortex-M4 (None: not run)
    n_test: int = 0
    notes: str = ""
    extra: dict = field(default_factory=dict)


def result(example, metric, float_value, int8_value, d, n_test, notes=""):
    m = d.manifest
    if d.m4:
        flash, ram, measured = d.m4["flash_total"], d.m4["ram_total"], True
    else:
        flash, ram, measured = m["weight_bytes"] + m["code_bytes_estimate"], m["arena_bytes"], False
    return Result(example, metric, float(float_value), float(int8_value), int(m["weight_bytes"]),
                  int(flash), int(ram), measured, float(d.host_us),
                  d.m4["instructions"] if d.m4 else None, int(n_test), notes)


HEADER = ("example", "metric (test)", "float", "int8 C", "model B", "flash B", "RAM B",
          "host us/inf", "M4 instr/inf")


def _cells(r):
    fmt = (lambda v: f"{v:.4f}") if abs(r.float_value) < 10 else (lambda v: f"{v:.3g}")
    est = "" if r.measured else " ~"
    return (r.example, f"{r.metric} (n={r.n_test})", fmt(r.float_value), fmt(r.int8_value),
            f"{r.model_bytes:,}", f"{r.flash:,}{est}", f"{r.ram:,}{est}", f"{r.host_us:.1f}",
            "-" if r.m4_instructions is None else f"{r.m4_instructions:,}")


def table_text(rows, markdown=False):
    cells = [HEADER] + [_cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        lines.insert(1, "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADER))) + "|")
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i]) for i in range(len(c)))
             for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def print_table(rows, args):
    """Print the results and save them as results.json in args.out (run_all.py reads them)."""
    step(7, "Evaluation: the results")
    print(table_text(rows))
    print("flash, RAM: the whole firmware as linked for the emulated core (model + about 1.3 KB of "
          "runtime); RAM = static data + the stack the run used")
    if any(not r.measured for r in rows):
        print("~ estimated from the manifest (no emulated build): weights + code estimate, the arena")
    for r in rows:
        if r.notes:
            print(f"{r.example}: {r.notes}")
    path = os.path.join(args.out, "results.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump([asdict(r) for r in rows], f, indent=1, default=float)
    os.replace(tmp, path)
    return rows


def accuracy(scores, y):
    return float(np.mean(np.argmax(scores, axis=-1) == np.asarray(y).reshape(-1)))


def have_plots():
    from minitiny import plots
    return plots.available()


if __name__ == "__main__":
    sys.exit("examples/common.py is a helper; run one of the examples, or examples/run_all.py")
