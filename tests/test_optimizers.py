"""RMSprop, Adagrad, AdamW and weight_decay: Keras' update rules, written out by hand here
step by step from Keras 3's documented formulas (keras/src/optimizers/*.py), with Keras'
epsilon inside the square root where torch puts it outside (test_torch_semantics.py
compares whole training runs with torch at epsilon 0)."""
import numpy as np
import pytest

import minitiny as mt
from minitiny.tensor import Tensor

O = mt.optimizers


def run(optimizer, grads, w0):
    """Apply the gradient sequence to a weight starting at w0 -> the weight after each step."""
    w = Tensor(np.array(w0, dtype=np.float64), requires_grad=True)
    out = []
    for g in grads:
        optimizer.apply_gradients([(np.asarray(g, dtype=np.float64), w)])
        out.append(w.data.copy())
    return out


RNG = np.random.default_rng(0)
GRADS = RNG.normal(size=(6, 5)) * np.array([1e-4, 1e-2, 1.0, 10.0, 1e3])   # tiny to huge
W0 = RNG.normal(size=5)


def test_rmsprop_defaults_match_keras_by_hand():
    w, v, want = W0.copy(), np.zeros(5), []
    for g in GRADS:                                   # lr 0.001, rho 0.9, eps 1e-7
        v = 0.9 * v + 0.1 * g * g
        w = w - 0.001 * g / np.sqrt(v + 1e-7)
        want.append(w)
    np.testing.assert_allclose(run(O.RMSprop(), GRADS, W0), want, rtol=1e-12)


def test_rmsprop_centered_with_momentum_by_hand():
    w, v, a, s, want = W0.copy(), np.zeros(5), np.zeros(5), np.zeros(5), []
    for g in GRADS:
        v = 0.8 * v + 0.2 * g * g
        a = 0.8 * a + 0.2 * g
        s = 0.7 * s + 0.01 * g / np.sqrt(v - a * a + 1e-7)
        w = w - s
        want.append(w)
    got = run(O.RMSprop(0.01, rho=0.8, momentum=0.7, centered=True), GRADS, W0)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_adagrad_defaults_match_keras_by_hand():
    w, acc, want = W0.copy(), np.full(5, 0.1), []
    for g in GRADS:                                   # lr 0.001, accumulator from 0.1
        acc = acc + g * g
        w = w - 0.001 * g / np.sqrt(acc + 1e-7)
        want.append(w)
    np.testing.assert_allclose(run(O.Adagrad(), GRADS, W0), want, rtol=1e-12)


def test_adamw_defaults_match_keras_by_hand():
    w, m, v, want = W0.copy(), np.zeros(5), np.zeros(5), []
    for t, g in enumerate(GRADS, start=1):            # lr 0.001, weight_decay 0.004
        w = w - w * 0.004 * 0.001                    # decay first, with the current rate
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        lr_t = 0.001 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        w = w - lr_t * m / (np.sqrt(v) + 1e-7)
        want.append(w)
    np.testing.assert_allclose(run(O.AdamW(), GRADS, W0), want, rtol=1e-12)


def test_weight_decay_on_sgd_follows_a_schedule():
    sched = O.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    w, want = W0.copy(), []
    for step, g in enumerate(GRADS):
        lr = 0.1 * 0.5 ** step
        w = w * (1 - 0.01 * lr) - lr * g
        want.append(w)
    np.testing.assert_allclose(run(O.SGD(sched, weight_decay=0.01), GRADS, W0), want,
                               rtol=1e-12)


def test_names_defaults_and_save_round_trip(tmp_path):
    assert [type(O.get(n)).__name__ for n in ("rmsprop", "RMSprop", "adagrad", "adamw")] == \
        ["RMSprop", "RMSprop", "Adagrad", "AdamW"]
    assert O.get("adamw").weight_decay == 0.004 and O.get("adagrad").epsilon == 1e-7
    mt.random.seed(0)
    model = mt.Sequential([mt.layers.Dense(2, input_shape=(3,))])
    model.compile(O.RMSprop(0.01, momentum=0.5, centered=True, weight_decay=0.1), "mse")
    model.save(tmp_path / "m.npz")
    back = mt.load_model(tmp_path / "m.npz").optimizer
    assert type(back) is O.RMSprop and back.get_config() == model.optimizer.get_config()


def test_keras_optimizer_arguments_minitiny_lacks_are_refused_by_name():
    with pytest.raises(TypeError, match="RMSprop: argument 'clipnorm' is not implemented.*"
                                        "takes: learning_rate, rho, momentum"):
        O.RMSprop(clipnorm=1.0)
    with pytest.raises(TypeError, match="Adam: argument 'amsgrad'"):
        O.Adam(amsgrad=True)
    with pytest.raises(ValueError, match="'nadam' \\(a Keras optimizer minitiny does not "
                                         "implement\\); use one of \\['adagrad', 'adam'"):
        mt.Sequential([mt.layers.Dense(1, input_shape=(1,))]).compile("nadam", "mse")
    with pytest.raises(ValueError, match="AdamW needs a weight_decay"):
        O.AdamW(weight_decay=None)


def test_a_scheduled_learning_rate_cannot_be_overwritten():
    opt = O.Adam(O.CosineDecay(0.1, 10))
    with pytest.raises(TypeError, match="created with the learning-rate schedule CosineDecay"):
        opt.learning_rate = 0.01
    plain = O.RMSprop(0.1)
    plain.learning_rate = 0.01
    assert plain.learning_rate == 0.01


def test_keras_2s_lr_is_the_learning_rate():
    with pytest.warns(DeprecationWarning, match="use learning_rate"):
        opt = O.RMSprop(lr=0.01)
    assert opt.learning_rate == 0.01
