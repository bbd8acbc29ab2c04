"""Example 6: anomaly detection -- an autoencoder that knows only what normal looks like.

Faults are rare and varied, so the model never sees one in training: a dense autoencoder
learns to squeeze normal examples through a narrow middle layer and rebuild them. What it
rebuilds badly is unlike anything it learned: the reconstruction error is the anomaly
score. The alarm threshold is chosen on validation data (normal only, as in the field) for
a target false-positive rate; then the held-out test set, with its anomalies, measures the
ROC AUC (threshold-free) and, at the threshold, precision, recall and the false-positive rate.

Two data sets:
  * synthetic machine vibration (1.024 s at 1 kHz): normal machines vs bearing defects,
    imbalance and sensor drift; features: log energy in 32 frequency bands of 15.6 Hz.
  * ACSF1 appliance power (one day of one appliance per trace, z-normalised): appliance
    category 0 is "normal", the other nine are anomalies; only 10 normal traces to learn
    from (7 train, 3 validate); features: 16 quantiles (the trace's level distribution,
    indifferent to when things happen) and the log power in 15 log-spaced frequency bands.
The features are computed in NumPy (float); the autoencoder runs as int8 C. The int8 score
is computed from the C's output and the int8 input it saw, as the device would.

    python examples/06_anomaly.py [--quick] [--out build/06_anomaly]
"""
import os

import numpy as np

import minitiny as mt
from minitiny import codegen
from minitiny.reporting.evaluation import roc_auc
from minitiny.layers import Dense

from common import arguments, deploy, have_plots, print_table, result, step


def vibration_features(x, bands=32):
    """(N, 1024, 1) traces -> (N, 32) log10 energy in equal bands of the Hann-windowed
    spectrum (band 0 holds DC and the slowest changes: where drift shows)."""
    x = x[..., 0]
    power = np.abs(np.fft.rfft(x * np.hanning(x.shape[1]), axis=1))[:, :x.shape[1] // 2] ** 2
    return np.log10(power.reshape(len(x), bands, -1).sum(axis=2) + 1e-6).astype(np.float32)


def power_trace_features(x):
    """(N, T, 1) z-normalised power traces -> (N, 31): 16 quantiles and the log power in 15
    log-spaced frequency bands (the daily rhythm, the on/off cycles)."""
    x = x[..., 0]
    quantiles = np.quantile(x, np.linspace(0.02, 0.98, 16), axis=1).T                 # (N, 16)
    power = np.abs(np.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1))[:, 1:] ** 2  # (N, T/2)
    edges = np.unique(np.geomspace(1, power.shape[1], 17).astype(int))
    bands = np.stack([power[:, lo - 1:hi - 1].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
    return np.concatenate([quantiles, np.log10(bands + 1e-6)], axis=1).astype(np.float32)


def autoencoder(n_features, widths):
    """Dense layers narrowing to the bottleneck and back: widths (16, 4) -> n-16-4-16-n."""
    layers = [Dense(widths[0], activation="relu", input_shape=[n_features])]
    layers += [Dense(w, activation="relu") for w in widths[1:]]
    layers += [Dense(w, activation="relu") for w in widths[-2::-1]]
    layers += [Dense(n_features)]                                  # linear: rebuild the features
    model = mt.Sequential(layers)
    model.compile(optimizer="adam", loss="mean_squared_error")
    return model


def scores_float(model, x):
    return np.mean((model.predict(x) - x) ** 2, axis=1)


def scores_int8(qmodel, c_model, x, against_int8_input=False):
    """The device's score: the C's int8 output, in real units, against the features.

    The device computed the features itself, so it compares the reconstruction with them,
    not with their int8 copy: the int8 input covers the range of the normal calibration
    data, an anomaly far outside it clips, and a score against the clipped copy would hide
    exactly the strongest anomalies (against_int8_input=True shows how much)."""
    x_int8 = qmodel.quantize_input(x)
    reference = qmodel.input.dequantize(x_int8) if against_int8_input else x
    return np.mean((qmodel.dequantize_output(c_model(x_int8)) - reference) ** 2, axis=1)


def at_threshold(y, s, threshold):
    """Precision, recall and false-positive rate of 'anomaly when score > threshold'."""
    alarm = s > threshold
    tp, fp = int(np.sum(alarm & (y == 1))), int(np.sum(alarm & (y == 0)))
    fn, tn = int(np.sum(~alarm & (y == 1))), int(np.sum(~alarm & (y == 0)))
    return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn), "fpr": fp / max(1, fp + tn),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def run(name, title, x_train, x_val, x_test, y_test, widths, epochs, target_fpr, args, groups=None,
        group_names=None):
    """Steps 3-7 for one data set; returns its row of the results table."""
    step(3, f"Model: autoencoder {x_train.shape[1]}-{'-'.join(map(str, widths))}-...-{x_train.shape[1]}")
    model = autoencoder(x_train.shape[1], widths)
    model.summary()

    step(4, f"Training on normal data only: {epochs} epochs")
    h = model.fit(x_train, x_train, epochs=epochs, batch_size=16, validation_data=(x_val, x_val), verbose=0)
    print(f"reconstruction error: train {h.history['loss'][-1]:.4f}, validation {h.history['val_loss'][-1]:.4f}")

    step(5, "Conversion to int8")
    step(6, "Inference in C")
    d = deploy(model, x_train, x_test, name, args)
    c_model = codegen.load(d.dir)

    step(7, f"Evaluation: threshold for {target_fpr:.0%} false alarms on validation, then the test set")
    rows = {}
    for kind, score in (("float", lambda x: scores_float(model, x)),
                        ("int8 C", lambda x: scores_int8(d.qmodel, c_model, x))):
        s_val, s_test = score(x_val), score(x_test)
        threshold = float(np.quantile(s_val, 1 - target_fpr, method="higher"))   # validation, normal only
        m = at_threshold(y_test, s_test, threshold)
        m.update(auc=roc_auc(y_test, s_test), threshold=threshold, scores=s_test)
        rows[kind] = m
        print(f"{kind:7s} ROC AUC {m['auc']:.4f}; threshold {threshold:.4g}: precision {m['precision']:.3f}, "
              f"recall {m['recall']:.3f} ({m['tp']}/{m['tp'] + m['fn']} anomalies), false-positive rate "
              f"{m['fpr']:.3f} ({m['fp']}/{m['fp'] + m['tn']} normal)")
    clipped = roc_auc(y_test, scores_int8(d.qmodel, c_model, x_test, against_int8_input=True))
    print(f"(int8 C scored against its clipped int8 input instead of the features: ROC AUC {clipped:.4f})")
    if groups is not None:
        s = rows["int8 C"]["scores"]
        for g in np.unique(groups[y_test == 1]):
            found = s[groups == g] > rows["int8 C"]["threshold"]
            print(f"  {group_names[g]:10s} found {int(found.sum())}/{len(found)}")
    if have_plots():
        from minitiny.reporting import plots
        plots.plot_roc(y_test, {k: v["scores"] for k, v in rows.items()},
                       os.path.join(args.out, f"{name}_roc.png"), title=f"{title}: ROC")
    f, q = rows["float"], rows["int8 C"]
    return result(title, "ROC AUC", f["auc"], q["auc"], d, len(y_test),
                  notes=f"int8 at the validation threshold: precision {q['precision']:.3f}, recall "
                        f"{q['recall']:.3f}, FPR {q['fpr']:.3f} ({q['fp']}/{q['fp'] + q['tn']}); float: "
                        f"precision {f['precision']:.3f}, recall {f['recall']:.3f}, FPR {f['fpr']:.3f}")


def main(argv=None):
    args = arguments("06_anomaly", __doc__.splitlines()[0], argv)
    rows = []

    # ---- 1. Goal ----------------------------------------------------------------------
    step(1, "Goal")
    print("Raise an alarm on machine states never seen before, with few false alarms.")

    # ---- 2. Data: synthetic vibration ---------------------------------------------------------
    step(2, "Data: synthetic machine vibration")
    n_train = 100 if args.quick else 200
    (x_tr, _), (x_te, y_te, g_te) = (lambda p: (p[0][:2], p[1]))(
        mt.datasets.load_vibration_anomaly(n_train=n_train, seed=args.seed, return_groups=True))
    f_tr, f_te = vibration_features(x_tr), vibration_features(x_te)
    n_fit = int(0.8 * len(f_tr))                          # 80% train, 20% validation (normal only)
    norm = mt.data.Normalizer().fit(f_tr[:n_fit])
    x_train, x_val, x_test = norm.transform(f_tr[:n_fit]), norm.transform(f_tr[n_fit:]), norm.transform(f_te)
    print(f"normal traces: {len(x_train)} train, {len(x_val)} validation; test: {int(np.sum(y_te == 0))} normal "
          f"+ {int(np.sum(y_te == 1))} faults (bearing, imbalance, drift); 32 log band energies each")
    rows.append(run("vibration_ae", "anomaly: vibration, dense autoencoder", x_train, x_val, x_test, y_te,
                    (16, 4), 60 if args.quick else 200, 0.05, args, g_te, mt.datasets.VIBRATION_KINDS))

    # ---- 2. Data: ACSF1, appliance 0 normal ----------------------------------------------------------
    step(2, "Data: ACSF1 appliance power (category 0 normal)")
    (a_tr, _), (a_te, y_a) = mt.datasets.load_acsf1_anomaly(normal_class=0)
    f_tr, f_te = power_trace_features(a_tr), power_trace_features(a_te)
    norm = mt.data.Normalizer().fit(f_tr[:7])
    x_train, x_val, x_test = norm.transform(f_tr[:7]), norm.transform(f_tr[7:]), norm.transform(f_te)
    print(f"normal traces: 7 train, 3 validation; test: {int(np.sum(y_a == 0))} normal + {int(np.sum(y_a == 1))} "
          f"of the nine other appliances; with 3 validation traces the threshold is the highest of their scores")
    mt.random.seed(args.seed)
    rows.append(run("acsf1_ae", "anomaly: ACSF1 power, dense autoencoder", x_train, x_val, x_test, y_a,
                    (8,), 150 if args.quick else 300, 0.0, args))
    if not args.quick:
        aucs = []
        for normal in range(10):      # how much depends on which appliance is "normal"? (float)
            mt.random.seed(args.seed)
            (a_tr, _), (a_te, y_a) = mt.datasets.load_acsf1_anomaly(normal_class=normal)
            f_tr, f_te = power_trace_features(a_tr), power_trace_features(a_te)
            norm = mt.data.Normalizer().fit(f_tr[:7])
            model = autoencoder(f_tr.shape[1], (8,))
            model.fit(norm.transform(f_tr[:7]), norm.transform(f_tr[:7]), epochs=300, batch_size=16, verbose=0)
            aucs.append(roc_auc(y_a, scores_float(model, norm.transform(f_te))))
        print("ROC AUC (float) with each appliance category as the normal one: "
              + ", ".join(f"{a:.3f}" for a in aucs) + f"; mean {np.mean(aucs):.3f}")
        rows[-1].notes += f"; float AUC over the 10 choices of normal appliance: mean {np.mean(aucs):.3f}, " \
                          f"min {np.min(aucs):.3f}"
    return print_table(rows, args)


if __name__ == "__main__":
    main()
