"""What each kernel variant costs: instructions per MAC and flash, Cortex-M3 and M4.

The models of bench/cortexm_mac.py (a 256-256-10 MLP, a small 28x28 CNN, MLPerf Tiny's
DS-CNN), random weights quantized with minitiny's quantizer, generated once per kernel
variant (codegen KERNEL_VARIANTS):

    reference   TFLM's reference kernels, one generic function per op kind (the default)
    scalar      portable C tuned per layer (four outputs at a time, folded bias)
    dsp         DSP-SIMD kernels (the M4 only: the M3 has no DSP extension)

Each build is compiled with arm-none-eabi-gcc -O2, run on the emulated core (QEMU
mps2-an385 for the M3, mps2-an386 for the M4) and must give the NumPy int8 reference's
outputs; QEMU's instruction counts are exact (minitiny.firmware's TCG plugin). Printed:
instructions per MAC of the whole inference (everything NAME_invoke does), flash (code and
constants of the linked image) and its code part, then the ratios of the variants to each
other. The same tables are written to bench/results/kernel_variants.md.

    python bench/kernel_variants.py               # all three models, M3 and M4
    python bench/kernel_variants.py --only mlp -n 1
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from minitiny import codegen, firmware                   # noqa: E402
from cortexm_mac import MODELS, quantized                # noqa: E402
from minitiny.files import atomic_write  # noqa: E402

# (core, variant) pairs measured: the DSP kernels need the DSP extension (M4 and up)
BUILDS = [("cortex-m3", "reference"), ("cortex-m3", "scalar"),
          ("cortex-m4", "reference"), ("cortex-m4", "scalar"), ("cortex-m4", "dsp")]
RESULTS = os.path.join(HERE, "results", "kernel_variants.md")


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
    parser.add_argument("--only", choices=list(MODELS), action="append")
    parser.add_argument("-n", type=int, default=1, help="inputs per run (the counts are per inference)")
    parser.add_argument("--no-write", action="store_true", help=f"do not rewrite {os.path.relpath(RESULTS, HERE)}")
    args = parser.parse_args(argv)
    names = args.only or list(MODELS)
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            qmodel = quantized(name)
            rows.append((name, {(core, variant): measure(qmodel, core, variant, args.n, work)
                                for core, variant in BUILDS}))
    text = tables(rows)
    print(text)
    print(f"\n({time.time() - t0:.0f} s)")
    if not args.no_write and not args.only:
        atomic_write(RESULTS, "# Kernel variants: instructions per MAC and flash\n\n"
                              "Regenerated by `python bench/kernel_variants.py` (its docstring says how it measures):\n"
                              "arm-none-eabi-gcc -O2, QEMU's exact instruction counts, every build checked against\n"
                              "the NumPy int8 reference.\n\n" + text + "\n")


if __name__ == "__main__":
    main()
