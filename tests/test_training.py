"""Training end to end: small problems with known answers, losses, optimizers, callbacks.

Oracles: the answer of the problem itself (y = 2x - 1 gives 19 at x = 10; Keras' own
"hello world" prints 18.98 after the same 500 SGD epochs), NumPy formulas written here
from the Keras documentation and the papers (Adam: Kingma & Ba 2014, Algorithm 1 with
Keras' epsilon-hat), central finite differences for loss gradients, and hand counts.
"""
import os
import re

import numpy as np
import pytest

import minitiny as mt
from minitiny.layers import (Add, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                             GlobalAveragePooling2D, MaxPooling2D, ReLU)
from minitiny.datasets import make_spirals
from minitiny.tensor import Tensor

from gradcheck import gradcheck


# ---- problems with known answers --------------------------------------------------------
def test_single_neuron_learns_y_equals_2x_minus_1():
    mt.random.seed(0)
    model = mt.Sequential([Dense(units=1, input_shape=[1])])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    xs = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    ys = np.array([-3.0, -1.0, 1.0, 3.0, 5.0, 7.0])
    model.fit(xs, ys, epochs=500, verbose=0)
    pred = model.predict(np.array([10.0]))
    assert pred.shape == (1, 1)
    assert abs(pred[0, 0] - 19.0) < 0.1


def test_mlp_fits_sine():
    mt.random.seed(1)
    x = np.linspace(0, 2 * np.pi, 200, dtype=np.float32)[:, None]
    y = np.sin(x)
    model = mt.Sequential([Dense(16, activation="tanh", input_shape=[1]),
                           Dense(16, activation="tanh"), Dense(1)])
    model.compile(optimizer=mt.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, epochs=300, verbose=0, seed=2)
    mse = float(np.mean((model.predict(x) - y) ** 2))     # measured here, not by the model
    assert mse < 0.01


def test_mlp_separates_three_spirals():
    x, y = make_spirals(100, seed=0)
    x_test, y_test = make_spirals(60, seed=1)
    mt.random.seed(3)
    model = mt.Sequential([Dense(64, activation="relu", input_shape=[2]),
                           Dense(64, activation="relu"), Dense(3, activation="softmax")])
    model.compile(optimizer=mt.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=200, verbose=0, seed=4)
    acc = np.mean(model.predict(x_test).argmax(axis=1) == y_test)
    assert acc > 0.95


def bars(n, seed):
    """Noisy 8x8 images with one bright row (label 0) or one bright column (label 1)."""
    r = np.random.default_rng(seed)
    x = r.normal(0.0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    y = r.integers(0, 2, n)
    pos = r.integers(0, 8, n)
    for i in range(n):
        if y[i]:
            x[i, :, pos[i], 0] += 1.0
        else:
            x[i, pos[i], :, 0] += 1.0
    return x, y


def test_cnn_tells_horizontal_from_vertical_bars():
    x, y = bars(400, seed=0)
    x_test, y_test = bars(200, seed=1)
    mt.random.seed(5)
    model = mt.Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
                           MaxPooling2D(), Flatten(), Dense(2, activation="softmax")])
    model.compile(optimizer=mt.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=15, verbose=0, seed=6)
    acc = np.mean(model.predict(x_test).argmax(axis=1) == y_test)
    assert acc > 0.95


def residual_model():
    inp = mt.Input((8, 8, 1))
    a = Conv2D(8, 3, padding="same", activation="relu")(inp)
    b = Conv2D(8, 3, padding="same")(a)
    b = BatchNormalization(momentum=0.9)(b)
    c = ReLU()(Add()([a, b]))
    out = Dense(2, activation="softmax")(GlobalAveragePooling2D()(c))
    return mt.Model(inp, out)


def test_residual_functional_model_trains_and_round_trips(tmp_path):
    x, y = bars(400, seed=2)
    x_test, y_test = bars(200, seed=3)
    mt.random.seed(7)
    model = residual_model()
    assert [type(n.layer).__name__ for n in model.graph] == [
        "Conv2D", "Conv2D", "BatchNormalization", "Add", "ReLU", "GlobalAveragePooling2D",
        "Dense"]
    add = model.graph[3]
    assert add.inputs == [model.graph[0].name, model.graph[2].name]   # the skip connection
    assert model.graph[0].inputs == [model.input_name]
    model.compile(optimizer=mt.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=25, verbose=0, seed=8)
    pred = model.predict(x_test)
    assert np.mean(pred.argmax(axis=1) == y_test) > 0.9

    path = tmp_path / "resnet.npz"
    model.save(path)
    loaded = mt.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x_test), pred)
    assert [n.inputs for n in loaded.graph] == [n.inputs for n in model.graph]
    assert loaded.evaluate(x_test, y_test) == model.evaluate(x_test, y_test)


def test_forward_all_returns_every_output():
    mt.random.seed(9)
    model = residual_model()
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype(np.float32)
    outs = model.forward_all(x)
    assert list(outs) == [model.input_name] + [n.name for n in model.graph]
    np.testing.assert_array_equal(outs[model.input_name], x)
    np.testing.assert_allclose(outs[model.graph[-1].name], model.predict(x), rtol=1e-6)
    a, b = outs[model.graph[0].name], outs[model.graph[2].name]
    np.testing.assert_allclose(outs[model.graph[3].name], a + b, rtol=1e-6)


def test_sequential_builds_from_input_or_from_the_first_data():
    a = mt.Sequential([mt.Input((3,)), Dense(2)])
    assert a.built and a.input_shape == (3,) and a.graph[0].inputs == [a.input_name]
    b = mt.Sequential()
    b.add(Dense(4, activation="relu"))
    b.add(Dense(1))
    assert not b.built
    b.compile(optimizer="sgd", loss="mse")
    b.fit(np.zeros((8, 5)), np.zeros(8), verbose=0)
    assert b.input_shape == (5,) and b.layers[0].get_weights()[0].shape == (5, 4)
    assert [n.inputs for n in b.graph] == [[b.input_name], [b.layers[0].name]]


def test_binary_classifier_with_sigmoid_and_its_accuracy():
    r = np.random.default_rng(0)
    x = r.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] - 2 * x[:, 1] > 0).astype(np.float32)
    mt.random.seed(20)
    model = mt.Sequential([Dense(1, activation="sigmoid", input_shape=[2])])
    model.compile(optimizer=mt.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=30, verbose=0)
    p = model.predict(x)
    assert p.min() >= 0 and p.max() <= 1
    loss, acc = model.evaluate(x, y)
    assert acc == pytest.approx(np.mean((p[:, 0] > 0.5) == y)) and acc > 0.95
    # some float32 probabilities round to exactly 1, so the oracle works from the logits
    # in float64: -[y log s(z) + (1-y) log(1-s(z))] = log(1 + e^z) - y z
    w, b = model.get_weights()
    z = (x.astype(np.float64) @ w + b)[:, 0]
    assert loss == pytest.approx(np.mean(np.logaddexp(0, z) - y * z), rel=1e-4)
    # the same model emitting logits: accuracy thresholds the logit at 0 (sigmoid 0.5)
    logits = mt.Sequential([Dense(1, input_shape=[2])])
    logits.set_weights(model.get_weights())
    logits.compile(optimizer="sgd", loss=mt.losses.BinaryCrossentropy(from_logits=True),
                   metrics=["accuracy"])
    assert logits.evaluate(x, y) == pytest.approx([loss, acc], rel=1e-4)


# ---- losses: values and gradients against independent formulas -------------------------
def _log_softmax_np(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_loss_values_match_numpy_formulas():
    r = np.random.default_rng(0)
    z = r.normal(size=(5, 4))
    labels = np.array([0, 3, 1, 2, 3])
    onehot = np.eye(4)[labels]
    p = np.exp(_log_softmax_np(z))
    want = -np.mean(np.log(p[np.arange(5), labels]))
    for loss, target in ((mt.losses.SparseCategoricalCrossentropy(from_logits=True), labels),
                         (mt.losses.CategoricalCrossentropy(from_logits=True), onehot)):
        assert float(loss(target, Tensor(z)).data) == pytest.approx(want, rel=1e-12)
    # probabilities in: Keras' clipped formula gives the same value away from the clip
    assert float(mt.losses.CategoricalCrossentropy()(onehot, Tensor(p)).data) == \
        pytest.approx(want, rel=1e-9)

    zb = r.normal(size=(6, 1))
    yb = r.integers(0, 2, (6, 1)).astype(float)
    s = 1 / (1 + np.exp(-zb))
    want_b = -np.mean(yb * np.log(s) + (1 - yb) * np.log(1 - s))
    assert float(mt.losses.BinaryCrossentropy(from_logits=True)(yb, Tensor(zb)).data) == \
        pytest.approx(want_b, rel=1e-12)
    assert float(mt.losses.BinaryCrossentropy()(yb, Tensor(s)).data) == \
        pytest.approx(want_b, rel=1e-9)
    yr = r.normal(size=(6, 1))
    assert float(mt.losses.MeanSquaredError()(yr, Tensor(zb)).data) == \
        pytest.approx(np.mean((zb - yr) ** 2), rel=1e-12)


@pytest.mark.parametrize("kind", ["mse", "bce", "cce", "sparse"])
def test_loss_gradients_match_finite_differences(kind):
    r = np.random.default_rng(1)
    z = r.normal(size=(4, 3))
    if kind == "mse":
        loss, target = mt.losses.MeanSquaredError(), r.normal(size=(4, 3))
    elif kind == "bce":
        loss, target = mt.losses.BinaryCrossentropy(from_logits=True), r.random((4, 3))
    elif kind == "cce":
        t = r.random((4, 3))
        loss = mt.losses.CategoricalCrossentropy(from_logits=True)
        target = t / t.sum(1, keepdims=True)                      # soft labels, rows sum to 1
    else:
        loss = mt.losses.SparseCategoricalCrossentropy(from_logits=True)
        target = np.array([2, 0, 1, 2])
    prepared = loss.prepare(target, (3,))
    gradcheck(lambda t: loss.compute(prepared, t, True), z)


def test_cross_entropy_from_logits_is_stable_for_huge_logits():
    z = Tensor(np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]]), requires_grad=True)
    loss = mt.losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([0, 2]), z)
    loss.backward()
    # sample 0 is right with certainty (loss 0); sample 1 is off by 1000 (loss 1000)
    assert float(loss.data) == pytest.approx(500.0)
    np.testing.assert_allclose(z.grad, [[0, 0, 0], [0, 0.5, -0.5]], atol=1e-12)
    zb = Tensor(np.array([[800.0], [-800.0]]), requires_grad=True)
    lb = mt.losses.BinaryCrossentropy(from_logits=True)(np.array([[0.0], [0.0]]), zb)
    lb.backward()
    assert float(lb.data) == pytest.approx(400.0)       # softplus(800) / 2
    np.testing.assert_allclose(zb.grad, [[0.5], [0.0]], atol=1e-12)


def test_softmax_model_trains_through_logits_even_when_saturated():
    """A Dense+softmax model with from_logits=False: fit computes the loss from the logits
    (the probabilities would be exactly 0 and 1 here), so the loss stays finite."""
    model = mt.Sequential([Dense(2, activation="softmax", input_shape=[1])])
    model.set_weights([np.array([[200.0, -200.0]], np.float32), np.zeros(2, np.float32)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.array([[1.0]]), np.array([1])                 # confidently wrong
    assert model.evaluate(x, y) == pytest.approx(400.0, rel=1e-5)
    h = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])
    assert model.get_weights()[0][0, 0] < 200.0             # the gradient got through


def test_accuracy_follows_keras_choice_by_shapes():
    out = np.array([[0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    labels = np.array([1, 1, 2, 0])                          # right, wrong, right, wrong
    m = mt.metrics.get("accuracy", labels.shape[1:], out.shape[1:])
    assert m(labels, out).mean() == 0.5
    m = mt.metrics.get("accuracy", (3,), (3,))
    assert m(np.eye(3)[labels], out).mean() == 0.5
    m = mt.metrics.get("accuracy", (1,), (1,))
    assert m(np.array([[1], [0], [1]]), np.array([[0.9], [0.6], [0.4]])).mean() == \
        pytest.approx(1 / 3)


# ---- optimizers against hand-written update rules ----------------------------------------
def _run(opt, w0, grads):
    w = Tensor(w0.copy(), requires_grad=True)
    for g in grads:
        w.grad = g
        opt.step([w])
    return w.data


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_keras_rule(momentum, nesterov):
    r = np.random.default_rng(0)
    w0, grads = r.normal(size=(3, 2)), [r.normal(size=(3, 2)) for _ in range(5)]
    lr = 0.1
    w, v = w0.copy(), np.zeros_like(w0)
    for g in grads:                      # Keras docs: velocity = momentum*velocity - lr*g
        v = momentum * v - lr * g
        w = w + (momentum * v - lr * g if nesterov else v)
    got = _run(mt.optimizers.SGD(lr, momentum=momentum, nesterov=nesterov), w0, grads)
    np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-14)


def test_adam_matches_paper_with_epsilon_hat():
    r = np.random.default_rng(1)
    w0, grads = r.normal(size=(4,)), [r.normal(size=(4,)) for _ in range(6)]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    w, m, v = w0.copy(), np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):   # Kingma & Ba 2014, Algorithm 1 / section 2
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        alpha_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w = w - alpha_t * m / (np.sqrt(v) + eps)
    got = _run(mt.optimizers.Adam(lr), w0, grads)
    np.testing.assert_allclose(got, w, rtol=1e-12)


def test_learning_rate_schedules_match_formulas():
    s = mt.optimizers.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == 0.1 and s(10) == pytest.approx(0.05) and s(5) == pytest.approx(0.1 * 0.5 ** 0.5)
    s = mt.optimizers.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert s(19) == pytest.approx(0.05) and s(20) == pytest.approx(0.025)
    # Keras docs' example: boundaries [100000, 110000], values [1.0, 0.5, 0.1]
    s = mt.optimizers.schedules.PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1])
    assert [s(0), s(100000), s(100001), s(110000), s(110001)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    s = mt.optimizers.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert s(0) == pytest.approx(1.0) and s(50) == pytest.approx(0.55)
    assert s(100) == pytest.approx(0.1) and s(1000) == pytest.approx(0.1)


def test_optimizer_uses_the_schedule_step_by_step():
    opt = mt.optimizers.SGD(mt.optimizers.PiecewiseConstantDecay([1], [1.0, 0.1]))
    w = _run(opt, np.zeros(1), [np.ones(1)] * 4)
    # steps 0 and 1 use lr 1.0, steps 2 and 3 use 0.1
    np.testing.assert_allclose(w, [-2.2])
    assert opt.iterations == 4


def test_frozen_layer_is_not_updated():
    mt.random.seed(10)
    model = mt.Sequential([Dense(4, activation="relu", input_shape=[3]), Dense(1)])
    model.layers[0].trainable = False
    before = model.get_weights()
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3))
    model.fit(x, x.sum(axis=1), epochs=3, verbose=0)
    after = model.get_weights()
    for a, b in zip(before[:2], after[:2]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(before[2], after[2])


# ---- fit: seeds, splits, callbacks, interruption ---------------------------------------
def _data(n=60, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def _classifier(seed):
    mt.random.seed(seed)
    model = mt.Sequential([Dense(8, activation="relu", input_shape=[4]), Dropout(0.3),
                           Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_same_seed_same_weights_same_history():
    x, y = _data()
    runs = []
    for _ in range(2):
        model = _classifier(seed=11)
        h = model.fit(x, y, epochs=4, batch_size=8, verbose=0, seed=12, validation_split=0.25)
        runs.append((model.get_weights(), h.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    other = _classifier(seed=11)
    h = other.fit(x, y, epochs=4, batch_size=8, verbose=0, seed=13, validation_split=0.25)
    assert h.history != runs[0][1]               # another seed: other batches and dropout


def test_validation_split_takes_the_last_fraction_before_shuffling():
    x = np.arange(10, dtype=np.float32)
    y = 3 * x + 1
    y[7:] = 1000.0                               # only the validation part is odd
    model = mt.Sequential([Dense(1, input_shape=[1])])
    w0, b0 = 0.5, 0.25
    model.set_weights([np.array([[w0]], np.float32), np.array([b0], np.float32)])
    lr = 0.01
    model.compile(optimizer=mt.optimizers.SGD(lr), loss="mse")
    h = model.fit(x, y, epochs=1, batch_size=32, validation_split=0.25, verbose=0)
    # Keras: split_at = floor(10 * 0.75) = 7, training on x[:7] only: one step of
    # dL/dw = 2/n sum (w x + b - y) x,  dL/db = 2/n sum (w x + b - y)
    xt, yt = x[:7].astype(float), y[:7].astype(float)
    err = w0 * xt + b0 - yt
    w1, b1 = w0 - lr * 2 * np.mean(err * xt), b0 - lr * 2 * np.mean(err)
    np.testing.assert_allclose(model.get_weights()[0], [[w1]], rtol=1e-5)
    np.testing.assert_allclose(model.get_weights()[1], [b1], rtol=1e-5)
    want_val = np.mean((w1 * x[7:] + b1 - 1000.0) ** 2)
    assert h.history["val_loss"][0] == pytest.approx(want_val, rel=1e-5)


class Record(mt.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_early_stopping_with_restore_best_weights():
    x, y = _data()
    model = _classifier(seed=14)
    rec = Record()
    # min_delta so large that nothing after the first epoch counts as an improvement:
    # epoch 0 is best, epochs 1 and 2 wait, patience 2 stops after epoch 2 (Keras' rule)
    stop = mt.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1e9,
                                      restore_best_weights=True)
    h = model.fit(x, y, epochs=20, verbose=0, callbacks=[rec, stop])
    assert h.epoch == [0, 1, 2]
    assert stop.stopped_epoch == 2
    for a, b in zip(model.get_weights(), rec.weights[0]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_patience_counts_like_keras():
    class Fake:
        stop_training = False

        def get_weights(self):
            return []
    stop = mt.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    stop.set_model(Fake())
    stop.on_train_begin()
    stopped_at = None
    for epoch, v in enumerate([1.0, 0.9, 0.95, 0.85, 0.9, 0.91, 0.5]):
        stop.on_epoch_end(epoch, {"val_loss": v})
        if stop.model.stop_training:
            stopped_at = epoch
            break
    assert stopped_at == 5           # best 0.85 at epoch 3; epochs 4 and 5 do not improve


def test_model_checkpoint_keeps_the_best_model(tmp_path):
    x, y = _data()
    model = _classifier(seed=15)
    rec = Record()
    path = tmp_path / "best.npz"
    ckpt = mt.callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    h = model.fit(x, y, epochs=6, verbose=0, validation_split=0.3,
                  callbacks=[rec, ckpt])
    best = int(np.argmin(h.history["val_loss"]))
    saved = mt.load_model(path)
    for a, b in zip(saved.get_weights(), rec.weights[best]):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["best.npz"]    # no temp files left


def test_model_checkpoint_formats_the_epoch(tmp_path):
    x, y = _data()
    model = _classifier(seed=16)
    ckpt = mt.callbacks.ModelCheckpoint(str(tmp_path / "ep{epoch:02d}.npz"))
    model.fit(x, y, epochs=3, verbose=0, callbacks=[ckpt])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep01.npz", "ep02.npz", "ep03.npz"]


def test_ctrl_c_stops_cleanly_and_keeps_history(tmp_path, capsys):
    class Interrupt(mt.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt
    x, y = _data()
    model = _classifier(seed=17)
    path = tmp_path / "best.npz"
    ckpt = mt.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    h = model.fit(x, y, epochs=10, verbose=0, callbacks=[ckpt, Interrupt()])
    assert h.epoch == [0, 1, 2] and len(h.history["loss"]) == 3
    assert "interrupted" in capsys.readouterr().err
    assert os.path.exists(path) and mt.load_model(path).count_params() == model.count_params()


def test_progress_line_and_quiet_mode(capsys):
    x, y = _data()
    model = _classifier(seed=18)
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.2)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=2, verbose=1, validation_split=0.2)
    lines = capsys.readouterr().out.strip().splitlines()
    # Keras' progress line (not a terminal here: only each epoch's finished bar)
    assert len(lines) == 4 and lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert re.fullmatch(r"2/2 \[={30}\] - \d+s \d+(s|ms|us)/step - loss: \d\.\d{4} - "
                        r"accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - val_accuracy: "
                        r"\d\.\d{4}", lines[3]), lines[3]
    model.fit(x, y, epochs=2, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and re.fullmatch(r"2/2 - \d+s - loss: .* - val_accuracy: "
                                            r"\d\.\d{4} - \d+s/epoch - \d+(s|ms|us)/step",
                                            lines[1]), lines[1]


def test_evaluate_returns_loss_and_metrics_like_keras():
    x, y = _data()
    model = _classifier(seed=19)
    loss, acc = model.evaluate(x, y)
    p = model.predict(x)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])), rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, y), float)


# ---- summary: hand-counted parameters and MACs -------------------------------------------
def test_summary_counts_match_hand_computation(capsys, monkeypatch):
    model = mt.Sequential([Flatten(input_shape=(28, 28)), Dense(20, activation="relu"),
                           Dense(10, activation="softmax")])
    # Dense 784 -> 20: 784*20 + 20 = 15,700 params, 784*20 = 15,680 MACs
    # Dense 20 -> 10: 20*10 + 10 = 210 params, 200 MACs
    model.summary()
    text = capsys.readouterr().out
    assert "15,700" in text and "15,680" in text and "210" in text
    assert "Total params: 15,910" in text and "Total MACs per inference: 15,880" in text
    # float32: 15,910 * 4 bytes; int8: 15,880 weights + 30 biases * 4 bytes = 16,000
    assert "63,640 bytes as float32" in text and "16,000 bytes as int8" in text
    # largest activation pair: flatten's 784 in + 784 out
    assert "1,568 bytes" in text

    import types
    from minitiny.deploy import boards
    tiny = types.SimpleNamespace(name="tiny", mcu="test", flash_bytes=20_000, ram_bytes=1_000)
    monkeypatch.setattr(boards, "get", lambda name: tiny if name in ("tiny", tiny) else None)
    model.summary(board="tiny")
    text = capsys.readouterr().out
    assert "16,000 of 20,000 bytes (80.0%) fits" in text
    assert "1,568 of 1,000 bytes" in text and "DOES NOT FIT" in text


def test_conv_macs_match_hand_computation():
    model = mt.Sequential([Conv2D(8, 3, input_shape=(28, 28, 1)),
                           Conv2D(16, 3, strides=2, padding="same")])
    conv1, conv2 = model.layers
    assert conv1.output_shape == (26, 26, 8) and conv2.output_shape == (13, 13, 16)
    assert conv1.count_params() == 3 * 3 * 1 * 8 + 8
    assert conv1.macs() == 26 * 26 * 3 * 3 * 1 * 8
    assert conv2.macs() == 13 * 13 * 3 * 3 * 8 * 16


# ---- the package surface -------------------------------------------------------------------
def test_package_surface_and_lazy_entry_points(monkeypatch):
    for name in ("Sequential", "Model", "Input", "Tensor", "no_grad", "layers", "losses",
                 "optimizers", "metrics", "callbacks", "data", "random", "load_model"):
        assert hasattr(mt, name), name
    from minitiny.quant.graph import QModel
    assert mt.QModel is QModel                          # loaded on first use
    monkeypatch.setitem(mt._LAZY, "missing_part", ("minitiny.not_written_yet", "run"))
    with pytest.raises(AttributeError, match="minitiny.missing_part is unavailable: importing "
                                             "minitiny.not_written_yet failed"):
        mt.missing_part
    assert not hasattr(mt, "missing_part")
