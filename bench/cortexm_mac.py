"""Instructions per multiply-accumulate on an emulated Cortex-M4: scalar kernels vs DSP-SIMD.

Three models, random weights quantized with minitiny's own quantizer (the figures depend
on the shapes, not on the values):

    mlp     Dense 256 -> 256 (relu) -> 10                                  dense-heavy
    cnn     Conv2D 8 3x3 (28x28x1) -> MaxPool 2 -> Conv2D 16 3x3 -> MaxPool 2
            -> Flatten -> Dense 10                                          conv-heavy
    ds-cnn  MLPerf Tiny's keyword-spotting DS-CNN: Conv2D 64 10x4 stride 2 on 49x10x1,
            4 x (DepthwiseConv2D 3x3 + Conv2D 64 1x1), average pool, Dense 12

Each model is generated three times (BUILDS: the codegen variant "scalar", "dsp", and "dsp"
with dsp_weights="int16", whose dense and conv layers keep their weights extended to
int16 in flash), built with -O2 for
the Cortex-M4 (QEMU mps2-an386) and run; QEMU's instruction counts are exact (a TCG plugin,
minitiny.firmware), and every build must give the NumPy reference's outputs. The table:
instructions per MAC of the whole inference (everything between the two markers around
NAME_invoke: copies, pooling, softmax too), and of the multiply-accumulate layers alone
(dense, conv, depthwise: the per-layer counts of the profiling build), for each build, and
the speed-up over the scalar build; then flash, code and RAM of each build.

QEMU counts instructions, not cycles: on a Cortex-M4 SMLAD and most DSP instructions take
one cycle, loads two (one when pipelined), a taken branch two to four.

    python bench/cortexm_mac.py                 # all three models
    python bench/cortexm_mac.py --only mlp -n 2

With --mlperf, the DSP build (int8 weights) of the five MLPerf Tiny reference models
(tests/data/mlperf/, made by scripts/make_mlperf_tiny.py, imported with from_tflite) and of
a seeded set of random DS-CNN-like models (random_model: channel counts that are not
multiples of 4, odd input sizes, strides 1 and 2, 3x3 and 5x5 first kernels): instructions
per MAC of the whole inference, each build checked against the NumPy int8 reference, with
the average and the maximum of each set. Written to bench/results/cortexm_mac.md.

    python bench/cortexm_mac.py --mlperf                # MLPerf models and 8 random models
    python bench/cortexm_mac.py --mlperf --random 3 --layers
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import minitiny as mt                                    # noqa: E402
from minitiny import codegen, firmware                   # noqa: E402
from minitiny.files import atomic_write                  # noqa: E402

MAC_KINDS = ("fully_connected", "conv_2d", "depthwise_conv_2d")


def mlp():
    L = mt.layers
    return mt.Sequential([L.Dense(256, activation="relu", input_shape=(256,)), L.Dense(10)], name="mlp")


def cnn():
    L = mt.layers
    return mt.Sequential([
        L.Conv2D(8, 3, padding="same", activation="relu", input_shape=(28, 28, 1)), L.MaxPooling2D(2),
        L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(10)], name="cnn")


def ds_cnn():
    """MLPerf Tiny KWS reference (Zhang et al., "Hello Edge", 2017; the MLPerf Tiny v0.5
    ds_cnn model): 49 frames x 10 MFCC, 64 filters; batch norms folded by the quantizer."""
    L = mt.layers
    layers = [L.Conv2D(64, (10, 4), strides=2, padding="same", input_shape=(49, 10, 1)),
              L.BatchNormalization(), L.ReLU()]
    for _ in range(4):
        layers += [L.DepthwiseConv2D(3, padding="same"), L.BatchNormalization(), L.ReLU(),
                   L.Conv2D(64, 1), L.BatchNormalization(), L.ReLU()]
    layers += [L.GlobalAveragePooling2D(), L.Dense(12)]
    return mt.Sequential(layers, name="ds_cnn")


MODELS = {"mlp": mlp, "cnn": cnn, "ds-cnn": ds_cnn}

MLPERF = os.path.join(os.path.dirname(HERE), "tests", "data", "mlperf")
MLPERF_MODELS = ["kws_ds_cnn", "vww_mobilenet_v1", "ic_resnet8", "micro_speech", "ad_autoencoder"]
RESULTS = os.path.join(HERE, "results", "cortexm_mac.md")
RANDOM_SEED = 2026


def random_model(rng, index):
    """A DS-CNN-like model of shapes nobody tuned for: an odd-sized input of 1-3 channels, a
    first Conv2D (3x3 or 5x5, stride 1 or 2), two depthwise-separable blocks (DepthwiseConv2D
    3x3 with stride 1 or 2, then a 1x1 Conv2D), global average pool, Dense. Every channel
    count is drawn so that it is not a multiple of 4."""
    L = mt.layers

    def channels(lo, hi):
        c = int(rng.integers(lo, hi))
        return c + 1 if c % 4 == 0 else c

    h, w = (int(rng.integers(7, 20)) * 2 + 1 for _ in range(2))
    kernel, stride = int(rng.choice([3, 5])), int(rng.integers(1, 3))
    layers = [L.Conv2D(channels(6, 40), kernel, strides=stride, padding="same", activation="relu",
                       input_shape=(h, w, int(rng.integers(1, 4))))]
    for _ in range(2):
        layers += [L.DepthwiseConv2D(3, strides=int(rng.integers(1, 3)), padding="same", activation="relu"),
                   L.Conv2D(channels(10, 90), 1, activation="relu")]
    layers += [L.GlobalAveragePooling2D(), L.Dense(channels(3, 15))]
    return mt.Sequential(layers, name=f"random_{index}")


def random_models(count, seed=RANDOM_SEED):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        mt.random.seed(seed + i)
        model = random_model(rng, i)
        rep = rng.normal(size=(32,) + tuple(model.input_shape)).astype(np.float32)
        out.append(mt.quantize(model, rep))
    return out


def mlperf_models():
    from minitiny.quant.tflite_read import from_tflite
    return [from_tflite(open(os.path.join(MLPERF, f"{name}.tflite"), "rb").read(), name=name)
            for name in MLPERF_MODELS]


def describe(qmodel):
    """The shapes of a model in one line: input, then each MAC layer's kernel/stride and output."""
    parts = ["x".join(str(v) for v in qmodel.input.shape)]
    for op in qmodel.ops:
        if op.kind in MAC_KINDS:
            p, out = op.params, qmodel.tensors[op.outputs[0]].shape
            size = f" {p['kernel_h']}x{p['kernel_w']}/{p['stride_h']}" if "kernel_h" in p else ""
            parts.append(f"{op.kind}{size} -> {'x'.join(str(v) for v in out)}")
    return "; ".join(parts)


def dsp_speed(qmodels, n, work, per_layer):
    """Instructions per MAC of the DSP build (int8 weights) of each model on the M4."""
    rows = []
    for qmodel in qmodels:
        result, manifest = measure(qmodel, "dsp", n, work)
        rows.append((qmodel.name, manifest["macs"], result.instructions))
        if per_layer:
            insns = result.layer_instructions.max(axis=0)
            for i, layer in enumerate(manifest["layers"]):
                print(f"  {qmodel.name:18s} {i:2d} {layer['kind']:20s} {layer['macs']:9,d} MACs "
                      f"{int(insns[i]):10,d} insns " + (f"{insns[i] / layer['macs']:6.2f}" if layer["macs"] else ""))
    return rows


def speed_table(title, rows):
    out = [title, "", "| model | MACs | instructions | per MAC |", "| --- | ---: | ---: | ---: |"]
    ratios = [insns / macs for _, macs, insns in rows]
    for (name, macs, insns), ratio in zip(rows, ratios):
        out.append(f"| {name} | {macs:,} | {insns:,} | {ratio:.3f} |")
    out.append(f"| average | | | {sum(ratios) / len(ratios):.3f} |")
    out.append(f"| max | | | {max(ratios):.3f} |")
    return out


def mlperf_main(args):
    t0 = time.time()
    randoms = random_models(args.random)
    with tempfile.TemporaryDirectory() as work:
        mlperf_rows = dsp_speed(mlperf_models(), args.n, work, args.layers)
        random_rows = dsp_speed(randoms, args.n, work, args.layers)
    lines = speed_table("MLPerf Tiny reference models (tests/data/mlperf/):", mlperf_rows) + [""]
    lines += speed_table(f"Random DS-CNN-like models (random_model, seed {RANDOM_SEED}):", random_rows) + [""]
    lines += ["Shapes of the random models (input, then each layer's kernel/stride -> output):", ""]
    lines += [f"- {q.name}: {describe(q)}" for q in randoms]
    text = "\n".join(lines)
    print(text)
    print(f"\n({time.time() - t0:.0f} s)")
    if not args.no_write and args.random == 8:
        atomic_write(RESULTS, "# DSP kernels: instructions per MAC on the emulated Cortex-M4\n\n"
                              "Regenerated by `python bench/cortexm_mac.py --mlperf` (its docstring says how it measures): "
                              "codegen variant \"dsp\" with int8 weights, arm-none-eabi-gcc -O2, QEMU mps2-an386's exact "
                              "instruction counts of one inference, every build checked against the NumPy int8 "
                              "reference.\n\n" + text + "\n")


def quantized(name, seed=0):
    mt.random.seed(seed)
    model = MODELS[name]()
    rng = np.random.default_rng(seed)
    rep = rng.normal(size=(64,) + tuple(model.input_shape)).astype(np.float32)
    return mt.quantize(model, rep)


# the builds compared: label -> codegen options
BUILDS = {"scalar": dict(variant="scalar"), "dsp": dict(variant="dsp"),
          "dsp-w16": dict(variant="dsp", dsp_weights="int16")}


def measure(qmodel, build, n, work):
    """Run one build on the M4; return (result, the generated manifest)."""
    d = os.path.join(work, f"{qmodel.name}-{build}")
    g = codegen.generate(qmodel, d, name=qmodel.name, **BUILDS[build])
    result = firmware.run(d, board="cortex-m4", n=n, profile=True)
    if not result.ok:
        raise SystemExit(f"{qmodel.name} ({build}): {result.status}: {result.message}")
    if result.matches_reference is not True:
        raise SystemExit(f"{qmodel.name} ({build}): the outputs differ from the NumPy int8 reference")
    return result, g.manifest


def row(label, qmodel, n, work):
    out = {}
    for variant in BUILDS:
        result, manifest = measure(qmodel, variant, n, work)
        macs = manifest["macs"]
        mac_layers = [i for i, layer in enumerate(manifest["layers"]) if layer["kind"] in MAC_KINDS]
        per_layer = result.layer_instructions.max(axis=0)
        out[variant] = dict(total=result.instructions, macs=macs,
                            mac_layer_insns=int(per_layer[mac_layers].sum()),
                            mac_layer_macs=sum(manifest["layers"][i]["macs"] for i in mac_layers),
                            layers=[(manifest["layers"][i]["kind"], manifest["layers"][i]["macs"],
                                     int(per_layer[i])) for i in range(len(per_layer))],
                            flash=result.flash["used"], ram=result.ram["static"],
                            code=result.flash["code"], arena=result.ram["arena"])
    return label, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(MODELS), action="append")
    parser.add_argument("-n", type=int, default=2, help="inputs per run (the counts are per inference)")
    parser.add_argument("--layers", action="store_true", help="also print the per-layer figures")
    parser.add_argument("--mlperf", action="store_true",
                        help="the DSP build of the MLPerf Tiny models and of random models instead")
    parser.add_argument("--random", type=int, default=8, help="random models with --mlperf")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite the results file")
    args = parser.parse_args(argv)
    if args.mlperf:
        return mlperf_main(args)
    names = args.only or list(MODELS)
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            rows.append(row(name, quantized(name), args.n, work))
    builds = list(BUILDS)
    print("Cortex-M4 (QEMU mps2-an386), arm-none-eabi-gcc -O2, instructions per MAC "
          "(issue 6's targets: scalar near 4, DSP at or below 1.2)")
    print("builds: " + "; ".join(f"{b} = {', '.join(f'{k}={v}' for k, v in o.items())}" for b, o in BUILDS.items()))
    print()
    width = 9 * len(builds)
    print(f"{'model':8s} {'MACs':>9s} | {'whole inference':^{width}s} | {'MAC layers only':^{width}s} | speed-up over scalar")
    print(f"{'':8s} {'':9s} | " + "".join(f"{b:>9s}" for b in builds) + " | "
          + "".join(f"{b:>9s}" for b in builds) + " | " + "".join(f"{b:>9s}" for b in builds[1:]))
    for label, r in rows:
        whole = [r[b]["total"] / r[b]["macs"] for b in builds]
        mac = [r[b]["mac_layer_insns"] / r[b]["mac_layer_macs"] for b in builds]
        print(f"{label:8s} {r['scalar']['macs']:9,d} | " + "".join(f"{v:9.2f}" for v in whole) + " | "
              + "".join(f"{v:9.2f}" for v in mac) + " | " + "".join(f"{whole[0] / v:8.2f}x" for v in whole[1:]))
    print(f"\n{'model':8s} | {'flash':^{width}s} | {'code':^{width}s} | {'RAM (static)':^{width}s}")
    print(f"{'':8s} | " + " | ".join("".join(f"{b:>9s}" for b in builds) for _ in range(3)))
    for label, r in rows:
        print(f"{label:8s} | " + " | ".join("".join(f"{r[b][key]:9,d}" for b in builds)
                                            for key in ("flash", "code", "ram")))
    if args.layers:
        for label, r in rows:
            print(f"\n{label}: per layer, instructions per MAC ({', '.join(builds)})")
            for i, (kind, macs, _) in enumerate(r["scalar"]["layers"]):
                if macs:
                    print(f"  {kind:20s} {macs:9,d} MACs " + "".join(f"{r[b]['layers'][i][2] / macs:7.2f}" for b in builds))
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
