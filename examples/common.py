"""The tail every example shares: quantize -> generate C -> check the C -> emulated M4 -> table.

Each example script does steps 1-4 (goal, data, model, training) itself, where the reader
can see them, then calls

    d = deploy(model, x_representative, x_test, name="digits", args=args)   # steps 5-6
    row = result("digits (Fashion-MNIST MLP)", "accuracy", float_acc, int8_acc, d, len(y_test))
    print_table([row], args)                                                # step 7

deploy() quantizes the float model (post-training, TFLite's int8 scheme), writes the C
(minitiny.codegen), compiles it on the host and runs it on the test inputs through cffi,
stops with an error unless the C outputs equal the NumPy int8 reference bit for bit, and,
when arm-none-eabi-gcc and qemu-system-arm are installed, runs a few inputs on an emulated
Cortex-M4 for the instruction count and the measured flash and RAM. The int8 numbers the
examples print are computed from the C's outputs: what the device would answer.
The checking and the running are minitiny/deploy/pipeline.py, which `minitiny demo` uses too.

The keyword-spotting example chains the audio front end and the model into one C program
(codegen/frontend.py); its manifest lists the C files, and run_on_m4 runs it like a model.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from minitiny.deploy import run_on_board, text_table, verify_on_host


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
    import minitiny as mt
    qmodel = qmodel or mt.quantize(model, x_representative)
    out_dir = os.path.join(args.out, name)
    # the tuned portable kernels (the default, "reference", is the C to read; docs/DESIGN.md)
    g = mt.codegen.generate(qmodel, out_dir, name=name, variant="scalar")
    x_int8 = qmodel.quantize_input(np.asarray(x_test, dtype=np.float32))
    check = verify_on_host(qmodel, out_dir, x_int8)             # the C via cffi vs NumPy int8
    if not check.ok:
        raise NotBitExact(f"{name}: the C differs from the NumPy int8 reference on "
                          f"{check.n - check.same} of {check.n} test inputs")
    print(f"C on the host == NumPy int8 on all {check.n:,} test inputs (bit for bit)")
    host_us = time_per_call(check.model, x_int8[:1000])
    d = Deployment(qmodel, out_dir, g.manifest, x_int8, check.outputs,
                   qmodel.dequantize_output(check.outputs), host_us)
    d.m4, d.m4_note = run_on_m4(out_dir, x_int8, args, n_m4, board)
    return d


def run_on_m4(model_dir, x_int8, args, n=None, board=None, expected=None):
    """firmware.run on the first n inputs -> ({instructions, flash, ram, ...}, note).

    model_dir holds a generated model, or a program of several C files its manifest lists
    (the keyword-spotting pipeline: pass `expected`, it has no .qmodel.npz of its own).
    The program is linked against the board's flash and RAM: a model that does not fit
    fails here (firmware.DoesNotFit), as it would on the board."""
    board = board or args.board
    x = x_int8[:n or (2 if args.quick else 4)]
    r, why = (None, "skipped (--no-firmware)") if args.no_firmware else \
        run_on_board(model_dir, x, board, profile=not args.quick, expected=expected, timeout=120)
    if r is None:
        print(f"emulated {board}: {why}")
        return None, why
    if not r.ok:
        raise NotBitExact(f"emulated {board}: {r.status}: {r.message}")
    if not args.quick:
        print(r.table())
    stack = r.ram["stack_used"] or 0
    m4 = {"instructions": r.instructions, "flash": r.flash["weights"] + r.flash["code"] + r.flash["model_data"],
          "ram": r.ram["arena"] + stack, "flash_total": r.flash["used"],
          "ram_total": r.ram["static"] + stack, "board": board,
          "flash_budget": r.flash["budget"], "ram_budget": r.ram["budget"],
          "ram_reserved": r.ram["static"] + r.ram["stack_reserved"],
          "matches": bool(r.matches_reference)}
    files = "".join(f"; {f}: flash {v['flash']:,} B, RAM {v['ram']:,} B" for f, v in r.source_sizes.items())
    print(f"emulated {board}: {len(x)} inputs, outputs == NumPy int8, {r.instructions:,} "
          f"instructions per inference; firmware flash {m4['flash_total']:,} B, RAM {m4['ram_total']:,} B "
          f"(static {r.ram['static']:,} + stack used {stack:,}){files}")
    return m4, ""


def flash_ram(m4, manifest):
    """(flash, RAM, measured?): the linked firmware when it ran, else the manifest's
    estimate of the model alone (weights + code estimate, the arena)."""
    if m4:
        return m4["flash_total"], m4["ram_total"], True
    return manifest["weight_bytes"] + manifest["code_bytes_estimate"], manifest["arena_bytes"], False


def budget_text(d, board):
    """'flash 19,172 of 1,048,576 B (1.8%), RAM 4,912 of 262,144 B (1.9%)' for the board:
    the whole firmware measured by the linker, or the model alone estimated (no toolchain)."""
    from minitiny.deploy import boards
    b = boards.get(board)
    if d.m4 and d.m4.get("flash_budget"):
        flash, ram, how = d.m4["flash_total"], d.m4["ram_reserved"], "whole firmware, linked"
    else:
        m = d.manifest
        flash, ram, how = m["weight_bytes"] + m["code_bytes_estimate"], m["arena_bytes"], "model only, estimated"
    return (f"flash {flash:,} of {b.flash_bytes:,} B ({100 * flash / b.flash_bytes:.1f}%), RAM {ram:,} "
            f"of {b.ram_bytes:,} B ({100 * ram / b.ram_bytes:.1f}%) ({how})")


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
    flash, ram, measured = flash_ram(d.m4, m)
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
    """The results as text (or Markdown): the example's name on the left, numbers right."""
    return text_table(HEADER, [_cells(r) for r in rows], right=range(1, len(HEADER)), markdown=markdown)


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
    from minitiny.reporting import plots
    return plots.available()


if __name__ == "__main__":
    sys.exit("examples/common.py is a helper; run one of the examples, or examples/run_all.py")
