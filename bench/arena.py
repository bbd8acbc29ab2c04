"""RAM: minitiny's arena against TensorFlow Lite Micro's smallest working arena.

For each model (the five MLPerf Tiny reference models in tests/data/mlperf/ by default, or
the `.tflite` files named on the command line): imported with `from_tflite`, generated with
the DSP and the reference kernel variants (the DSP kernels need scratch, the reference ones
none), and compared with TFLM's minimum arena, measured in this run by bisection over
`arena_size` (minitiny.quant.tflm.tflm_min_arena: TFLM allocates and runs one inference in
it, and fails one byte below).

Printed per model and variant: the arena of the plain schedule ("before": every convolution
and pool writes fresh bytes) and of the in-place one ("after": codegen/inplace.py); the
peak of the in-place schedule (max over steps of the bytes alive at once, bytes written in
place counted once: the planner's lower bound); the old lower bound (the plain schedule's
peak: for a chain, the largest input + output + scratch of any one layer); TFLM's minimum
arena; and the ratio after / TFLM. "streamed": generated with ram_budget = half of TFLM's
minimum arena (codegen/stream.py: runs of convolutions computed in bands of rows where the
in-place plan is over that budget), with the streamed ops, their extra MACs (recomputed
rows), the bytes the windows copy, and the layers computed with the scalar kernel because
the budget has no room for their DSP kernel's scratch; where the budget cannot be met, the
smallest arena the planner reaches. With --instructions, the instructions per inference of the DSP build
on the emulated Cortex-M4 (QEMU, exact counts), plain, in place and streamed: the same
kernels, only the offsets (and, streamed, the band calls and window copies) differ. The
same tables are written to bench/results/arena.md.

    python bench/arena.py                          # the five MLPerf Tiny models
    python bench/arena.py --instructions           # and their instructions on the M4
    python bench/arena.py --architectures          # and the architectures of tests/data/architectures/
    python bench/arena.py path/to/model.tflite ... # any int8 .tflite files

A file minitiny does not import, or whose C it does not generate yet, is listed with the
reason instead of figures.
"""
import argparse
import json
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from minitiny import codegen                                    # noqa: E402
from minitiny.quant import tflm                                 # noqa: E402
from minitiny.quant.tflite_read import from_tflite              # noqa: E402
from minitiny.files import atomic_write  # noqa: E402

MLPERF = os.path.join(os.path.dirname(HERE), "tests", "data", "mlperf")
ARCHITECTURES = os.path.join(os.path.dirname(HERE), "tests", "data", "architectures")
MLPERF_MODELS = [                                                # (file, label)
    ("kws_ds_cnn.tflite", "keyword spotting DS-CNN"),
    ("vww_mobilenet_v1.tflite", "visual wake words MobileNetV1 0.25"),
    ("ic_resnet8.tflite", "image classification ResNet-8"),
    ("micro_speech.tflite", "micro_speech tiny_conv"),
    ("ad_autoencoder.tflite", "anomaly detection FC autoencoder"),
]
VARIANTS = ("dsp", "reference")
RESULTS = os.path.join(HERE, "results", "arena.md")


def minitiny_arena(qmodel, variant, work, in_place, ram_budget=None):
    """The generated model's figures: {'arena', 'lower_bound', 'in_place'} (ops run in place),
    with a budget also {'streamed' (ops), 'extra_macs', 'copied_bytes'}; a budget that cannot
    be met gives {'arena': None, 'reachable': the smallest arena the planner reaches}."""
    out = os.path.join(work, f"{qmodel.name}-{variant}-{in_place}-{ram_budget}")
    try:
        manifest = codegen.generate(qmodel, out, name="m", variant=variant, in_place=in_place,
                                    ram_budget=ram_budget).manifest
    except codegen.CodegenError as e:
        reachable = re.search(r"the smallest arena reachable is (\d+) B", str(e))
        if ram_budget is None or reachable is None:
            raise
        return {"arena": None, "reachable": int(reachable.group(1))}
    streams = manifest.get("streams", [])
    return {"arena": manifest["arena_bytes"], "lower_bound": manifest["arena_lower_bound"],
            "in_place": sum(1 for layer in manifest["layers"] if layer.get("in_place")),
            "streamed": sum(len(s["ops"]) for s in streams), "extra_macs": sum(s["extra_macs"] for s in streams),
            "scalar_for_ram": sum(1 for layer in manifest["layers"] if layer.get("scalar_for_ram")),
            "copied_bytes": sum(s["copied_bytes"] for s in streams)}


def instructions(qmodel, work, in_place, ram_budget=None):
    """Instructions of one inference of the DSP build on the emulated Cortex-M4."""
    from minitiny import firmware
    out = os.path.join(work, f"{qmodel.name}-m4-{in_place}-{ram_budget}")
    codegen.generate(qmodel, out, name="m", variant="dsp", in_place=in_place, ram_budget=ram_budget)
    result = firmware.run(out, board="cortex-m4", n=1, profile=False)
    if not result.ok or result.matches_reference is not True:
        raise SystemExit(f"{qmodel.name} (in_place={in_place}): {result.status}: {result.message}")
    return result.instructions


def measure(path, label, count_instructions=False):
    data = open(path, "rb").read()
    qmodel = from_tflite(data, name=os.path.splitext(os.path.basename(path))[0])
    row = {"label": label, "tflm": tflm.tflm_min_arena(data)}
    with tempfile.TemporaryDirectory() as work:
        for variant in VARIANTS:
            row[variant] = {"before": minitiny_arena(qmodel, variant, work, False),
                            "after": minitiny_arena(qmodel, variant, work, True),
                            "streamed": minitiny_arena(qmodel, variant, work, True, row["tflm"] // 2)}
        if count_instructions:
            row["instructions"] = {"before": instructions(qmodel, work, False),
                                   "after": instructions(qmodel, work, True)}
            streamed = row["dsp"]["streamed"]
            if streamed["arena"] is not None and (streamed["streamed"] or streamed["scalar_for_ram"]):
                row["instructions"]["streamed"] = instructions(qmodel, work, True, row["tflm"] // 2)
    return row


def table(rows):
    skipped = [r for r in rows if "skipped" in r]
    rows = [r for r in rows if "skipped" not in r]
    out = ["| model | variant | arena before | arena after | ops in place | peak after "
           "| old lower bound | TFLM minimum arena | after / TFLM | streamed | ops streamed "
           "| extra MACs | window copies | scalar for RAM | streamed / TFLM |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        for variant in VARIANTS:
            before, after, streamed = r[variant]["before"], r[variant]["after"], r[variant]["streamed"]
            if streamed["arena"] is None:
                stream_cells = f"not met: {streamed['reachable']:,} B at best | | | | | {streamed['reachable'] / r['tflm']:.2f}"
            else:
                stream_cells = (f"{streamed['arena']:,} B | {streamed['streamed']} | {streamed['extra_macs']:,} "
                                f"| {streamed['copied_bytes']:,} B | {streamed['scalar_for_ram']} "
                                f"| {streamed['arena'] / r['tflm']:.2f}")
            out.append(f"| {r['label']} | {variant} | {before['arena']:,} B | {after['arena']:,} B "
                       f"| {after['in_place']} | {after['lower_bound']:,} B | {before['lower_bound']:,} B "
                       f"| {r['tflm']:,} B | {after['arena'] / r['tflm']:.2f} | {stream_cells} |")
    if any("instructions" in r for r in rows):
        out += ["", "Instructions per inference, DSP kernels on the emulated Cortex-M4 (streamed: where the "
                "budget of half TFLM's arena streams an op or runs one on the scalar kernel):", "",
                "| model | plain schedule | in place | in place / plain | streamed | streamed / plain |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            i = r.get("instructions")
            if i:
                streamed = (f"{i['streamed']:,} | {i['streamed'] / i['before']:.4f}" if "streamed" in i
                            else "- | -")
                out.append(f"| {r['label']} | {i['before']:,} | {i['after']:,} | {i['after'] / i['before']:.4f} "
                           f"| {streamed} |")
    if skipped:
        out += ["", "Not measured:", ""] + [f"- {r['label']}: {r['skipped']}" for r in skipped]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="int8 .tflite files (default: the MLPerf Tiny models)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the instructions of the DSP build on the emulated Cortex-M4")
    parser.add_argument("--architectures", action="store_true",
                        help="also the architectures of tests/data/architectures/")
    parser.add_argument("--no-write", action="store_true", help=f"do not rewrite {os.path.relpath(RESULTS)}")
    args = parser.parse_args(argv)
    models = ([(p, os.path.basename(p)) for p in args.models] if args.models
              else [(os.path.join(MLPERF, f), label) for f, label in MLPERF_MODELS])
    rows = []
    for path, label in models:
        rows.append(measure(path, label, args.instructions))
        print(json.dumps(rows[-1]), flush=True)
    text = table(rows)
    if args.architectures:
        more = []
        for name in sorted(f for f in os.listdir(ARCHITECTURES) if f.endswith(".tflite")):
            try:
                more.append(measure(os.path.join(ARCHITECTURES, name), name[:-len(".tflite")]))
            except Exception as e:                   # noqa: BLE001 (refused by name: listed as such)
                more.append({"label": name[:-len(".tflite")], "skipped": f"{type(e).__name__}: "
                             f"{str(e).splitlines()[0][:140]}"})
            print(json.dumps(more[-1]), flush=True)
        text += "\n\nThe architectures of tests/data/architectures/ (issue 19):\n\n" + table(more)
    print(text)
    if not args.no_write and not args.models:
        atomic_write(RESULTS, "# Arena: minitiny against TFLite Micro's minimum arena\n\n"
                              "Written by `python bench/arena.py --instructions --architectures` (MLPerf Tiny models of tests/data/mlperf/, "
                              "made by scripts/make_mlperf_tiny.py). TFLM's minimum arena is measured in the "
                              "same run, by bisection over `arena_size`. \"before\": the plain schedule (every "
                              "convolution and pool writes fresh bytes); \"after\": kernels write over the input "
                              "they are done reading (codegen/inplace.py); \"streamed\": generated with "
                              "ram_budget = half of TFLM's minimum arena, runs of convolutions computed in "
                              "bands of rows where the in-place plan is over it (codegen/stream.py), and a "
                              "layer whose DSP kernel's scratch no stream removes computed with the scalar "
                              "kernel (\"scalar for RAM\"; its instructions below).\n\n"
                              + text + "\n")
    return rows


if __name__ == "__main__":
    main()
