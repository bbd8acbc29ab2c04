"""ReduceLROnPlateau, LearningRateScheduler, LambdaCallback and CSVLogger: each against a
hand-derived oracle (the learning-rate sequence Keras' rules give for a scripted series of
losses; training epoch by epoch with the scheduled rate set by hand; the history itself
for the CSV file)."""
import csv

import numpy as np
import pytest

import minitiny as mt
from minitiny import callbacks as C


class FakeModel:
    """Just what the learning-rate callbacks touch: an optimizer and stop_training."""

    def __init__(self, lr=1.0):
        self.optimizer, self.stop_training = mt.optimizers.SGD(lr), False


def drive(cb, losses, lr=1.0):
    """Run `cb` over epochs whose val_loss is `losses`; the learning rate after each epoch
    and the logs as the callback left them."""
    model = FakeModel(lr)
    cb.set_model(model)
    cb.on_train_begin()
    rates, all_logs = [], []
    for epoch, value in enumerate(losses):
        cb.on_epoch_begin(epoch)
        logs = {"val_loss": value}
        cb.on_epoch_end(epoch, logs)
        rates.append(model.optimizer.learning_rate)
        all_logs.append(logs)
    return rates, all_logs


def test_reduce_lr_on_plateau_follows_keras_rules():
    # patience 2: two epochs without an improvement of more than min_delta=0.1 -> lr * 0.5;
    # cooldown 1: the epoch after a reduction resets the wait (Keras then still counts that
    # epoch once the cooldown has run out, as its on_epoch_end does); never below min_lr 0.2
    cb = C.ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.1, cooldown=1, min_lr=0.2)
    losses = [1.0, 0.95, 0.95, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    #  epoch:  0    1     2     3    4    5    6    7    8    9    10   11
    # e0 best 1.0; e1 wait 1; e2 wait 2 -> 0.5, cooldown 1; e3 cooldown ends, wait 1
    # (0.9 is not below 1.0 - 0.1); e4 wait 2 -> 0.25; e5 cooldown ends, 0.5 improves (best
    # 0.5); e6 wait 1; e7 wait 2 -> max(0.125, 0.2) = 0.2; later plateaus leave it at min_lr
    want = [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2]
    rates, logs = drive(cb, losses)
    assert rates == pytest.approx(want)
    # Keras 3 logs the rate the epoch ran with, before this epoch's reduction
    assert [entry["learning_rate"] for entry in logs] == pytest.approx([1.0] + want[:-1])


def test_reduce_lr_on_plateau_max_mode_for_accuracy_and_a_missing_key():
    cb = C.ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1)
    assert cb.mode == "max"
    with pytest.warns(UserWarning, match="'val_accuracy' is not in the logs"):
        drive(cb, [0.3])


def test_learning_rate_scheduler_sets_each_epochs_rate():
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return 0.1 if epoch < 2 else lr * 0.5
    rates, logs = drive(C.LearningRateScheduler(schedule), [0.0] * 4, lr=0.3)
    assert calls == pytest.approx([(0, 0.3), (1, 0.1), (2, 0.1), (3, 0.05)])
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert [entry["learning_rate"] for entry in logs] == pytest.approx(rates)
    rates, _ = drive(C.LearningRateScheduler(lambda epoch: 1e-3 * 10 ** epoch), [0.0] * 3)
    assert rates == pytest.approx([1e-3, 1e-2, 1e-1])
    with pytest.raises(ValueError, match=r"schedule\(0\) must return a positive finite"):
        drive(C.LearningRateScheduler(lambda epoch: "fast"), [0.0])


def test_learning_rate_scheduler_in_fit_trains_as_setting_the_rate_by_hand():
    """Plain SGD has no state, so fitting one epoch at a time with the rate set by hand is
    the same computation: the weights must agree exactly."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], dtype=np.float32)
    rates = [0.1, 0.05, 0.02]

    def model():
        mt.random.seed(1)
        m = mt.Sequential([mt.layers.Dense(1, input_shape=(3,))])
        m.compile(mt.optimizers.SGD(0.5), "mse")
        return m
    scheduled = model()
    scheduled.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
                  callbacks=[C.LearningRateScheduler(lambda epoch: rates[epoch])])
    by_hand = model()
    for epoch, lr in enumerate(rates):
        by_hand.optimizer.learning_rate = lr
        by_hand.fit(x, y, epochs=epoch + 1, initial_epoch=epoch, batch_size=8,
                    shuffle=False, verbose=0)
    for a, b in zip(scheduled.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_lambda_callback_calls_each_hook_with_keras_arguments():
    seen = []
    cb = C.LambdaCallback(
        on_train_begin=lambda logs: seen.append("begin"),
        on_epoch_begin=lambda epoch, logs: seen.append(("epoch", epoch)),
        on_train_batch_end=lambda batch, logs: seen.append(("batch", batch, "loss" in logs)),
        on_epoch_end=lambda epoch, logs: seen.append(("end", epoch, sorted(logs))),
        on_train_end=lambda logs: seen.append("done"))
    m = mt.Sequential([mt.layers.Dense(1, input_shape=(2,))])
    m.compile("sgd", "mse")
    m.fit(np.ones((5, 2)), np.ones(5), batch_size=2, epochs=2, verbose=0, callbacks=[cb])
    batches = [("batch", b, True) for b in range(3)]
    assert seen == ["begin", ("epoch", 0), *batches, ("end", 0, ["loss"]),
                    ("epoch", 1), *batches, ("end", 1, ["loss"]), "done"]
    with pytest.raises(TypeError, match="'on_test_end' is not a hook minitiny calls"):
        C.LambdaCallback(on_test_end=print)


def test_csv_logger_writes_the_history_and_appends(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), rng.integers(0, 2, 30)
    m = mt.Sequential([mt.layers.Dense(1, activation="sigmoid", input_shape=(2,))])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    path = tmp_path / "log.csv"
    history = m.fit(x, y, epochs=3, validation_split=0.2, verbose=0,
                    callbacks=[C.CSVLogger(path)])
    m.fit(x, y, epochs=2, validation_split=0.2, verbose=0,
          callbacks=[C.CSVLogger(path, append=True)])
    assert path.read_bytes().count(b"\r\n") == 6               # Keras' csv dialect
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keys = sorted(history.history)
    assert rows[0] == ["epoch"] + keys == ["epoch", "accuracy", "loss", "val_accuracy",
                                           "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "0", "1"]      # one header only
    for i in range(3):
        assert [float(v) for v in rows[1 + i][1:]] == [history.history[k][i] for k in keys]
