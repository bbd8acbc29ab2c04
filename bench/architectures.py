"""The architectures users bring: which import, how exactly they run, and what they cost.

The files are tests/data/architectures/ (scripts/make_architectures.py: small Keras models
converted by TensorFlow 2.21, TFLite Micro's outputs stored beside). Per file:

    imported      from_tflite gets through, else the unsupported items its error lists
    compared      int8 (int16) outputs of the NumPy reference compared with TFLM's stored
                  outputs (full-range and in-distribution inputs) / how many differ
    flash         the linked image on the emulated Cortex-M4 (code and constants), bytes
    arena         the generated C's arena / TFLite Micro's minimum arena for the same file
    instr/MAC     instructions per MAC of the whole inference on the emulated M4 (QEMU
                  mps2-an386, exact counts), the fastest variant ('auto': the DSP kernels,
                  for 16x8 models too; 'reference' where the generator has no other),
                  arm-none-eabi-gcc -O2; the firmware checks its outputs against NumPy

The flash, arena and instruction figures need `generate` to accept the model (every op with
a C kernel, see docs/OPS.md). Then the builtins minitiny's one table
(minitiny/quant/supported.py) lists now, against the table as it was when issue 19 began.
Everything is written to bench/results/architectures.md.

    python bench/architectures.py                 # all files (a few minutes)
    python bench/architectures.py --only lstm --no-write
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from minitiny import codegen, firmware                                   # noqa: E402
from minitiny.quant import supported, tflm                               # noqa: E402
from minitiny.quant.tflite_read import UnsupportedTFLiteError, from_tflite  # noqa: E402
from test_architectures import DATA, expected, missing_items, outputs_of    # noqa: E402
from minitiny.files import atomic_write  # noqa: E402

RESULTS = os.path.join(HERE, "results", "architectures.md")
# The builtins the importer ran when issue 19 began (the table's first version, commit
# 520190a), besides the QUANTIZE and DEQUANTIZE it folds at the model's edges: int8 only.
BEFORE = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D",
          "MEAN", "ADD", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SOFTMAX", "LOGISTIC", "TANH",
          "RELU", "RELU6")


def tflm_arena(path):
    """TFLite Micro's minimum arena for the file, or None without tflite-micro."""
    if not tflm.available():
        return None
    with open(path, "rb") as f:
        return tflm.tflm_min_arena(f.read())


def measure(name, work, n):
    """One row: a dict of the figures the module docstring lists."""
    path = os.path.join(DATA, name)
    row = {"name": name[:-len(".tflite")], "tflm_arena": tflm_arena(path)}
    try:
        q = from_tflite(path)
    except UnsupportedTFLiteError as e:
        row["missing"] = sorted(missing_items(e.problems))
        return row
    z = expected(name)
    x = [z[k] for k in sorted(k for k in z if k.startswith("x"))]
    theirs = [z[k] for k in sorted(k for k in z if k.startswith("y"))]
    ours = outputs_of(q.predict_int8(x[0] if len(x) == 1 else x))
    row["compared"] = sum(t.size for t in theirs)
    row["mismatched"] = sum(int((np.asarray(o).reshape(t.shape) != t).sum()) for o, t in zip(ours, theirs))
    without_c = sorted({op.kind for op in q.ops} - {b.kind for b in supported.OPS if b.c})
    if without_c:
        row["no_c"] = f"no C kernel for {', '.join(without_c)}"
        return row
    d = os.path.join(work, row["name"])
    for variant in ("auto", "reference"):            # the fastest the generator accepts
        try:
            g = codegen.generate(q, d, name=row["name"], variant=variant)
            break
        except codegen.CodegenError as e:
            row["no_c"] = str(e).splitlines()[0]
    else:
        return row
    row["variant"] = variant
    row["arena"] = g.manifest["arena_bytes"]
    result = firmware.run(d, board="cortex-m4", inputs=[a[:n] for a in x] if len(x) > 1 else x[0][:n],
                          profile=False, timeout=600)
    if not result.ok or result.matches_reference is not True:
        row["no_c"] = f"firmware: {result.status} {result.message}"
        return row
    row["flash"] = result.flash["used"]
    row["ipm"] = result.instructions / g.manifest["macs"]
    return row


def architecture_table(rows):
    out = ["| architecture | imported | compared / mismatched vs TFLM | flash (M4) | arena / TFLM's minimum "
           "| instructions per MAC (M4, fastest) |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        tflm_arena_text = "?" if r["tflm_arena"] is None else (
            f"{r['tflm_arena']:,}" if isinstance(r["tflm_arena"], int) else r["tflm_arena"])
        if "missing" in r:
            out.append(f"| {r['name']} | no: {'; '.join(r['missing'])} | | | - / {tflm_arena_text} | |")
            continue
        c = [f"{r['flash']:,}", f"{r['arena']:,} / {tflm_arena_text}", f"{r['ipm']:.2f}" + ("" if r["variant"] == "auto" else f" ({r['variant']})")] if "ipm" in r else \
            ["", f"- / {tflm_arena_text}", r["no_c"]]
        out.append(f"| {r['name']} | yes | {r['compared']:,} / {r['mismatched']} | " + " | ".join(c) + " |")
    imported = sum("missing" not in r for r in rows)
    with_c = sum("ipm" in r for r in rows)
    return "\n".join(out), (f"{imported} of {len(rows)} architectures import (NumPy int8 reference "
                             f"and .tflite writer); {with_c} of them also run as generated C.")


def ops_table():
    """Every builtin in the table now, against BEFORE."""
    rows = ["| builtin | before issue 19 | now | C |", "| --- | --- | --- | --- |"]
    for op in supported.OPS:
        if op.kind is None:
            continue
        rows.append(f"| {op.name} | {'int8' if op.name in BEFORE else ''} | {', '.join(op.modes)} | "
                    f"{'yes' if op.c else 'no'} |")
    now = [op for op in supported.OPS if op.kind]
    count = {m: sum(m in op.modes for op in now) for m in supported.MODES}
    summary = (f"Builtins minitiny runs (besides the QUANTIZE/DEQUANTIZE edges): {len(BEFORE)} before "
               f"issue 19 (int8 only), {len(now)} now ("
               + ", ".join(f"{count[m]} in {m}" for m in supported.MODES)
               + f"; {sum(op.c for op in now)} with a C kernel).")
    return summary, "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="an architecture (file name without .tflite)")
    parser.add_argument("-n", type=int, default=1, help="inputs per firmware run (counts are per inference)")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite bench/results/architectures.md")
    args = parser.parse_args(argv)
    with open(os.path.join(DATA, "manifest.json")) as f:
        names = sorted(json.load(f)["files"])
    if args.only:
        names = [n for n in names if n[:-len(".tflite")] in args.only]
    t0 = time.time()
    with tempfile.TemporaryDirectory() as work:
        rows = [measure(name, work, args.n) for name in names]
    table, headline = architecture_table(rows)
    summary, ops = ops_table()
    text = f"{headline}\n\n{table}\n\n{summary}\n\n{ops}"
    print(text)
    print(f"\n({time.time() - t0:.0f} s)")
    if not args.no_write and not args.only:
        atomic_write(RESULTS, "# The architectures users bring\n\n"
                              "Regenerated by `python bench/architectures.py` (its docstring says how it measures) "
                              "from the files in\ntests/data/architectures/ (scripts/make_architectures.py).\n\n"
                              + text + "\n")


if __name__ == "__main__":
    main()
