"""Training that would silently go wrong stops with a clear message instead (issue: a huge
learning rate drove the loss to inf then NaN with only NumPy warnings; float64 data above
float32's range overflowed; empty data gave ZeroDivisionError, [0.0, 0.0] or val_loss 0.0).
"""
import numpy as np
import pytest

import minitiny as mt
from minitiny.layers import Dense


def regression(n=64, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype("f4")
    return x, x.sum(1, keepdims=True)


def mlp(lr):
    mt.random.seed(0)
    model = mt.Sequential([Dense(8, activation="relu", input_shape=[4]), Dense(1)])
    model.compile(optimizer=mt.optimizers.SGD(lr), loss="mse")
    return model


class Record(mt.callbacks.Callback):
    """The loss and a copy of every weight after each step (the oracle for 'last good')."""

    def __init__(self):
        self.losses, self.weights = [], []

    def on_train_begin(self, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])
        self.weights.append([w.copy() for w in self.model.get_weights()])


@pytest.mark.parametrize("lr, epochs", [(1e3, 5), (30.0, 40)])
def test_a_diverging_loss_stops_training_with_the_last_good_weights(lr, epochs, capsys):
    x, y = regression()
    model, record = mlp(lr), Record()
    with np.errstate(all="ignore"):
        history = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, shuffle=False,
                            callbacks=[record])
    assert model.stop_training
    assert all(np.isfinite(record.losses)), "no step with a non-finite loss reached a callback"
    steps = len(record.losses)                  # finite steps; step `steps` was not finite
    assert steps >= 1 and steps < epochs * 4, "the run never diverged: pick a larger lr"
    epoch, batch = divmod(steps, 4)
    err = capsys.readouterr().err
    assert f"epoch {epoch + 1}/{epochs}, batch {batch + 1}" in err, err
    assert "last step whose loss was finite" in err
    # the weights before the last finite step (the state record.weights[steps - 1] holds)
    for got, want in zip(model.get_weights(), record.weights[steps - 1]):
        np.testing.assert_array_equal(got, want)
    assert len(history.epoch) == epoch           # only whole epochs are in the history


def test_a_loss_that_is_never_finite_keeps_the_starting_weights(capsys):
    x, y = regression()
    model = mlp(0.01)
    start = [w.copy() for w in model.get_weights()]
    huge = model.layers[0].weights["kernel"]
    huge.data[...] = 3e38                        # finite weights whose loss is inf
    start[0][...] = 3e38
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=2, verbose=0)
    assert "start of training (no step had a finite loss)" in capsys.readouterr().err
    for got, want in zip(model.get_weights(), start):
        np.testing.assert_array_equal(got, want)


def test_keras_terminate_on_nan_callback(capsys):
    """TerminateOnNaN as Keras has it: a non-finite batch loss sets stop_training."""
    cb = mt.callbacks.TerminateOnNaN()
    cb.set_model(mlp(0.01))
    cb.on_train_batch_end(3, {"loss": 0.5})
    assert not cb.model.stop_training
    cb.on_train_batch_end(4, {"loss": float("nan")})
    assert cb.model.stop_training
    assert "Batch 4: Invalid loss, terminating training" in capsys.readouterr().out
    x, y = regression()                          # and fit accepts it
    assert len(mlp(0.01).fit(x, y, epochs=2, verbose=0,
                             callbacks=[mt.callbacks.TerminateOnNaN()]).epoch) == 2


@pytest.mark.parametrize("big", [3.5e38, -1e300, np.finfo(np.float64).max])
def test_float64_values_beyond_float32_are_refused(big):
    x, y = regression()
    x = x.astype(np.float64)
    x[5, 2] = big
    model = mlp(0.01)
    for call in (lambda: model.fit(x, y, verbose=0), lambda: model.predict(x),
                 lambda: model.evaluate(x, y)):
        with pytest.raises(ValueError, match=r"x holds .* at index \(5, 2\).*beyond the range "
                                             r"of float32"):
            call()
    x_ok, y_big = regression()
    y_big = y_big.astype(np.float64)
    y_big[7, 0] = big
    with pytest.raises(ValueError, match=r"y holds .* at index \(7, 0\).*beyond the range of float32"):
        model.fit(x_ok, y_big, verbose=0)
    x[5, 2] = 3.4e38                              # float32's max is 3.4028235e38: still fine
    model.predict(x)


def test_empty_data_is_refused_by_fit_and_evaluate():
    model = mlp(0.01)
    none = np.zeros((0, 4), "f4"), np.zeros((0, 1), "f4")
    with pytest.raises(ValueError, match="fit needs at least one sample"):
        model.fit(*none, verbose=0)
    with pytest.raises(ValueError, match="evaluate needs at least one sample"):
        model.evaluate(*none)
    x, y = regression()
    with pytest.raises(ValueError, match="validation_data holds no samples"):
        model.fit(x, y, validation_data=none, verbose=0)
    assert model.predict(none[0]).shape == (0, 1)      # an empty prediction is well defined


def test_a_signal_at_the_last_epoch_end_says_after_not_during(capsys):
    """The interrupt message counts epochs right: a stop at the end of epoch 3/3 is 'after
    epoch 3/3' with 3 finished epochs (it said 'during epoch 3/3 ... 3 finished')."""
    import os
    import signal

    class SignalAtEpochEnd(mt.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                os.kill(os.getpid(), signal.SIGTERM)
    x, y = regression()
    history = mlp(0.01).fit(x, y, epochs=3, verbose=0, callbacks=[SignalAtEpochEnd()])
    err = capsys.readouterr().err
    assert "interrupted (SIGTERM) after epoch 3/3: keeping the history of the 3 finished" in err
    assert history.epoch == [0, 1, 2]
