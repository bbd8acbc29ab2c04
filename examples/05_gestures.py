"""Example 5: motion -- physiotherapy exercises and activities from a 6-axis IMU.

A smartwatch's accelerometer and gyroscope (6 channels) record shoulder exercises (seglearn's
watch set: 10 subjects, 7 exercises, 50 Hz). Long recordings are cut into 2-second windows
(sliding, 50% overlap), each channel normalised with statistics of the training windows, and
a 1-D convolutional network classifies each window. 1-D convolution over time is a Conv2D
with (k, 1) kernels on a (time, 1, channels) "image", so the int8 kernels are the usual ones.
The split is by person: the test subjects (9 and 10) are never seen in training, which is
how a wearable meets its users; subject 8 validates. Per-class F1 and the confusion matrix
come from the int8 C's answers; per-subject accuracy shows who the model works for.

The same network then learns BasicMotions (standing, running, walking, badminton; 10 s at
10 Hz, 40 + 40 recordings), where one recording is one window.

    python examples/05_gestures.py [--quick] [--out build/05_gestures]
"""
import os

import numpy as np

import minitiny as mt
from minitiny.reporting.evaluation import evaluate_report
from minitiny.layers import Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D

from common import accuracy, arguments, deploy, have_plots, print_table, result, step

WINDOW, STEP = 100, 50           # 2 s windows every 1 s at 50 Hz


def conv1d_net(steps, channels, n_classes):
    """Conv1D as Conv2D with (k, 1) kernels on (time, 1, channels)."""
    model = mt.Sequential([
        Conv2D(16, (5, 1), activation="relu", input_shape=(steps, 1, channels)),  # (T-4, 1, 16)
        MaxPooling2D((2, 1)),
        Conv2D(32, (5, 1), activation="relu"),
        MaxPooling2D((2, 1)),
        Conv2D(32, (5, 1), activation="relu"),
        GlobalAveragePooling2D(),                    # the motion repeats: average over time
        Dense(n_classes, activation="softmax")])
    model.compile(optimizer=mt.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def windows(recordings, labels, subjects):
    """Cut each (T_i, 6) recording into windows -> (N, WINDOW, 1, 6), labels, subjects, recording id."""
    xs, ys, ss, rs = [], [], [], []
    for i, (rec, y, s) in enumerate(zip(recordings, labels, subjects)):
        w = mt.data.sliding_windows(rec, WINDOW, STEP)                    # (n, WINDOW, 6)
        xs.append(w)
        ys += [y] * len(w)
        ss += [s] * len(w)
        rs += [i] * len(w)
    return (np.concatenate(xs)[:, :, None, :], np.array(ys), np.array(ss), np.array(rs))


def main(argv=None):
    args = arguments("05_gestures", __doc__.splitlines()[0], argv)
    epochs = 4 if args.quick else 25
    rows = []

    # ---- 1. Goal ----------------------------------------------------------------------
    step(1, "Goal")
    print("Recognise which shoulder exercise a person is doing from 2 s of wrist motion, for people "
          "the model has never seen.")

    # ---- 2. Data: split by subject, window, normalise ----------------------------------------
    step(2, "Data: smartwatch exercises (seglearn), split by subject")
    (x_tr, y_tr, s_tr), (x_te, y_te, s_te) = mt.datasets.load_watch(ragged=True, return_groups=True)
    names = mt.datasets.info("watch").classes
    val = s_tr == 8
    train = [(x, y, s) for x, y, s, v in zip(x_tr, y_tr, s_tr, val) if not v]
    valid = [(x, y, s) for x, y, s, v in zip(x_tr, y_tr, s_tr, val) if v]
    if args.quick:
        train = train[::2]
    x_train, y_train, _, _ = windows(*zip(*train))
    x_val, y_val, _, _ = windows(*zip(*valid))
    x_test, y_test, subject_test, recording_test = windows(x_te, y_te, s_te)
    norm = mt.data.Normalizer().fit(x_train.reshape(-1, 6))           # training windows only
    x_train, x_val, x_test = (norm.transform(x) for x in (x_train, x_val, x_test))
    print(f"windows of {WINDOW} samples (2 s) every {STEP}: train {len(x_train):,} "
          f"({len(train)} recordings, subjects 1-7), validation {len(x_val):,} (subject 8), "
          f"test {len(x_test):,} (subjects 9, 10); channels normalised: offset "
          f"{np.round(norm.offset, 2).tolist()}, scale {np.round(norm.scale, 2).tolist()}")

    # ---- 3. Model ------------------------------------------------------------------------------
    step(3, "Model: 1-D CNN")
    model = conv1d_net(WINDOW, 6, len(names))
    model.summary()

    # ---- 4. Training -----------------------------------------------------------------------------
    step(4, f"Training: {epochs} epochs")
    h = model.fit(x_train, y_train, epochs=epochs, batch_size=32, validation_data=(x_val, y_val),
                  verbose=0 if args.quick else 1)

    # ---- 5-6. int8 C -------------------------------------------------------------------------------
    step(5, "Conversion to int8")
    step(6, "Inference in C")
    d = deploy(model, x_train[:500], x_test, "watch_cnn", args)

    # ---- 7. Evaluation: per class, per subject, per recording ---------------------------------------
    step(7, "Evaluation: per-class F1 and the confusion matrix (int8 C, test subjects)")
    report = evaluate_report(y=y_test, y_score=d.out, class_names=names, groups=subject_test,
                             group_name="subject", name="int8 C", compare={"float": model.predict(x_test)})
    print(report)
    votes = [np.bincount(d.out[recording_test == r].argmax(1), minlength=len(names)).argmax()
             for r in np.unique(recording_test)]
    truth = [y_test[recording_test == r][0] for r in np.unique(recording_test)]
    per_recording = float(np.mean(np.array(votes) == np.array(truth)))
    print(f"whole recordings (majority vote of their windows): {per_recording:.4f} of {len(truth)}")
    if have_plots():
        from minitiny.reporting import plots
        plots.plot_confusion_matrix(report.confusion, os.path.join(args.out, "watch_confusion.png"), names,
                                    title="Exercises, int8 C, unseen subjects")
    macro_f1 = report.overall["macro_f1"]
    rows.append(result("motion: smartwatch exercises, 1-D CNN", "accuracy", model.evaluate(x_test, y_test)[1],
                       accuracy(d.out, y_test), d, len(y_test),
                       notes=f"windows of unseen subjects 9, 10; macro F1 {macro_f1:.4f}; whole recordings "
                             f"{per_recording:.4f}; validation accuracy {h.history['val_accuracy'][-1]:.4f}"))

    # ==== BasicMotions: one recording = one window ====================================================
    step(2, "Data: BasicMotions (aeon)")
    (xb, yb), (xb_test, yb_test) = mt.datasets.load_basic_motions()
    bm_names = mt.datasets.info("basic_motions").classes
    norm_b = mt.data.Normalizer().fit(xb.reshape(-1, 6))
    xb, xb_test = norm_b.transform(xb)[:, :, None, :], norm_b.transform(xb_test)[:, :, None, :]  # (40, 100, 1, 6)
    print(f"train {len(xb)}, test {len(xb_test)} recordings of 100 samples (10 s at 10 Hz); "
          f"too few to spare a validation set: the epochs are fixed in advance")
    mt.random.seed(args.seed)
    model_b = conv1d_net(100, 6, len(bm_names))
    step(4, f"Training: {15 if args.quick else 60} epochs")
    model_b.fit(xb, yb, epochs=15 if args.quick else 60, batch_size=8, verbose=0)
    step(6, "Inference in C")
    d_b = deploy(model_b, xb, xb_test, "basic_motions_cnn", args)
    report_b = evaluate_report(y=yb_test, y_score=d_b.out, class_names=bm_names, name="int8 C")
    print("per class F1: " + ", ".join(f"{c} {m['f1']:.3f}" for c, m in report_b.per_class.items()))
    rows.append(result("motion: BasicMotions, 1-D CNN", "accuracy", model_b.evaluate(xb_test, yb_test)[1],
                       accuracy(d_b.out, yb_test), d_b, len(yb_test),
                       notes=f"macro F1 {report_b.overall['macro_f1']:.4f}"))
    return print_table(rows, args)


if __name__ == "__main__":
    main()
