"""Training speed: one epoch of minitiny against PyTorch (and Keras, when installed), CPU.

Three models, batch 32, on random data (the numbers do not matter for speed). The first
two with Adam and sparse categorical cross-entropy on MNIST's shape (60,000 x 28 x 28):

    mlp  Flatten -> Dense(20, relu) -> Dense(10, softmax)
    cnn  Conv2D(8, 3x3, relu) -> MaxPool(2) -> Conv2D(16, 3x3, relu) -> MaxPool(2)
         -> Flatten -> Dense(10)

and the course's image CNN (horses or humans) with RMSprop(0.001) and binary
cross-entropy on 1,000 images of 150 x 150 x 3 (--image-samples):

    image_cnn  Conv2D(16, 3x3, relu) -> MaxPool(2) -> Conv2D(32, 3x3, relu) -> MaxPool(2)
               -> Conv2D(64, 3x3, relu) -> MaxPool(2) -> Flatten -> Dense(512, relu)
               -> Dense(1, sigmoid)

Every framework trains the same model for `--epochs` epochs in the same process, on the same
data, with as many threads as the machine has cores, taking turns epoch by epoch (so a
machine that gets busier slows all of them alike); the table shows the fastest epoch (the
first one also pays for warm-up) and the ratio to PyTorch. Targets: the mlp faster than
PyTorch, the cnn within 1.5x of it.

    python bench/train_speed.py                 # all three models, 2 epochs each
    python bench/train_speed.py --only mlp --profile     # + cProfile of minitiny's epoch

On a busy machine compare CPU time with one thread everywhere:

    OPENBLAS_NUM_THREADS=1 python bench/train_speed.py --threads 1 --cpu-time

Some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which pin NumPy's BLAS to a kernel
that may not suit the CPU. For a benchmark, run without them:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/train_speed.py
"""
import argparse
import cProfile
import importlib.metadata
import io
import os
import platform
import pstats
import time

import numpy as np

import minitiny as mt

BATCH = 32
clock = time.perf_counter          # wall time; --cpu-time switches to time.process_time


# ---- minitiny -----------------------------------------------------------------------------
def minitiny_model(kind):
    L = mt.layers
    if kind == "mlp":
        layers = [L.Flatten(input_shape=(28, 28)), L.Dense(20, activation="relu"),
                  L.Dense(10, activation="softmax")]
        loss = "sparse_categorical_crossentropy"
    elif kind == "image_cnn":
        layers = [L.Conv2D(16, 3, activation="relu", input_shape=(150, 150, 3)),
                  L.MaxPooling2D(2), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                  L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                  L.Dense(512, activation="relu"), L.Dense(1, activation="sigmoid")]
        model = mt.Sequential(layers)
        model.compile(optimizer=mt.optimizers.RMSprop(learning_rate=0.001),
                      loss="binary_crossentropy")
        return model
    else:
        layers = [L.Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),
                  L.MaxPooling2D(2), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(2),
                  L.Flatten(), L.Dense(10)]
        loss = mt.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = mt.Sequential(layers)
    model.compile(optimizer="adam", loss=loss)
    return model


class EpochTimer(mt.callbacks.Callback):
    """Wall time of each epoch, from its first batch to its end (as Keras prints it)."""

    def __init__(self):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = clock()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(clock() - self._t0)


def time_minitiny(kind, x, y, epochs, profile=False):
    """Yields the time of each epoch (one fit call each, so each also pays fit's set-up)."""
    mt.random.seed(0)
    model = minitiny_model(kind)
    timer = EpochTimer()
    for _ in range(epochs):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[timer])
        yield timer.times[-1]
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
        print(f"\ncProfile of one minitiny {kind} epoch (fit, {len(x) // BATCH} steps; "
              "profiling itself slows it down):")
        print("\n".join(out.getvalue().splitlines()[4:]))


# ---- PyTorch ------------------------------------------------------------------------------
def time_torch(kind, x, y, epochs, threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if kind == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 20), nn.ReLU(), nn.Linear(20, 10))
        xt = torch.from_numpy(x)
    elif kind == "image_cnn":
        model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(64 * 17 * 17, 512), nn.ReLU(), nn.Linear(512, 1))
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    else:      # NCHW, PyTorch's native layout
        model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(400, 10))
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    if kind == "image_cnn":                    # Keras' RMSprop defaults: rho 0.9, eps 1e-7
        yt = torch.from_numpy(y.astype(np.float32)[:, None])
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        loss_fn = nn.BCEWithLogitsLoss()       # sigmoid + cross-entropy on the logit, fused
    else:
        yt = torch.from_numpy(y.astype(np.int64))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()        # log_softmax + NLL on the logits, fused
    for _ in range(epochs):
        t0 = clock()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), BATCH):
            idx = order[start:start + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        yield clock() - t0


# ---- Keras (optional) ---------------------------------------------------------------------
def time_keras(kind, x, y, epochs):
    import keras
    from keras import layers as L
    if kind == "mlp":
        model = keras.Sequential([keras.Input((28, 28)), L.Flatten(),
                                  L.Dense(20, activation="relu"),
                                  L.Dense(10, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    elif kind == "image_cnn":
        model = keras.Sequential([keras.Input((150, 150, 3)),
                                  L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Flatten(), L.Dense(512, activation="relu"),
                                  L.Dense(1, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001),
                      loss="binary_crossentropy")
        loss = None
    else:
        model = keras.Sequential([keras.Input((28, 28, 1)),
                                  L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Flatten(), L.Dense(10)])
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if loss is not None:
        model.compile(optimizer="adam", loss=loss)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = clock()

        def on_epoch_end(self, epoch, logs=None):
            times.append(clock() - self.t0)
    for _ in range(epochs):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[Timer()])
        yield times[-1]


def version(dist):
    """The installed version of a package, without importing it (None if absent)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["mlp", "cnn", "image_cnn"], help="run one model only")
    ap.add_argument("--samples", type=int, default=60000, help="training examples (60000)")
    ap.add_argument("--image-samples", type=int, default=1000,
                    help="150 x 150 x 3 images for image_cnn (1000)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per framework (best counts)")
    ap.add_argument("--profile", action="store_true", help="cProfile one minitiny epoch")
    ap.add_argument("--cpu-time", action="store_true",
                    help="measure CPU seconds of the process instead of wall time: steadier "
                         "on a busy machine, fair only with one thread everywhere")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="PyTorch threads (default: all cores; NumPy's BLAS reads "
                         "OPENBLAS_NUM_THREADS instead)")
    args = ap.parse_args()
    if args.cpu_time:
        global clock
        clock = time.process_time

    rng = np.random.default_rng(0)
    kinds = ["mlp", "cnn", "image_cnn"] if args.only is None else [args.only]
    data = {}
    if {"mlp", "cnn"} & set(kinds):
        x = rng.random((args.samples, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, args.samples)
        data.update(mlp=(x, y), cnn=(x[..., None], y))       # (N, 28, 28, 1) for the cnn
    if "image_cnn" in kinds:
        data["image_cnn"] = (rng.random((args.image_samples, 150, 150, 3), dtype=np.float32),
                             rng.integers(0, 2, args.image_samples))
    frameworks = [("minitiny", lambda k, xs, y: time_minitiny(k, xs, y, args.epochs,
                                                               args.profile))]
    if version("torch"):
        frameworks.append((f"PyTorch {version('torch')}",
                           lambda k, xs, y: time_torch(k, xs, y, args.epochs, args.threads)))
    if version("keras") and (version("tensorflow") or version("torch")):
        # Keras 3 runs on a backend: TensorFlow's when installed, else PyTorch's
        os.environ.setdefault("KERAS_BACKEND", "tensorflow" if version("tensorflow") else "torch")
        frameworks.append((f"Keras {version('keras')}",
                           lambda k, xs, y: time_keras(k, xs, y, args.epochs)))

    blas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
          f"(PyTorch threads = {args.threads}), Python {platform.python_version()}, "
          f"NumPy {np.__version__}, {args.samples} samples ({args.image_samples} for "
          f"image_cnn), batch {BATCH}, "
          f"best of {args.epochs} epochs, {'CPU' if args.cpu_time else 'wall'} time"
          + (f", env {blas}" if blas else ""))

    rows = []
    for kind in kinds:
        xs, y = data[kind]
        runs = [(name, run(kind, xs, y), []) for name, run in frameworks]
        for _ in range(args.epochs):                     # the frameworks take turns
            for name, epochs, times in runs:
                times.append(next(epochs))
        for name, epochs, times in runs:
            next(epochs, None)                           # the rest: minitiny's --profile
            rows.append((kind, name, min(times), times[0]))
            print(f"  {kind} {name}: " + ", ".join(f"{t:.2f}s" for t in times), flush=True)

    print(f"\n{'model':10}{'framework':18}{'s/epoch':>9}{'1st epoch':>11}{'vs PyTorch':>12}")
    for kind, name, best, first in rows:
        ref = [b for k, n, b, _ in rows if k == kind and n.startswith("PyTorch")]
        ratio = f"{best / ref[0]:.2f}x" if ref else "-"
        print(f"{kind:10}{name:18}{best:9.2f}{first:11.2f}{ratio:>12}")


if __name__ == "__main__":
    main()
