"""Quantization-aware training: fake quantization (values and straight-through gradients),
range tracking, training the original weights, conversion with the learned ranges, and a
measured case where QAT recovers the accuracy that post-training quantization loses.
"""
import numpy as np
import pytest

import minitiny.random as mt_random
from minitiny import layers as L
from minitiny.models import Sequential
from minitiny.quant import tflm
from minitiny.quant.qat import QATModel, fake_quant, fake_quant_weights, quantize_aware
from minitiny.quant.quantizer import (QuantizationError, activation_params, quantize,
                                      quantize_weights, weight_scales)
from minitiny.quant.report import quantization_report
from minitiny.tensor import Tensor
from minitiny.datasets import make_spirals       # the same task as the PTQ tests

requires_tflm = pytest.mark.skipif(not tflm.available(),
                                   reason="tflite-micro (TFLM's interpreter) is not installed")




def trained_spiral(seed=1):
    mt_random.seed(seed)
    x, y = make_spirals(400)
    m = Sequential([L.Dense(32, activation="relu", input_shape=[2]),
                    L.Dense(32, activation="relu"), L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=60, verbose=0)
    return m, x, y, *make_spirals(300, seed=1)


@pytest.fixture(scope="module")
def spiral_model():
    return trained_spiral()


def accuracy(pred, y):
    return float(np.mean(pred.argmax(-1) == y))


# ---- fake quantization ----------------------------------------------------------------------
def test_fake_quant_values_and_straight_through_gradient():
    # scale 0.5, zero point -100: the grid is 0.5 * (q + 100), q in [-128, 127], i.e.
    # [-14, 113.5]. 0.26 -> 0.5; -0.25 is half a step: rounds away from zero to -0.5;
    # 200 clamps to 113.5 and -20 to -14 (gradient 0 there, 1 inside).
    x = Tensor(np.array([0.2, 0.26, -0.25, 200.0, -20.0, 113.5]), requires_grad=True)
    y = fake_quant(x, 0.5, -100)
    np.testing.assert_array_equal(y.data, [0.0, 0.5, -0.5, 113.5, -14.0, 113.5])
    (y * Tensor(np.arange(1.0, 7.0))).sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 2, 3, 0, 0, 6])


def test_fake_quant_weights_is_the_converter_grid_with_identity_gradient():
    w = Tensor(np.random.default_rng(0).normal(size=(4, 3, 3, 2)), requires_grad=True)
    y = fake_quant_weights(w, axis=0)
    s = weight_scales(w.data, 0)
    want = quantize_weights(w.data, s, 0) * s.astype(np.float64)[:, None, None, None]
    np.testing.assert_allclose(y.data, want, rtol=1e-12)
    assert len(np.unique(y.data[1])) <= 255
    g = np.random.default_rng(1).normal(size=w.shape)
    y.backward(g)
    np.testing.assert_array_equal(w.grad, g)


# ---- the QAT model ----------------------------------------------------------------------------
def test_qat_inference_emulates_the_int8_model(spiral_model):
    m, x, y, xt, yt = spiral_model
    qat = quantize_aware(m, representative_data=x[:500])
    q = quantize(qat)
    # before any training, the ranges are PTQ's min/max: the same int8 model
    ptq = quantize(m, x[:500])
    for name, t in q.tensors.items():
        assert float(t.scale.max()) == pytest.approx(float(ptq.tensors[name].scale.max()), rel=1e-6)
    float_qat, int8 = qat.predict(xt), q.predict(xt)
    # Fake quant rounds where the int8 kernels round, but in float arithmetic: a value at a
    # rounding boundary may land one step apart. Measured: 99.3% of the softmax outputs are
    # identical, the largest difference is 6/256.
    assert np.mean(float_qat == int8) > 0.97
    assert np.abs(float_qat - int8).max() <= 12 / 256
    assert np.mean(float_qat.argmax(1) == int8.argmax(1)) > 0.99


def test_qat_trains_the_original_weights_and_freezes_bn_statistics():
    mt_random.seed(2)
    x = np.random.default_rng(2).normal(size=(64, 6, 6, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    m = Sequential([L.Conv2D(4, 3, input_shape=(6, 6, 1)), L.BatchNormalization(), L.ReLU(),
                    L.Flatten(), L.Dropout(0.2), L.Dense(2, activation="softmax")])
    conv, bn = m.layers[0], m.layers[1]
    kernel, gamma = conv.weights["kernel"], bn.weights["gamma"]
    before = {n: t.data.copy() for n, t in list(conv.weights.items()) + list(bn.weights.items())}
    qat = quantize_aware(m, representative_data=x)
    qat.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    qat.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert conv.weights["kernel"] is kernel and bn.weights["gamma"] is gamma
    assert not np.allclose(kernel.data, before["kernel"])             # trained in place
    assert not np.allclose(gamma.data, before["gamma"])               # gamma/beta train
    np.testing.assert_array_equal(bn.weights["moving_mean"].data, before["moving_mean"])
    np.testing.assert_array_equal(bn.weights["moving_variance"].data, before["moving_variance"])
    # the fine-tuned float model is a normal model again: its own predict uses the new weights
    assert m.predict(x).shape == (64, 2)


def test_ranges_move_by_ema_in_training_and_freeze_in_inference():
    m = Sequential([L.Dense(1, input_shape=[1])])
    m.layers[0].set_weights([np.array([[1.0]]), np.array([0.0])])
    qat = quantize_aware(m, momentum=0.9)
    x1 = np.array([[-1.0], [1.0]], np.float32)
    qat.compile("sgd", "mse")
    out = qat.forward(Tensor(x1), training=False)
    np.testing.assert_array_equal(out.data, x1)                       # no range yet: float
    assert qat.ranges() == {}
    qat.forward(Tensor(x1), training=True)                            # first batch starts it
    assert qat.ranges()[m.input_name] == (-1.0, 1.0)
    first = qat.ranges()[m.layers[0].name]
    out = qat.forward(Tensor(3 * x1), training=True)
    # input: 0.9 * 1 + 0.1 * 3 = 1.2
    np.testing.assert_allclose(qat.ranges()[m.input_name], (-1.2, 1.2), rtol=1e-6)
    # the Dense output saw the input clamped to that range: its range moved 10% of the way
    # from the first batch's towards this batch's (the batch before its own fake quant is
    # the fake-quantized input times the weight 1.0, which `out` equals up to rounding)
    lo, hi = qat.ranges()[m.layers[0].name]
    assert first[0] > lo > out.data.min() - 0.01 and first[1] < hi < out.data.max() + 0.01
    np.testing.assert_allclose(hi, 0.9 * first[1] + 0.1 * 1.2, atol=0.01)
    frozen = qat.ranges()
    qat.forward(Tensor(10 * x1), training=False)
    assert qat.ranges() == frozen
    # the converter uses exactly these ranges
    q = quantize(qat)
    for name, (lo, hi) in frozen.items():
        assert (q.tensors[name].scale, int(q.tensors[name].zero_point)) == activation_params(lo, hi)


def test_quantize_untrained_qat_needs_data():
    m = Sequential([L.Dense(2, input_shape=[3])])
    qat = quantize_aware(m)
    with pytest.raises(QuantizationError, match="no range for.*fit it first or pass "
                                                "representative_data"):
        quantize(qat)
    q = quantize(qat, representative_data=np.random.default_rng(0).normal(size=(10, 3)))
    assert q.ops[0].kind == "fully_connected"
    with pytest.raises(TypeError, match="already quantization-aware"):
        QATModel(qat)


def test_qat_recovers_accuracy_that_ptq_loses():
    """A spiral classifier with one outlier hidden unit: unit 0 of the second layer gets
    its input weights and bias times 300 and its output weights / 300. ReLU is positively
    homogeneous, so the float model is unchanged, but that unit now sets the per-tensor
    int8 scale of the whole activation and the other 31 units keep only a few levels.
    Measured (seed 1): float 0.994, PTQ 0.80, QAT (15 epochs) 0.97."""
    m, x, y, xt, yt = trained_spiral(seed=1)
    l1, l2 = m.layers[1], m.layers[2]
    k, b = l1.get_weights()
    k[:, 0], b[0] = 300 * k[:, 0], 300 * b[0]
    w2, b2 = l2.get_weights()
    w2[0] /= 300
    l1.set_weights([k, b])
    l2.set_weights([w2, b2])
    acc_float = accuracy(m.predict(xt), yt)
    ptq = quantize(m, x[:500])
    acc_ptq = ptq.evaluate(xt, yt)
    assert acc_float > 0.97
    assert acc_ptq < acc_float - 0.1                       # PTQ clearly loses
    # the report points at the cause: one channel of layer 1's output spans ~300x the others
    rep = quantization_report(m, ptq, xt[:300])
    assert rep.rows[1].name == l1.name and rep.rows[1].spread > 100
    assert "Outlier channels" in str(rep) and f"{l1.name!r} (" in str(rep)

    qat = quantize_aware(m, representative_data=x[:500])
    qat.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    qat.fit(x, y, epochs=15, verbose=0)
    q = quantize(qat)
    acc_qat = q.evaluate(xt, yt)
    assert acc_qat > acc_ptq + 0.1                         # QAT recovers
    assert acc_qat > acc_float - 0.05
    assert abs(accuracy(qat.predict(xt), yt) - acc_qat) < 0.02   # as the QAT model predicted


@requires_tflm
def test_qat_int8_model_equals_tflite_micro():
    m, x, y, xt, yt = trained_spiral(seed=4)      # its own model: fit changes the weights
    qat = quantize_aware(m, representative_data=x[:500])
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(x[:400], y[:400], epochs=1, verbose=0)
    q = quantize(qat)
    xq = q.quantize_input(xt[:200])
    np.testing.assert_array_equal(q.predict_int8(xq), tflm.run_tflm(q, xq))
