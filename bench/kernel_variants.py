"""What each kernel variant costs: instructions per MAC and flash, Cortex-M3 and M4.

The models of bench/cortexm_mac.py (a 256-256-10 MLP, a small 28x28 CNN, MLPerf Tiny's
DS-CNN), random weights quantized with minitiny's quantizer, generated once per kernel
variant (codegen KERNEL_VARIANTS):

    reference   TFLM's reference kernels, one generic function per op kind (the default)
    scalar      portable C tuned per layer (four outputs at a time, folded bias)
    dsp         DSP-SIMD kernels (the M4 only: the M3 has no DSP extension)

and the same in TFLite's 16x8 scheme (int16 activations, int8 weights): the three models
quantized with activations="int16", and the CNN TensorFlow 2.21's converter made
(tests/data/tflite/cnn_16x8.tflite, a keyword-spotting shape).

Each build is compiled with arm-none-eabi-gcc -O2, run on the emulated core (QEMU
mps2-an385 for the M3, mps2-an386 for the M4) and must give the NumPy int8 reference's
outputs; QEMU's instruction counts are exact (minitiny.firmware's TCG plugin). Printed:
instructions per MAC of the whole inference (everything NAME_invoke does), flash (code and
constants of the linked image) and its code part, then the ratios of the variants to each
other. The same tables are written to bench/results/kernel_variants.md.

    python bench/kernel_variants.py               # all models, int8 and 16x8, M3 and M4
    python bench/kernel_variants.py --only mlp -n 1
    python bench/kernel_variants.py --only cnn_16x8_tf
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import minitiny as mt                                    # noqa: E402
from minitiny import codegen, firmware                   # noqa: E402
from cortexm_mac import MODELS, quantized                # noqa: E402
from minitiny.quant.tflite_read import from_tflite       # noqa: E402
from minitiny.files import atomic_write  # noqa: E402

# (core, variant) pairs measured: the DSP kernels need the DSP extension (M4 and up)
BUILDS = [("cortex-m3", "reference"), ("cortex-m3", "scalar"),
          ("cortex-m4", "reference"), ("cortex-m4", "scalar"), ("cortex-m4", "dsp")]
RESULTS = os.path.join(HERE, "results", "kernel_variants.md")
TF_CNN_16X8 = os.path.join(os.path.dirname(HERE), "tests", "data", "tflite", "cnn_16x8.tflite")


def quantized16(name, seed=0):
    """The model of cortexm_mac.MODELS in the 16x8 scheme, as `quantized` makes the int8 one."""
    import numpy as np
    mt.random.seed(seed)
    model = MODELS[name]()
    rep = np.random.default_rng(seed).normal(size=(64,) + tuple(model.input_shape)).astype(np.float32)
    q = mt.quantize(model, rep, activations="int16")
    q.name = f"{q.name}_16x8"
    return q


# name -> a function that makes the QModel: int8, then 16x8
ALL_MODELS = {**{name: (lambda name=name: quantized(name)) for name in MODELS},
              **{f"{name}_16x8": (lambda name=name: quantized16(name)) for name in MODELS},
              "cnn_16x8_tf": lambda: from_tflite(TF_CNN_16X8)}


def measure(qmodel, core, variant, n, work):
    """{'ipm': instructions per MAC, 'flash', 'code', 'macs'} of one build."""
    d = os.path.join(work, f"{qmodel.name}-{core}-{variant}")
    g = codegen.generate(qmodel, d, name=qmodel.name, variant=variant)
    result = firmware.run(d, board=core, n=n, profile=False)
    if not result.ok:
        raise SystemExit(f"{qmodel.name} ({core}, {variant}): {result.status}: {result.message}")
    if result.matches_reference is not True:
        raise SystemExit(f"{qmodel.name} ({core}, {variant}): the outputs differ from the NumPy int8 reference")
    macs = g.manifest["macs"]
    return {"ipm": result.instructions / macs, "flash": result.flash["used"], "code": result.flash["code"],
            "macs": macs}


def tables(rows):
    """The markdown tables: figures per build, then ratios."""
    names = " | ".join(f"{v} {c[7:].upper()}" for c, v in BUILDS) + " |"
    rule = " | ".join("---:" for _ in BUILDS) + " |"
    out = ["Instructions per MAC (whole inference):", "", "| model | MACs | " + names, "| --- | ---: | " + rule]
    for label, r in rows:
        out.append(f"| {label} | {r[BUILDS[0]]['macs']:,} | "
                   + " | ".join(f"{r[b]['ipm']:.2f}" for b in BUILDS) + " |")
    out += ["", "Flash of the linked image, bytes (of which code):", "", "| model | " + names, "| --- | " + rule]
    for label, r in rows:
        out.append(f"| {label} | " + " | ".join(f"{r[b]['flash']:,} ({r[b]['code']:,})" for b in BUILDS) + " |")
    ratios = [("reference / scalar, M3", ("cortex-m3", "reference"), ("cortex-m3", "scalar")),
              ("reference / scalar, M4", ("cortex-m4", "reference"), ("cortex-m4", "scalar")),
              ("reference / dsp, M4", ("cortex-m4", "reference"), ("cortex-m4", "dsp")),
              ("scalar / dsp, M4", ("cortex-m4", "scalar"), ("cortex-m4", "dsp"))]
    out += ["", "Ratios (instructions per MAC; flash):", "",
            "| model | " + " | ".join(name for name, _, _ in ratios) + " |",
            "| --- | " + " | ".join("---:" for _ in ratios) + " |"]
    for label, r in rows:
        out.append(f"| {label} | " + " | ".join(
            f"{r[a]['ipm'] / r[b]['ipm']:.2f}x; {r[a]['flash'] / r[b]['flash']:.2f}x" for _, a, b in ratios) + " |")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(ALL_MODELS), action="append")
    parser.add_argument("-n", type=int, default=1, help="inputs per run (the counts are per inference)")
    parser.add_argument("--no-write", action="store_true", help=f"do not rewrite {os.path.relpath(RESULTS, HERE)}")
    args = parser.parse_args(argv)
    names = args.only or list(ALL_MODELS)
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            qmodel = ALL_MODELS[name]()
            rows.append((name, {(core, variant): measure(qmodel, core, variant, args.n, work)
                                for core, variant in BUILDS}))
    text = tables(rows)
    print(text)
    print(f"\n({time.time() - t0:.0f} s)")
    if not args.no_write and not args.only:
        atomic_write(RESULTS, "# Kernel variants: instructions per MAC and flash\n\n"
                              "Regenerated by `python bench/kernel_variants.py` (its docstring says how it measures):\n"
                              "arm-none-eabi-gcc -O2, QEMU's exact instruction counts, every build checked against\n"
                              "the NumPy int8 reference (int16 for the 16x8 models, `_16x8`).\n\n" + text + "\n")


if __name__ == "__main__":
    main()
