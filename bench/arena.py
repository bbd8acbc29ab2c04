"""RAM: minitiny's arena against TensorFlow Lite Micro's smallest working arena.

For each model (the five MLPerf Tiny reference models in tests/data/mlperf/ by default, or
the `.tflite` files named on the command line): imported with `from_tflite`, generated with
the DSP and the reference kernel variants (the DSP kernels need scratch, the reference ones
none), and compared with TFLM's minimum arena, measured in this run by bisection over
`arena_size` (minitiny.quant.tflm.tflm_min_arena: TFLM allocates and runs one inference in
it, and fails one byte below).

Printed per model and variant: minitiny's arena bytes; the planner's lower bound for the
schedule it chose (max over steps of the bytes alive at once); the old lower bound (the
largest input + output + scratch of any one layer, the best a planner can do when every
layer writes a fresh output); TFLM's minimum arena; and the ratio arena / TFLM. The same
table is written to bench/results/arena.md.

    python bench/arena.py                          # the five MLPerf Tiny models
    python bench/arena.py path/to/model.tflite ... # any int8 .tflite files
"""
import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from minitiny import codegen                                    # noqa: E402
from minitiny.quant import tflm                                 # noqa: E402
from minitiny.quant.tflite_read import from_tflite              # noqa: E402

MLPERF = os.path.join(os.path.dirname(HERE), "tests", "data", "mlperf")
MLPERF_MODELS = [                                                # (file, label)
    ("kws_ds_cnn.tflite", "keyword spotting DS-CNN"),
    ("vww_mobilenet_v1.tflite", "visual wake words MobileNetV1 0.25"),
    ("ic_resnet8.tflite", "image classification ResNet-8"),
    ("micro_speech.tflite", "micro_speech tiny_conv"),
    ("ad_autoencoder.tflite", "anomaly detection FC autoencoder"),
]
VARIANTS = ("dsp", "reference")
RESULTS = os.path.join(HERE, "results", "arena.md")


def minitiny_arena(qmodel, variant, work):
    """The generated model's figures: {'arena', 'lower_bound', 'old_lower_bound'}."""
    out = os.path.join(work, f"{qmodel.name}-{variant}")
    manifest = codegen.generate(qmodel, out, name="m", variant=variant).manifest
    return {"arena": manifest["arena_bytes"], "lower_bound": manifest["arena_lower_bound"],
            "old_lower_bound": manifest["max_layer_bytes"]}


def measure(path, label):
    data = open(path, "rb").read()
    qmodel = from_tflite(data, name=os.path.splitext(os.path.basename(path))[0])
    row = {"label": label, "tflm": tflm.tflm_min_arena(data)}
    with tempfile.TemporaryDirectory() as work:
        for variant in VARIANTS:
            row[variant] = minitiny_arena(qmodel, variant, work)
    return row


def table(rows):
    out = ["| model | variant | minitiny arena | lower bound | old lower bound "
           "| TFLM minimum arena | arena / TFLM |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        for variant in VARIANTS:
            v = r[variant]
            out.append(f"| {r['label']} | {variant} | {v['arena']:,} B | {v['lower_bound']:,} B "
                       f"| {v['old_lower_bound']:,} B | {r['tflm']:,} B | {v['arena'] / r['tflm']:.2f} |")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="int8 .tflite files (default: the MLPerf Tiny models)")
    parser.add_argument("--no-write", action="store_true", help=f"do not rewrite {os.path.relpath(RESULTS)}")
    args = parser.parse_args(argv)
    models = ([(p, os.path.basename(p)) for p in args.models] if args.models
              else [(os.path.join(MLPERF, f), label) for f, label in MLPERF_MODELS])
    rows = []
    for path, label in models:
        rows.append(measure(path, label))
        print(json.dumps(rows[-1]), flush=True)
    text = table(rows)
    print(text)
    if not args.no_write and not args.models:
        with open(RESULTS, "w") as f:
            f.write("# Arena: minitiny against TFLite Micro's minimum arena\n\n"
                    "Written by `python bench/arena.py` (MLPerf Tiny models of tests/data/mlperf/, "
                    "made by scripts/make_mlperf_tiny.py). TFLM's minimum arena is measured in the "
                    "same run, by bisection over `arena_size`.\n\n" + text + "\n")
    return rows


if __name__ == "__main__":
    main()
