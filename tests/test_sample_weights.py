"""Sample weights in every loss: the weighted loss is sum_n w_n l_n / N where l_n is the
loss of sample n on its own (each loss called one sample at a time is the oracle), and its
gradient matches finite differences; with logits and with probabilities, flat and spatial."""
import numpy as np
import pytest

import minitiny as mt
from gradcheck import numerical_grad
from minitiny.tensor import Tensor

LOSSES = mt.losses


def cases():
    rng = np.random.default_rng(0)
    n = 5
    yield "mse", LOSSES.MeanSquaredError(), rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), False
    yield "bce-logits", LOSSES.BinaryCrossentropy(), rng.normal(size=(n, 2)), \
        rng.integers(0, 2, (n, 2)).astype(float), True
    yield "bce-probs", LOSSES.BinaryCrossentropy(), rng.random((n, 2)) * 0.9 + 0.05, \
        rng.integers(0, 2, (n, 2)).astype(float), False
    yield "cce-logits", LOSSES.CategoricalCrossentropy(), rng.normal(size=(n, 4)), \
        np.eye(4)[rng.integers(0, 4, n)], True
    yield "cce-probs", LOSSES.CategoricalCrossentropy(), rng.random((n, 4)) + 0.1, \
        np.eye(4)[rng.integers(0, 4, n)], False
    yield "sparse-logits", LOSSES.SparseCategoricalCrossentropy(), rng.normal(size=(n, 4)), \
        rng.integers(0, 4, n), True
    yield "sparse-probs", LOSSES.SparseCategoricalCrossentropy(), rng.random((n, 4)) + 0.1, \
        rng.integers(0, 4, n), False
    yield "sparse-spatial", LOSSES.SparseCategoricalCrossentropy(), \
        rng.normal(size=(n, 2, 3, 4)), rng.integers(0, 4, (n, 2, 3)), True
    yield "mse-spatial", LOSSES.MeanSquaredError(), rng.normal(size=(n, 2, 2, 1)), \
        rng.normal(size=(n, 2, 2, 1)), False


@pytest.mark.parametrize("name, loss, out, y, logits", list(cases()), ids=[c[0] for c in cases()])
def test_weighted_loss_is_the_weighted_mean_of_single_sample_losses(name, loss, out, y, logits):
    w = np.array([0.0, 1.0, 2.5, 0.3, 10.0])
    target = loss.prepare(y, out.shape[1:], np.float64)

    def value(o, weight=None):
        return float(loss.compute(target, Tensor(o), logits, weight).data)
    one_by_one = [float(loss.compute(target[i:i + 1], Tensor(out[i:i + 1]), logits).data)
                  for i in range(len(out))]
    assert value(out, w) == pytest.approx(np.dot(w, one_by_one) / len(out), rel=1e-10)
    assert value(out, np.ones(5)) == pytest.approx(value(out), rel=1e-12)
    t = Tensor(out.copy(), requires_grad=True)
    loss.compute(target, t, logits, w).backward()
    want = numerical_grad(lambda a: value(a[0], w), [out.copy()], 0, 1e-6)
    np.testing.assert_allclose(t.grad, want, rtol=1e-5, atol=1e-8)


def test_keras_call_takes_sample_weight():
    loss = LOSSES.MeanSquaredError()
    got = loss([[1.0], [3.0]], np.array([[0.0], [0.0]]), sample_weight=[2.0, 0.5])
    assert float(got.data) == pytest.approx((2 * 1 + 0.5 * 9) / 2)
