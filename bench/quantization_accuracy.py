"""Quantization accuracy: float vs int8 (post-training and quantization-aware), model sizes,
and int8 outputs checked against TensorFlow Lite Micro's interpreter.

Models (each trained here from a fixed seed):

    sine      Dense(16, relu) -> Dense(16, relu) -> Dense(1)       y = sin(x), TFLM's hello_world
    mlp       Flatten -> Dense(64, relu) -> Dense(10, softmax)     MNIST (28x28)
    cnn       Conv2D(8, 3) + BN + ReLU -> MaxPool -> DepthwiseConv2D(3) + BN + ReLU6
              -> Conv2D(16, 1, relu) + Add (residual) -> MaxPool -> GlobalAveragePooling
              -> Dense(10, softmax)                                MNIST (28x28x1)
    outlier   the spiral classifier of tests/test_qat.py with one hidden unit scaled x300
              (a function-preserving change that ruins per-tensor activation scales)

MNIST comes from `minitiny.datasets.load_mnist()` when its files are in the local cache
(`minitiny-data fetch mnist`); otherwise a synthetic MNIST-shaped task is used and the
table says so. For each model: float metric, int8 after post-training quantization (PTQ),
int8 after a short quantization-aware fine-tuning (QAT); float32 weight bytes against the
int8 QModel's and the .tflite file's; and how many int8 outputs differ from TFLM's (should
be 0).

    python bench/quantization_accuracy.py            # full MNIST: about 1.5 minutes
    python bench/quantization_accuracy.py --quick    # 10,000 MNIST images: about 20 s
"""
import argparse
import time

import numpy as np

import minitiny as mt
from minitiny.datasets import make_spirals
from minitiny.quant import tflm
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.qat import quantize_aware
from minitiny.quant.quantizer import FIXED_OUTPUT, quantize
from minitiny.quant.report import quantization_report

L = mt.layers


# ---- data -------------------------------------------------------------------------------------
def mnist(n_train, n_test):
    """(x_train, y_train, x_test, y_test, source): real MNIST in [0, 1] if cached."""
    try:
        (xtr, ytr), (xte, yte) = mt.datasets.load_mnist()
        source = "MNIST"
    except Exception as e:                              # not fetched: say so, use synthetic
        print(f"MNIST not available ({type(e).__name__}); using a synthetic MNIST-shaped task")
        rng = np.random.default_rng(0)
        protos = rng.random((10, 28, 28)) > 0.7
        ytr, yte = rng.integers(0, 10, n_train), rng.integers(0, 10, n_test)
        xtr = np.clip(protos[ytr] * 200 + rng.normal(0, 60, (n_train, 28, 28)), 0, 255)
        xte = np.clip(protos[yte] * 200 + rng.normal(0, 60, (n_test, 28, 28)), 0, 255)
        source = "synthetic (MNIST not cached)"
    scale = lambda a: (np.asarray(a, np.float32) / 255.0)
    return (scale(xtr[:n_train]), np.asarray(ytr[:n_train], np.int64),
            scale(xte[:n_test]), np.asarray(yte[:n_test], np.int64), source)


# ---- models -------------------------------------------------------------------------------------
def sine_task(quick):
    mt.random.seed(0)
    (x, y), (xt, yt) = mt.datasets.load_sine(1000, noise=0.0)
    m = mt.Sequential([L.Dense(16, activation="relu", input_shape=[1]),
                       L.Dense(16, activation="relu"), L.Dense(1)])
    m.compile("adam", "mse")
    m.fit(x, y, epochs=100 if quick else 300, verbose=0)
    return dict(name="sine", data="sin(x), 800 train / 200 test", model=m, x=x, y=y, xt=xt,
                yt=yt, loss="mse", metric="mse", qat_epochs=3 if quick else 10)


def mlp_task(quick, data):
    xtr, ytr, xte, yte, source = data
    mt.random.seed(0)
    m = mt.Sequential([L.Flatten(input_shape=(28, 28)), L.Dense(64, activation="relu"),
                       L.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(xtr, ytr, epochs=2 if quick else 5, verbose=0)
    return dict(name="mlp", data=f"{source}, {len(xtr)} train / {len(xte)} test", model=m,
                x=xtr, y=ytr, xt=xte, yt=yte, loss="sparse_categorical_crossentropy",
                metric="accuracy", qat_epochs=1)


def cnn_task(quick, data):
    xtr, ytr, xte, yte, source = data
    xtr, xte = xtr[..., None], xte[..., None]
    mt.random.seed(0)
    inp = mt.Input((28, 28, 1))
    h = L.Conv2D(8, 3)(inp)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.MaxPooling2D()(h)                                         # (13, 13, 8)
    d = L.DepthwiseConv2D(3, padding="same")(h)
    d = L.BatchNormalization()(d)
    d = L.ReLU(6.0)(d)
    d = L.Conv2D(8, 1, activation="relu")(d)
    h = L.Add()([h, d])
    h = L.MaxPooling2D()(h)                                         # (6, 6, 8)
    h = L.Conv2D(16, 3, activation="relu")(h)
    h = L.GlobalAveragePooling2D()(h)
    out = L.Dense(10, activation="softmax")(h)
    m = mt.Model(inp, out)
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(xtr, ytr, epochs=1 if quick else 3, verbose=0)
    return dict(name="cnn", data=f"{source}, {len(xtr)} train / {len(xte)} test", model=m,
                x=xtr, y=ytr, xt=xte, yt=yte, loss="sparse_categorical_crossentropy",
                metric="accuracy", qat_epochs=1)


def outlier_task(quick):
    mt.random.seed(1)
    x, y = make_spirals(400)
    xt, yt = make_spirals(300, seed=1)
    m = mt.Sequential([L.Dense(32, activation="relu", input_shape=[2]),
                       L.Dense(32, activation="relu"), L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=60, verbose=0)
    l1, l2 = m.layers[1], m.layers[2]
    k, b = l1.get_weights()
    k[:, 0], b[0] = 300 * k[:, 0], 300 * b[0]                       # relu(300 z) = 300 relu(z)
    w2, b2 = l2.get_weights()
    w2[0] /= 300
    l1.set_weights([k, b])
    l2.set_weights([w2, b2])
    return dict(name="outlier", data="spiral, 1200 train / 900 test, unit x300", model=m, x=x,
                y=y, xt=xt, yt=yt, loss="sparse_categorical_crossentropy", metric="accuracy",
                qat_epochs=15)


# ---- one row ----------------------------------------------------------------------------------
def metric(task, pred):
    if task["metric"] == "mse":
        err = pred.reshape(len(pred), -1) - task["yt"].reshape(len(pred), -1)
        return float(np.mean(err ** 2))
    return float(np.mean(pred.argmax(-1) == task["yt"]))


def tflm_mismatches(q, x, n):
    if not tflm.available():
        return "n/a"
    xq = q.quantize_input(x[:n])
    ours, theirs = q.predict_int8(xq), tflm.run_tflm(q, xq)
    return f"{int((ours != theirs).sum())}/{ours.size}"


def run(task, n_check):
    m, rep = task["model"], task["x"][:500]
    t0 = time.perf_counter()
    float_metric = metric(task, m.predict(task["xt"]))
    ptq = quantize(m, rep)
    ptq_metric = metric(task, ptq.predict(task["xt"]))
    report = quantization_report(m, ptq, task["xt"][:300])
    float_bytes = 4 * m.count_params()
    tflite_bytes = len(to_tflite(ptq))
    ptq_check = tflm_mismatches(ptq, task["xt"], n_check)

    qat = quantize_aware(m, representative_data=rep)                # fine-tunes m itself
    qat.compile("adam", task["loss"])
    qat.fit(task["x"], task["y"], epochs=task["qat_epochs"], verbose=0)
    q2 = quantize(qat)
    tuned_metric = metric(task, m.predict(task["xt"]))             # the fine-tuned float model
    qat_metric = metric(task, q2.predict(task["xt"]))
    qat_check = tflm_mismatches(q2, task["xt"], n_check)
    return dict(name=task["name"], data=task["data"], metric=task["metric"],
                float=float_metric, ptq=ptq_metric, tuned=tuned_metric, qat=qat_metric,
                qat_epochs=task["qat_epochs"], float_bytes=float_bytes,
                int8_bytes=ptq.weight_bytes(), tflite_bytes=tflite_bytes,
                tflm=f"PTQ {ptq_check}, QAT {qat_check}",
                diverges=report.first_divergent, seconds=time.perf_counter() - t0,
                spread=max((r for r in report.rows if r.kind not in FIXED_OUTPUT),
                           key=lambda r: r.spread))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller data, fewer epochs")
    ap.add_argument("--check", type=int, default=500, help="test samples run in TFLM per model")
    args = ap.parse_args()
    data = mnist(10000 if args.quick else 60000, 2000 if args.quick else 10000)
    tasks = [sine_task(args.quick), mlp_task(args.quick, data), cnn_task(args.quick, data),
             outlier_task(args.quick)]
    rows = [run(t, args.check) for t in tasks]

    print(f"\nTFLM interpreter: {'available' if tflm.available() else 'NOT installed'}")
    head = ("model", "metric", "float", "int8 PTQ", "QAT: float", "QAT: int8", "weights f32",
            "int8", ".tflite", "int8 != TFLM")
    table = [head] + [(r["name"], r["metric"], f"{r['float']:.4f}", f"{r['ptq']:.4f}",
                       f"{r['tuned']:.4f}", f"{r['qat']:.4f} ({r['qat_epochs']} ep)",
                       f"{r['float_bytes']:,}", f"{r['int8_bytes']:,}", f"{r['tflite_bytes']:,}",
                       r["tflm"]) for r in rows]
    width = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, width)))
    print("QAT: float = the fine-tuned float model (QAT trains the original weights); "
          "QAT: int8 = its int8 conversion.\n")
    for r in rows:
        d = r["diverges"]
        where = "no op above 2% of its range" if d is None else \
            f"diverges at {d.name!r} ({d.kind}): {100 * d.rel:.2f}% of its range, {d.lsb:.1f} LSB"
        w = r["spread"]
        print(f"{r['name']:8s} {r['data']}; PTQ {where}; widest channel spread "
              f"{w.spread:.0f}x at {w.name!r}; {r['seconds']:.1f}s")

if __name__ == "__main__":
    main()
