"""Instructions per multiply-accumulate on an emulated Cortex-M4: scalar kernels vs DSP-SIMD.

Three models, random weights quantized with minitiny's own quantizer (the figures depend
on the shapes, not on the values):

    mlp     Dense 256 -> 256 (relu) -> 10                                  dense-heavy
    cnn     Conv2D 8 3x3 (28x28x1) -> MaxPool 2 -> Conv2D 16 3x3 -> MaxPool 2
            -> Flatten -> Dense 10                                          conv-heavy
    ds-cnn  MLPerf Tiny's keyword-spotting DS-CNN: Conv2D 64 10x4 stride 2 on 49x10x1,
            4 x (DepthwiseConv2D 3x3 + Conv2D 64 1x1), average pool, Dense 12

Each model is generated twice (codegen variant "scalar" and "dsp"), built with -O2 for
the Cortex-M4 (QEMU mps2-an386) and run; QEMU's instruction counts are exact (a TCG plugin,
minitiny.firmware), and both builds must give the NumPy reference's outputs. The table:
instructions per MAC of the whole inference (everything between the two markers around
NAME_invoke: copies, pooling, softmax too), and of the multiply-accumulate layers alone
(dense, conv, depthwise: the per-layer counts of the profiling build), scalar vs DSP and
their ratio, then flash and RAM of both builds.

QEMU counts instructions, not cycles: on a Cortex-M4 SMLAD and most DSP instructions take
one cycle, loads two (one when pipelined), a taken branch two to four.

    python bench/cortexm_mac.py                 # all three models
    python bench/cortexm_mac.py --only mlp -n 2
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


def quantized(name, seed=0):
    mt.random.seed(seed)
    model = MODELS[name]()
    rng = np.random.default_rng(seed)
    rep = rng.normal(size=(64,) + tuple(model.input_shape)).astype(np.float32)
    return mt.quantize(model, rep)


def measure(qmodel, variant, n, work):
    """Run one variant on the M4; return (result, MACs per inference, MACs of MAC layers)."""
    d = os.path.join(work, f"{qmodel.name}-{variant}")
    g = codegen.generate(qmodel, d, name=qmodel.name, variant=variant)
    result = firmware.run(d, board="cortex-m4", n=n, profile=True)
    if not result.ok:
        raise SystemExit(f"{qmodel.name} ({variant}): {result.status}: {result.message}")
    return result, g.manifest


def row(label, qmodel, n, work):
    out = {}
    for variant in ("scalar", "dsp"):
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
    args = parser.parse_args(argv)
    names = args.only or list(MODELS)
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            rows.append(row(name, quantized(name), args.n, work))
    print(f"Cortex-M4 (QEMU mps2-an386), arm-none-eabi-gcc -O2, instructions per inference / MACs\n")
    print(f"{'model':8s} {'MACs':>9s} | {'whole inference':^27s} | {'MAC layers only':^27s}")
    print(f"{'':8s} {'':9s} | {'scalar':>8s} {'dsp':>8s} {'ratio':>8s} | {'scalar':>8s} {'dsp':>8s} {'ratio':>8s}")
    for label, r in rows:
        s, d = r["scalar"], r["dsp"]
        ws, wd = s["total"] / s["macs"], d["total"] / d["macs"]
        ls, ld = s["mac_layer_insns"] / s["mac_layer_macs"], d["mac_layer_insns"] / d["mac_layer_macs"]
        print(f"{label:8s} {s['macs']:9,d} | {ws:8.2f} {wd:8.2f} {ws / wd:7.2f}x | {ls:8.2f} {ld:8.2f} {ls / ld:7.2f}x")
    print(f"\n{'model':8s} | {'flash scalar':>12s} {'flash dsp':>10s} {'delta':>7s} | {'code scalar':>11s} "
          f"{'code dsp':>9s} | {'RAM scalar':>10s} {'RAM dsp':>8s} {'delta':>7s} (arena {'scalar':>6s} {'dsp':>6s})")
    for label, r in rows:
        s, d = r["scalar"], r["dsp"]
        print(f"{label:8s} | {s['flash']:12,d} {d['flash']:10,d} {d['flash'] - s['flash']:+7,d} | "
              f"{s['code']:11,d} {d['code']:9,d} | {s['ram']:10,d} {d['ram']:8,d} {d['ram'] - s['ram']:+7,d} "
              f"(arena {s['arena']:6,d} {d['arena']:6,d})")
    if args.layers:
        for label, r in rows:
            print(f"\n{label}: per layer, instructions per MAC (scalar, dsp)")
            for (kind, macs, si), (_, _, di) in zip(r["scalar"]["layers"], r["dsp"]["layers"]):
                if macs:
                    print(f"  {kind:20s} {macs:9,d} MACs  {si / macs:6.2f} {di / macs:6.2f}")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
