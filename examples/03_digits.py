"""Example 3: images of clothes and digits -- an MLP, a CNN for a Nano 33 BLE, and overfitting.

The course's classifier: Flatten -> Dense(20, relu) -> Dense(10, softmax), trained with
Adam for 20 epochs on Fashion-MNIST (the course reports about 86% validation accuracy)
and on MNIST; then a small CNN (Conv2D / MaxPooling2D / Dense) sized for an Arduino Nano
33 BLE Sense (1 MB flash, 256 KB RAM), linked against that budget; the confusion matrix of
the int8 C; and the overfitting lesson: a wide network on few images, with and without
early stopping, judged on validation and finally on test data.

The 60,000 training images are split 50,000 train + 10,000 validation; the 10,000 test
images are used once, for the numbers in the table.

    python examples/03_digits.py [--quick] [--out build/03_digits]
"""
import os

import numpy as np

import minitiny as mt
from minitiny.callbacks import EarlyStopping
from minitiny.reporting.evaluation import confusion_matrix
from minitiny.layers import Conv2D, Dense, Flatten, MaxPooling2D

from common import accuracy, arguments, budget_text, deploy, have_plots, print_table, result, step


def load(name, quick):
    """-> (x_train, y_train), (x_val, y_val), (x_test, y_test), class names; x in [0, 1]."""
    loader = {"mnist": mt.datasets.load_mnist, "fashion_mnist": mt.datasets.load_fashion_mnist}[name]
    (x, y), (x_test, y_test) = loader()
    x, x_test = x.astype(np.float32) / 255, x_test.astype(np.float32) / 255   # (N, 28, 28)
    y, y_test = y.astype(np.int64), y_test.astype(np.int64)
    # the last 10,000 training images validate; the test images stay unseen until step 7
    train, val, test = np.arange(50000), np.arange(50000, 60000), np.arange(10000)
    if quick:   # a seeded random subset: MNIST's test set is not shuffled (its halves differ)
        rng = np.random.default_rng(0)
        train, val, test = (rng.choice(ix, n, replace=False) for ix, n in ((train, 6000), (val, 2000), (test, 2000)))
    parts = (x[train], y[train]), (x[val], y[val]), (x_test[test], y_test[test])
    return parts + (mt.datasets.info(name).classes,)


def course_mlp():
    model = mt.Sequential([Flatten(input_shape=(28, 28)),
                           Dense(20, activation="relu"),
                           Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def small_cnn():
    """~5,000 parameters, ~190,000 MACs: a few KB of flash and of RAM on the board."""
    model = mt.Sequential([Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),   # (26, 26, 8)
                           MaxPooling2D(),                                              # (13, 13, 8)
                           Conv2D(16, 3, activation="relu"),                            # (11, 11, 16)
                           MaxPooling2D(),                                              # (5, 5, 16)
                           Flatten(),                                                   # (400,)
                           Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def print_confusion(cm, names):
    short = [n[:7] for n in names]
    print("rows: true class, columns: predicted (int8 C on the test set)")
    print(" " * 12 + " ".join(f"{s:>7s}" for s in short))
    for name, row in zip(names, cm):
        print(f"{name[:11]:11s} " + " ".join(f"{int(v):7d}" for v in row))


def main(argv=None):
    args = arguments("03_digits", __doc__.splitlines()[0], argv)
    epochs = 3 if args.quick else 20
    rows = []

    # ---- 1. Goal ----------------------------------------------------------------------
    step(1, "Goal")
    print("Classify 28x28 grey images into 10 classes, small enough for a microcontroller.")

    for dataset in ("fashion_mnist", "mnist"):
        # ---- 2. Data ------------------------------------------------------------------
        step(2, f"Data: {dataset}")
        (x_train, y_train), (x_val, y_val), (x_test, y_test), names = load(dataset, args.quick)
        print(f"train {len(x_train):,}, validation {len(x_val):,}, test {len(x_test):,}; "
              f"pixels scaled to [0, 1]; classes: {', '.join(names)}")

        # ---- 3. Model: the course's MLP -------------------------------------------------
        step(3, "Model: Flatten -> Dense(20, relu) -> Dense(10, softmax)")
        model = course_mlp()
        model.summary()

        # ---- 4. Training ----------------------------------------------------------------
        step(4, f"Training: Adam, {epochs} epochs")
        history = model.fit(x_train, y_train, epochs=epochs, batch_size=32,
                            validation_data=(x_val, y_val), verbose=0 if args.quick else 1)
        val_acc = history.history["val_accuracy"][-1]
        print(f"validation accuracy {val_acc:.4f}" + ("  (the course: about 0.86)" if dataset == "fashion_mnist" else ""))

        # ---- 5-6. int8 C ------------------------------------------------------------------
        step(5, "Conversion to int8")
        step(6, "Inference in C")
        d = deploy(model, x_train[:500], x_test, f"{dataset}_mlp", args)
        rows.append(result(f"digits: {dataset} MLP 784-20-10", "accuracy", model.evaluate(x_test, y_test)[1],
                           accuracy(d.out, y_test), d, len(y_test),
                           notes=f"validation accuracy {val_acc:.4f} after {epochs} epochs"))

    # ---- A CNN for the Arduino Nano 33 BLE Sense (Fashion-MNIST) -----------------------------
    step(3, "Model: a small CNN for the Nano 33 BLE Sense (Fashion-MNIST)")
    (x_train, y_train), (x_val, y_val), (x_test, y_test), names = load("fashion_mnist", args.quick)
    x_train, x_val, x_test = x_train[..., None], x_val[..., None], x_test[..., None]  # (N, 28, 28, 1)
    cnn = small_cnn()
    cnn.summary(board="nano33ble")
    step(4, f"Training the CNN: Adam, {2 if args.quick else 8} epochs, batch 64")
    history = cnn.fit(x_train, y_train, epochs=2 if args.quick else 8, batch_size=64,
                      validation_data=(x_val, y_val), verbose=0 if args.quick else 1)
    step(6, "The CNN in C, linked against the Nano 33 BLE's 1 MB flash and 256 KB RAM")
    d = deploy(cnn, x_train[:500], x_test, "fashion_cnn", args, board="nano33ble")
    rows.append(result("digits: fashion_mnist CNN (nano33ble)", "accuracy", cnn.evaluate(x_test, y_test)[1],
                       accuracy(d.out, y_test), d, len(y_test),
                       notes=f"validation accuracy {history.history['val_accuracy'][-1]:.4f}; on the Nano 33 "
                             f"BLE: {budget_text(d, 'nano33ble')}"))

    # ---- 7. Evaluation: which clothes does the int8 CNN confuse? -----------------------------
    step(7, "Evaluation: the confusion matrix of the int8 CNN")
    cm = confusion_matrix(y_test, d.out.argmax(axis=1), 10)
    print_confusion(cm, names)
    if have_plots():
        from minitiny.reporting import plots
        plots.plot_confusion_matrix(cm, os.path.join(args.out, "fashion_cnn_confusion.png"), names,
                                    title="Fashion-MNIST, int8 CNN (generated C)")

    # ---- The overfitting lesson ------------------------------------------------------------------
    step(4, "Overfitting: a wide MLP on few images, with and without early stopping")
    n_small, long_run = (500, 15) if args.quick else (2000, 60)
    x_small, y_small = x_train[:n_small, ..., 0], y_train[:n_small]
    x_val2, x_test2 = x_val[..., 0], x_test[..., 0]
    print(f"Dense(128) on only {n_small} images for up to {long_run} epochs; the validation set "
          f"({len(y_val):,} images) watches; the test set judges once at the end.")
    print(f"{'':22s} {'epochs':>6s} {'train acc':>9s} {'val acc':>8s} {'val loss':>8s} {'test acc':>8s}")
    runs = {}
    for label, callbacks in (("no early stopping", None),
                             ("early stopping", [EarlyStopping(monitor="val_loss", patience=3,
                                                               restore_best_weights=True)])):
        mt.random.seed(args.seed)                     # the same start for both runs
        wide = mt.Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation="relu"),
                              Dense(10, activation="softmax")])
        wide.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        h = wide.fit(x_small, y_small, epochs=long_run, batch_size=32, validation_data=(x_val2, y_val),
                     callbacks=callbacks, verbose=0)
        r = runs[label] = {"epochs": len(h.history["loss"]), "train": wide.evaluate(x_small, y_small)[1],
                           "test": wide.evaluate(x_test2, y_test)[1], "history": h.history}
        r["val_loss"], r["val"] = wide.evaluate(x_val2, y_val)
        print(f"{label:22s} {r['epochs']:6d} {r['train']:9.4f} {r['val']:8.4f} {r['val_loss']:8.4f} {r['test']:8.4f}")
        if have_plots():
            from minitiny.reporting import plots
            plots.plot_history(h, os.path.join(args.out, f"overfitting_{'early' if callbacks else 'long'}.png"),
                               title=label)
    # What the numbers say (printed from them, whatever they turn out to be):
    long, early = runs["no early stopping"], runs["early stopping"]
    val_losses = long["history"]["val_loss"]
    best = int(np.argmin(val_losses))
    lesson = (f"overfitting: Dense(128) on {n_small:,} images, {long['epochs']} epochs: train accuracy "
              f"{long['train']:.3f}, validation {long['val']:.3f}, test {long['test']:.3f}; validation loss "
              f"lowest at epoch {best + 1} ({val_losses[best]:.3f}), {val_losses[-1]:.3f} at the end; early "
              f"stopping (validation loss, patience 3) stopped after {early['epochs']} epochs: train "
              f"{early['train']:.3f}, validation {early['val']:.3f}, test {early['test']:.3f}")
    print(f"The gap between training accuracy ({long['train']:.3f}) and validation accuracy "
          f"({long['val']:.3f}) is overfitting: the model learns these {n_small:,} images, not clothes. "
          f"Its validation loss was lowest at epoch {best + 1} and then rose: it grows confident in its "
          f"mistakes, even while its accuracy {'still creeps up' if long['val'] > early['val'] else 'stalls'}. "
          f"Early stopping (patience 3) stopped after {early['epochs']} epochs and kept its best epoch's "
          f"weights; the test set, used once, says {'it cost' if early['test'] < long['test'] else 'it gained'} "
          f"{abs(early['test'] - long['test']):.3f} of test accuracy here, for a model that is less "
          f"over-confident (validation loss {early['val_loss']:.3f} instead of {long['val_loss']:.3f}).")
    rows[0].notes += "; " + lesson

    return print_table(rows, args)


if __name__ == "__main__":
    main()
