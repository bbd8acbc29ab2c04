"""Post-training quantization: lowering, calibration, TFLite's parameter rules, accuracy,
bit-exactness with TensorFlow Lite Micro, and clear errors.

Oracles: the float model itself (lowering and BN folding must not change its function),
TFLite's formulas worked by hand on small numbers (each pinned value says how it was
computed), index-by-index loops for the weight layouts, and TFLM's interpreter for the
int8 outputs of quantized trained models.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitiny.random as mt_random
from minitiny import layers as L
from minitiny.datasets import load_sine, make_spirals
from minitiny.models import Model, Node, Sequential
from minitiny.quant import tflm
from minitiny.quant.calibrate import (CalibrationError, MinMaxObserver, MovingAverageObserver,
                                      PercentileObserver, calibrate)
from minitiny.quant.lower import LoweringError, lower
from minitiny.quant.quantizer import (MIN_RANGE, activation_params, quantize, quantize_bias,
                                      quantize_weights, weight_scales)
from minitiny.quant.report import quantization_report

requires_tflm = pytest.mark.skipif(not tflm.available(),
                                   reason="tflite-micro (TFLM's interpreter) is not installed")


# ---- data and models ---------------------------------------------------------------------
def bars(n, seed=0):
    """8x8 noisy images of a horizontal (0), vertical (1) or diagonal (2) bar."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, n)
    i = np.arange(8)
    for k in range(n):
        p = rng.integers(1, 7)
        if y[k] == 0:
            x[k, p, :, 0] += 1.5
        elif y[k] == 1:
            x[k, :, p, 0] += 1.5
        else:
            x[k, i, i if p % 2 else 7 - i, 0] += 1.5
    return x, y


def randomize_bn(model, seed=0):
    """Give every BN layer non-trivial statistics so that folding has something to fold."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.weights["gamma"].shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c),
                               rng.normal(0, 0.5, c), rng.uniform(0.2, 3, c)])


def cnn():
    """Conv + BN + ReLU, depthwise (multiplier 2) + BN + ReLU6, a residual Add, pools."""
    inp = L.Input((8, 8, 1))
    h = L.Conv2D(8, 3, padding="same")(inp)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    d = L.DepthwiseConv2D(3, padding="same")(h)
    d = L.BatchNormalization()(d)
    d = L.ReLU(6.0)(d)
    h = L.Add()([h, d])
    h = L.MaxPooling2D()(h)
    h = L.Conv2D(12, 3, padding="same", activation="relu")(h)
    h = L.GlobalAveragePooling2D()(h)
    out = L.Dense(3, activation="softmax")(h)
    return Model(inp, out)


@pytest.fixture(scope="module")
def sine_model():
    mt_random.seed(0)
    (x, y), (xt, yt) = load_sine(1000, noise=0.0)
    m = Sequential([L.Dense(16, activation="relu", input_shape=[1]),
                    L.Dense(16, activation="relu"), L.Dense(1)])
    m.compile("adam", "mse")
    m.fit(x, y, epochs=150, verbose=0)
    return m, x, xt, yt


@pytest.fixture(scope="module")
def spiral_model():
    mt_random.seed(1)
    x, y = make_spirals(400)
    m = Sequential([L.Dense(32, activation="relu", input_shape=[2]),
                    L.Dense(32, activation="relu"), L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=60, verbose=0)
    return m, x, *make_spirals(300, seed=1)


@pytest.fixture(scope="module")
def cnn_model():
    mt_random.seed(2)
    x, y = bars(600)
    m = cnn()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=20, verbose=0)
    return m, x, *bars(300, seed=1)


# ---- 1. lowering -----------------------------------------------------------------------------
def every_kind_model():
    """Every supported layer kind once, BN with random statistics, some layers without bias."""
    mt_random.seed(3)
    inp = L.Input((9, 9, 2))
    a = L.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(inp)   # (5, 5, 4)
    a = L.BatchNormalization()(a)
    a = L.Activation("relu")(a)
    b = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu6")(a)
    b = L.Conv2D(4, 1)(b)                                           # (5, 5, 4)
    b = L.BatchNormalization()(b)
    s = L.Add()([a, b])
    s = L.ReLU()(s)
    p = L.MaxPooling2D(2, strides=1)(s)                             # (4, 4, 4)
    p = L.AveragePooling2D(3, strides=2, padding="same")(p)         # (2, 2, 4)
    p = L.Dropout(0.5)(p)
    f = L.Flatten()(p)
    d = L.Dense(6)(f)
    d = L.BatchNormalization()(d)
    d = L.Activation("tanh")(d)
    r = L.Reshape((1, 2, 3))(d)
    g = L.GlobalAveragePooling2D()(r)
    out = L.Dense(2, activation="sigmoid", use_bias=False)(g)
    model = Model(inp, out)
    randomize_bn(model)
    x = np.random.default_rng(0).normal(size=(64, 9, 9, 2)).astype(np.float32)
    return model, x


def test_lowering_every_layer_kind_keeps_the_function():
    """The lowered float graph computes what the model computes (float64 vs float32:
    agreement to float32 precision)."""
    model, x = every_kind_model()
    graph = lower(model)

    kinds = [op.kind for op in graph.ops]
    assert kinds == ["conv_2d", "depthwise_conv_2d", "conv_2d", "add", "max_pool_2d",
                     "average_pool_2d", "reshape", "fully_connected", "tanh", "reshape",
                     "mean", "fully_connected", "logistic"]
    conv, dw, pw, add = graph.ops[:4]
    assert conv.options["activation"] == "relu" and conv.bn is not None     # BN + Activation fused
    assert dw.options == {"stride": (1, 1), "padding": "same", "depth_multiplier": 2,
                          "activation": "relu6"}
    assert pw.bn is not None and pw.options["activation"] == "none"
    assert add.options["activation"] == "relu" and add.inputs == [conv.name, pw.name]
    assert graph.ops[7].bn is not None                                      # Dense + BN
    assert graph.ops[10].options == {"axes": (0, 1), "keep_dims": False}

    want = model.predict(x)
    got = graph.run(x)[graph.output]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_bn_folding_matches_the_unfolded_layers_tightly():
    """Conv2D -> BN and Dense -> BN with large, varied statistics: folded weights give the
    same output as conv-then-BN, in float64 (so any error is the formula's, not rounding)."""
    mt_random.seed(4)
    m = Sequential([L.Conv2D(5, 3, input_shape=(6, 6, 3), dtype="float64"),
                    L.BatchNormalization(epsilon=1e-2, dtype="float64"), L.Flatten(dtype="float64"),
                    L.Dense(4, dtype="float64"), L.BatchNormalization(dtype="float64")])
    randomize_bn(m, seed=5)
    graph = lower(m)
    assert [op.kind for op in graph.ops] == ["conv_2d", "reshape", "fully_connected"]
    x = np.random.default_rng(1).normal(size=(8, 6, 6, 3))
    np.testing.assert_allclose(graph.run(x)[graph.output], m.predict(x), rtol=1e-10, atol=1e-10)


def test_weight_layouts_index_by_index():
    """TFLite layouts checked element by element against the Keras kernels (no BN)."""
    mt_random.seed(5)
    m = Sequential([L.Conv2D(3, (2, 3), input_shape=(5, 5, 2)),
                    L.DepthwiseConv2D((3, 2), depth_multiplier=2), L.Flatten(), L.Dense(4)])
    graph = lower(m)
    conv, dw, _, fc = graph.ops
    k = m.layers[0].weights["kernel"].data                                   # (kh, kw, in, out)
    for o in range(3):
        for i in range(2):
            for j in range(3):
                for c in range(2):
                    assert conv.weight[o, i, j, c] == k[i, j, c, o]
    k = m.layers[1].weights["depthwise_kernel"].data                         # (kh, kw, in, m)
    assert dw.weight.shape == (1, 3, 2, 6)
    for i in range(3):
        for j in range(2):
            for c in range(3):
                for mm in range(2):
                    assert dw.weight[0, i, j, c * 2 + mm] == k[i, j, c, mm]
    k = m.layers[3].weights["kernel"].data                                   # (in, out)
    assert fc.weight.shape == (4, k.shape[0])
    for o in range(4):
        np.testing.assert_array_equal(fc.weight[o], k[:, o])


def test_activation_fusion_rules():
    """relu/relu6 fuse into their producer only if nothing else reads the producer's output;
    a second activation after a fused one, or after a reshape, becomes its own op."""
    inp = L.Input((4,))
    a = L.Dense(3, name="shared")(inp)
    r = L.ReLU(name="relu_a")(a)                 # `shared` is also read by the Add below
    s = L.Add(name="sum")([a, r])
    d = L.Dense(3, activation="relu", name="d2")(s)
    d = L.Activation("relu6", name="again")(d)   # d2 already carries relu
    d = L.Activation("linear", name="nothing")(d)
    m = Model(inp, d)
    graph = lower(m)
    assert [(op.kind, op.name, op.options.get("activation")) for op in graph.ops] == [
        ("fully_connected", "shared", "none"), ("relu", "relu_a", None),
        ("add", "sum", "none"), ("fully_connected", "d2", "relu"), ("relu6", "again", None)]
    assert graph.output == "again"
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(graph.run(x)[graph.output], m.predict(x), rtol=1e-5, atol=1e-6)

    # Readers pass through layers that lower to nothing (Dropout, a Flatten of a flat value):
    # `shared2` is read by the Add too, so the ReLU behind Dropout + Flatten cannot fuse.
    inp = L.Input((4,))
    a = L.Dense(3, name="shared2")(inp)
    r = L.ReLU(name="relu_b")(L.Flatten()(L.Dropout(0.1)(a)))
    m = Model(inp, L.Add(name="sum2")([a, r]))
    graph = lower(m)
    assert [(op.kind, op.options.get("activation")) for op in graph.ops] == [
        ("fully_connected", "none"), ("relu", None), ("add", "none")]
    np.testing.assert_allclose(graph.run(x)[graph.output], m.predict(x), rtol=1e-5, atol=1e-6)


# ---- 2. parameters: TFLite's formulas, by hand ------------------------------------------------
def test_activation_params_tflite_rule():
    # [-1, 3]: scale = 4/255; zero point = round(-128 - (-1)/(4/255)) = round(-64.25) = -64
    assert activation_params(-1.0, 3.0) == (np.float32(4 / 255), -64)
    # [0.5, 6] is extended to [0, 6]: scale 6/255, zero point -128
    assert activation_params(0.5, 6.0) == (np.float32(6 / 255), -128)
    # [-2, -1] is extended to [-2, 0]: zero point = round(-128 + 255) = 127
    assert activation_params(-2.0, -1.0) == (np.float32(2 / 255), 127)
    # scale exactly 1/8 (range 255/8), min = -25.5/8: -128 + 25.5 = -102.5 rounds AWAY from
    # zero to -103 (NumPy's half-to-even would give -102)
    assert activation_params(-25.5 / 8, 229.5 / 8) == (np.float32(0.125), -103)
    # a constant tensor (all zeros) gets the documented range [0, 1]: scale 1/255, never 0
    assert activation_params(0.0, 0.0) == (np.float32(1 / 255), -128)
    scale, _ = activation_params(0.0, 1e-9)
    assert scale == np.float32(1 / 255)


@given(lo=st.floats(-1e4, 1e4), width=st.floats(0, 2e4))
def test_activation_params_cover_the_range_and_hold_zero_exactly(lo, width):
    hi = lo + width
    scale, zp = activation_params(lo, hi)
    assert scale.dtype == np.float32 and scale > 0 and -128 <= zp <= 127
    lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
    s = float(scale)
    # real 0 is the integer zp exactly; the nudge moves the range by at most half a step
    if hi0 - lo0 >= MIN_RANGE:
        slack = 0.5 * s + 1e-5 * (hi0 - lo0)
        assert s * (-128 - zp) <= lo0 + slack
        assert s * (127 - zp) >= hi0 - slack
        assert abs(255 * s - (hi0 - lo0)) <= 1e-5 * (hi0 - lo0)


@given(hnp.arrays(np.float64, (3, 5), elements=st.floats(-100, 100)))
def test_weight_quantization_error_is_at_most_half_a_step(w):
    s = weight_scales(w, axis=0)
    q = quantize_weights(w, s, 0)
    assert q.dtype == np.int8 and np.abs(q.astype(int)).max() <= 127
    err = np.abs(q * s.astype(np.float64)[:, None] - w)
    assert np.all(err <= s[:, None] * (0.5 + 1e-6))
    for c in range(3):                       # the largest weight of a channel is +-127
        if np.abs(w[c]).max() > 1e-30:       # (smaller ones are 0 in a float32 model anyway)
            assert np.abs(q[c].astype(int)).max() == 127


def test_weight_and_bias_quantization_by_hand():
    w = np.array([[0.5, -1.27], [0.0, 0.0], [2.54, 1.0]])
    s = weight_scales(w, axis=0)
    # channel 0: 1.27/127 = 0.01; channel 2: 2.54/127 = 0.02; the zero channel 1 borrows the
    # largest scale, 0.02
    np.testing.assert_allclose(s, [0.01, 0.02, 0.02], rtol=1e-7)
    assert s.dtype == np.float32
    # 0.5/0.01 = 50, -1.27/0.01 = -127; 2.54/0.02 = 127, 1/0.02 = 50
    np.testing.assert_array_equal(quantize_weights(w, s, 0), [[50, -127], [0, 0], [127, 50]])
    assert weight_scales(w, per_channel=False) == np.float32(2.54 / 127)
    # bias 0.3 at input scale 0.5 and weight scale 0.01: 0.3 / 0.005 = 60; -0.0125/0.005 =
    # -2.5 rounds away from zero to -3
    q, bs = quantize_bias(np.array([0.3, -0.0125]), np.float32(0.5), np.float32([0.01, 0.01]), "t")
    np.testing.assert_array_equal(q, [60, -3])
    assert q.dtype == np.int32
    np.testing.assert_allclose(bs, [0.005, 0.005], rtol=1e-7)


def test_quantize_tiny_dense_by_hand():
    """y = 2x + 1 on x in [-1, 3]: every tensor's params follow from the formulas above."""
    m = Sequential([L.Dense(1, input_shape=[1])])
    m.layers[0].set_weights([np.array([[2.0]]), np.array([1.0])])
    x = np.linspace(-1, 3, 41, dtype=np.float32)[:, None]
    q = quantize(m, x)
    t = q.tensors
    assert (t[q.inputs[0]].scale, t[q.inputs[0]].zero_point) == (np.float32(4 / 255), -64)
    # output range [-1, 7]: scale 8/255, zero point round(-128 + 1 / (8/255)) = round(-96.125)
    out = t[q.outputs[0]]
    assert (out.scale, out.zero_point) == (np.float32(8 / 255), -96)
    w, b = t[q.ops[0].inputs[1]], t[q.ops[0].inputs[2]]
    assert w.data.tolist() == [[127]] and w.scale.tolist() == [np.float32(2 / 127)]
    # bias 1 / (4/255 * 2/127) = 255 * 127 / 8 = 4048.125 -> 4048
    assert b.data.tolist() == [4048]
    np.testing.assert_allclose(q.predict(x), 2 * x + 1, atol=2 * 8 / 255)


def test_fixed_and_inherited_output_params():
    mt_random.seed(6)
    m = Sequential([L.Conv2D(4, 3, input_shape=(6, 6, 1)), L.MaxPooling2D(),
                    L.AveragePooling2D(), L.Flatten(), L.Dense(3, activation="tanh"),
                    L.Dense(3, activation="sigmoid"), L.Dense(3, activation="softmax")])
    x = np.random.default_rng(3).normal(size=(32, 6, 6, 1)).astype(np.float32)
    q = quantize(m, x)
    out = {op.kind: q.tensors[op.outputs[0]] for op in q.ops}
    params = {kind: (float(t.scale), int(t.zero_point)) for kind, t in out.items()}
    conv = params["conv_2d"]
    assert params["max_pool_2d"] == params["average_pool_2d"] == params["reshape"] == conv
    assert params["tanh"] == (1 / 128, 0)
    assert params["logistic"] == params["softmax"] == (1 / 256, -128)


def test_observers():
    values = np.concatenate([np.linspace(0, 1, 100000), [1000.0]])
    mm, pc = MinMaxObserver(), PercentileObserver(99.9)
    for batch in np.split(values[:-1], 10) + [values[-1:]]:
        mm.update(batch, 11)
        pc.update(batch, 11)
    assert mm.range() == (0.0, 1000.0)
    lo, hi = pc.range()                      # the 99.9th percentile of ~U(0, 1) is ~0.999
    assert lo == 0.0 and 0.98 < hi < 1.0
    ema = MovingAverageObserver(momentum=0.9)
    ema.update(np.array([-1.0, 1.0]))
    ema.update(np.array([-3.0, 3.0]))
    # 0.9 * 1 + 0.1 * 3 = 1.2 (and -1.2)
    np.testing.assert_allclose(ema.range(), (-1.2, 1.2))
    assert MinMaxObserver().update(np.array([2.0, 5.0])) is None


def test_percentile_observer_rescues_an_outlier_input():
    """One huge input sample ruins min/max calibration; the percentile observer clips it."""
    mt_random.seed(7)
    x, y = make_spirals(200)
    m = Sequential([L.Dense(16, activation="relu", input_shape=[2]), L.Dense(3)])
    rep = np.concatenate([x[:299], [[300.0, -300.0]]]).astype(np.float32)
    ranges = calibrate(lower(m), rep)
    assert ranges[m.input_name] == (-300.0, 300.0)
    q_mm = quantize(m, rep)
    q_pc = quantize(m, rep, observer="percentile", percentile=99.5)
    assert float(q_pc.input.scale) < float(q_mm.input.scale) / 50
    err = lambda q: np.abs(q.predict(x) - m.predict(x)).mean()
    assert err(q_pc) < err(q_mm) / 5


# ---- 3. accuracy of trained models -------------------------------------------------------------
def test_sine_regression_keeps_its_mse(sine_model):
    m, x, xt, yt = sine_model
    mse_float = float(np.mean((m.predict(xt) - yt) ** 2))
    q = quantize(m, x[:500])
    mse_int8 = q.evaluate(xt, yt)
    # y has variance 0.5: a quantizer with a wrong scale or zero point lands near that
    assert mse_float < 0.03
    assert mse_int8 < mse_float + 0.005


def test_spiral_classifier_keeps_its_accuracy(spiral_model):
    m, x, xt, yt = spiral_model
    acc_float = float(np.mean(m.predict(xt).argmax(1) == yt))
    acc_int8 = quantize(m, x[:500]).evaluate(xt, yt)
    assert acc_float > 0.95
    assert acc_int8 >= acc_float - 0.02
    acc_tensor = quantize(m, x[:500], per_channel_dense=False).evaluate(xt, yt)
    assert acc_tensor >= acc_float - 0.03
    for observer in ("percentile", "moving_average"):
        assert quantize(m, x[:500], observer=observer, batch_size=50).evaluate(xt, yt) \
            >= acc_float - 0.03
    with pytest.raises(ValueError, match="unknown observer 'median'.*minmax, percentile"):
        quantize(m, x[:500], observer="median")


def test_cnn_with_bn_depthwise_and_residual_keeps_its_accuracy(cnn_model):
    m, x, xt, yt = cnn_model
    acc_float = float(np.mean(m.predict(xt).argmax(1) == yt))
    q = quantize(m, x[:300])
    assert [op.kind for op in q.ops] == ["conv_2d", "depthwise_conv_2d", "add", "max_pool_2d",
                                         "conv_2d", "mean", "fully_connected", "softmax"]
    assert acc_float > 0.9
    assert q.evaluate(xt, yt) >= acc_float - 0.03
    # the softmax outputs agree closely, not just the argmax
    assert np.abs(q.predict(xt) - m.predict(xt)).mean() < 0.02


# ---- 4. bit-exact with TFLite Micro -------------------------------------------------------------
@requires_tflm
@pytest.mark.parametrize("name", ["sine_model", "spiral_model", "cnn_model"])
def test_int8_outputs_equal_tflite_micro(name, request):
    m, x, xt = request.getfixturevalue(name)[:3]
    q = quantize(m, x[:300])
    xq = q.quantize_input(xt[:150])
    ours = q.predict_int8(xq)
    theirs = tflm.run_tflm(q, xq)
    assert ours.dtype == theirs.dtype == np.int8
    np.testing.assert_array_equal(ours, theirs)


@requires_tflm
def test_every_op_kind_equals_tflite_micro():
    model, x = every_kind_model()
    q = quantize(model, x)
    assert np.abs(q.predict(x) - model.predict(x)).max() < 0.02        # sigmoid outputs
    xq = q.quantize_input(x)
    np.testing.assert_array_equal(q.predict_int8(xq), tflm.run_tflm(q, xq))


# ---- 5. the report ----------------------------------------------------------------------------
def test_report_rows_and_divergence(spiral_model):
    m, x, xt, yt = spiral_model
    q = quantize(m, x[:500])
    rep = quantization_report(m, q, xt, yt)
    assert [r.name for r in rep.rows] == [op.name for op in q.ops]
    assert rep.first_divergent is None
    assert rep.metric == "accuracy" and rep.int8_metric == q.evaluate(xt, yt)
    first = rep.rows[0]
    # independent check of the first row: dequantized int8 output of op 0 vs float Dense+ReLU
    k, b = m.layers[0].get_weights()
    want = np.maximum(xt.astype(np.float64) @ k + b, 0)
    got = q.tensors[q.ops[0].outputs[0]].dequantize(
        q.predict_int8(q.quantize_input(xt), return_all=True)[q.ops[0].outputs[0]])
    assert first.rmse == pytest.approx(np.sqrt(np.mean((got - want) ** 2)), rel=1e-4)
    assert first.sqnr_db > 25 and all(r.lsb < 5 for r in rep.rows)
    text = str(rep)
    assert "No op exceeds" in text and "accuracy: float" in text and q.ops[-1].name in text

    # Break one layer's weights after quantization: the report must name that op first.
    broken = quantize(m, x[:500])
    w = broken.tensors[broken.ops[1].inputs[1]]
    w.data = np.ascontiguousarray(-w.data)
    rep = quantization_report(m, broken, xt, yt)
    assert rep.first_divergent is not None and rep.first_divergent.name == broken.ops[1].name
    assert rep.first_divergent.alone_lsb > 5
    assert f"First op to diverge: {broken.ops[1].name!r}" in str(rep)


# ---- 6. errors ----------------------------------------------------------------------------------
def test_nan_weights_name_the_layer():
    m = Sequential([L.Dense(4, input_shape=[3], name="encoder"), L.Dense(2, name="head")])
    m.layers[1].weights["kernel"].data[1, 0] = np.nan
    with pytest.raises(LoweringError, match=r"'head'.*'kernel'.*1 NaN/inf.*\(1, 0\)"):
        quantize(m, np.zeros((4, 3), np.float32))


def test_nan_or_bad_representative_data():
    m = Sequential([L.Dense(2, input_shape=[3])])
    x = np.ones((5, 3), np.float32)
    x[2, 1] = np.inf
    with pytest.raises(CalibrationError, match="representative_data.*NaN/inf.*\\(2, 1\\)"):
        quantize(m, x)
    with pytest.raises(CalibrationError, match=r"shape \(5, 4\).*\(N, 3\)"):
        quantize(m, np.ones((5, 4)))
    with pytest.raises(CalibrationError, match="needs representative_data"):
        quantize(m)


def test_constant_activation_gets_a_safe_scale():
    """A dead ReLU layer (all outputs 0) quantizes without dividing by zero and stays 0."""
    m = Sequential([L.Dense(3, activation="relu", input_shape=[2]), L.Dense(2)])
    m.layers[0].set_weights([np.zeros((2, 3)), -np.ones(3)])
    m.layers[1].set_weights([np.ones((3, 2)), np.array([0.5, -0.25])])
    x = np.random.default_rng(4).normal(size=(20, 2)).astype(np.float32)
    q = quantize(m, x)
    dead = q.tensors[q.ops[0].outputs[0]]
    assert float(dead.scale) == np.float32(1 / 255) and int(dead.zero_point) == -128
    np.testing.assert_allclose(q.predict(x), np.tile([0.5, -0.25], (20, 1)), atol=0.25 / 255 * 0.6)


def test_huge_bias_raises_the_weight_scale_instead_of_overflowing():
    m = Sequential([L.Dense(2, input_shape=[1])])
    m.layers[0].set_weights([np.array([[1e-7, 1.0]]), np.array([50.0, 0.0])])
    x = np.linspace(-1, 1, 11, dtype=np.float32)[:, None]
    q = quantize(m, x)
    b = q.tensors[q.ops[0].inputs[2]].data
    assert np.abs(b.astype(np.int64)).max() < 2 ** 31 - 1
    np.testing.assert_allclose(q.predict(x), m.predict(x), atol=0.5)


def test_unsupported_layer_is_named_with_the_supported_list():
    class Square(L.Layer):
        def call(self, x, training=False):
            return x * x
    m = Sequential([L.Dense(2, input_shape=[3]), Square(name="sq")])
    with pytest.raises(LoweringError, match=r"'sq' \(Square\) has no int8 equivalent.*Dense, "
                                            r"Conv2D"):
        quantize(m, np.ones((2, 3)))
    m = Sequential([L.Dense(2, input_shape=[3]), L.ReLU(max_value=3.0, name="r3")])
    with pytest.raises(LoweringError, match="'r3'.*max_value=3.0"):
        quantize(m, np.ones((2, 3)))


def test_batchnorm_in_a_position_that_cannot_fold():
    m = Sequential([L.Conv2D(2, 3, input_shape=(6, 6, 1)), L.MaxPooling2D(name="pool"),
                    L.BatchNormalization(name="bn_pool")])
    with pytest.raises(LoweringError, match="'bn_pool'.*follows 'pool' \\(MaxPooling2D\\)"):
        lower(m)
    m = Sequential([L.Dense(3, activation="relu", input_shape=[2], name="fc"),
                    L.BatchNormalization(name="bn_relu")])
    with pytest.raises(LoweringError, match="'bn_relu'.*'fc'.*linear activation"):
        lower(m)
    inp = L.Input((3,))
    a = L.Dense(3, name="fc2")(inp)
    n = L.BatchNormalization(name="bn_shared")(a)
    m = Model(inp, L.Add()([a, n]))
    with pytest.raises(LoweringError, match="'bn_shared'.*also feeds other layers"):
        lower(m)
    m = Sequential([L.BatchNormalization(name="bn_in", input_shape=[3]), L.Dense(2)])
    with pytest.raises(LoweringError, match="'bn_in'.*the model input"):
        lower(m)


def test_dense_on_an_image_suggests_flatten():
    """The engine's Dense refuses a rank-3 input itself; the quantizer still guards a graph
    that reaches it (e.g. built by hand)."""
    conv = L.Conv2D(2, 3)
    conv.ensure_built((5, 5, 1))
    dense = L.Dense(2)
    dense.ensure_built((18,))

    class Graph:
        name, input_name, input_shape = "g", "x", (5, 5, 1)
        graph = [Node(conv, ["x"]), Node(dense, [conv.name])]
    with pytest.raises(LoweringError, match=f"'{dense.name}'.*\\(N, 3, 3, 2\\).*Flatten"):
        lower(Graph())
