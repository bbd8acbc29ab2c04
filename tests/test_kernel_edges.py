"""The int8 kernels where users go past the everyday ranges: softmax over up to TFLM's
largest depth, and logistic, tanh, softmax, add and fully_connected with input, weight and
output scales anywhere from 1e-30 to 1e30.

Each drawn model is either refused by Prepare, for a reason the test recomputes on its own
(TFLM's behaviour there is undefined, or its own checks fail), or run three ways on inputs
that include the worst case for the op: minitiny's NumPy reference, TensorFlow Lite Micro
(through minitiny's .tflite writer) and the generated C built under ASan/UBSan on the host.
All three must give the same int8 outputs. Hypothesis draws few of these (each builds a C
executable) per CI run and many under HYPOTHESIS_PROFILE=thorough.
"""
import re
import struct
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
import minitiny as mt
from minitiny import codegen
from minitiny.quant import tflm
from minitiny.quant.graph import GraphError, QModel
from minitiny.quant.kernels import logistic_tanh, softmax
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

# Each example compiles a sanitized executable (~1 s): a few per CI run, many more in the
# thorough profile (its max_examples is 500, CI's 25).
FEW = settings(max_examples=max(4, settings().max_examples // 5))
exponents = st.floats(-30, 30, allow_nan=False)        # scales 10^e, 1e-30 .. 1e30
zero_points = st.integers(-128, 127)


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "int8 kernels at the edges vs TFLM")


def run_three_ways(model, x, label):
    """NumPy == TFLM (through the writer) == host C under ASan/UBSan, on int8 inputs x."""
    xs = x if isinstance(x, list) else [x]
    O.check_against_tflm(model, xs, label=label)
    if len(xs) > 1:
        return                                # the C harness feeds one input tensor
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="m")
        got = codegen.load(d, sanitize=True)(xs[0])
    np.testing.assert_array_equal(got, model.predict_int8(xs[0]), err_msg=f"{label}: C vs NumPy")


def f32(e):
    return np.float32(10.0 ** e)


def relu6_bound_overflows(activation, s_out):
    """TFLM's Quantize refuses roundf(6.0f / s_out) beyond INT32_MAX (and converts 2^31
    itself to int32_t, undefined)."""
    return activation == "relu6" and np.round(np.float32(6.0) / np.float32(s_out)) >= 2.0 ** 31


# ---------------------------------------------------------------------------------------
# Softmax: every depth TFLM runs on every input, and the first one it cannot
# ---------------------------------------------------------------------------------------
def softmax_rows(rng, depth):
    """Rows whose sum of exponentials is largest (all equal: depth * 1.0), one maximum
    among the lowest values, the extremes, and random rows."""
    x = O.int8_input(rng, (depth,), 6)
    x[0], x[1] = 0, 127
    x[2] = -128
    x[2, depth // 2] = 127
    return x


@O.requires_tflm
@FEW
@given(depth=st.one_of(st.integers(1, 16), st.integers(softmax.MAX_DEPTH - 100, softmax.MAX_DEPTH)),
       e=exponents, z=zero_points, beta=st.sampled_from([1.0, 0.1, 8.0]), seed=O.seeds)
def test_softmax_depths_and_scales(depth, e, z, beta, seed):
    b = O.Builder(seed, (depth,), "softmax", f32(e), z)
    # TFLM's QuantizeMultiplierGreaterThanOne checks beta * s * 2^26 > 1 (Q5.26 input).
    if float(beta) * float(f32(e)) * 2.0 ** 26 <= 1.0:
        with pytest.raises(GraphError, match="too small"):
            b.softmax(beta=beta).model()
        return
    model = b.softmax(beta=beta).model()
    run_three_ways(model, softmax_rows(np.random.default_rng(seed), depth), "softmax (edges)")


@O.requires_tflm
def test_softmax_at_the_largest_depth_with_equal_inputs():
    """Depth 511, all inputs equal: the sum of exponentials is 511 * 2^19 in Q12.19, the
    largest TFLM's final shift (num_bits_over_unit + 23 = 31 bits) can take."""
    for z, s in [(0, 0.05), (-128, 1e-3), (127, 30.0)]:
        model = O.Builder(0, (softmax.MAX_DEPTH,), "softmax", s, z).softmax().model()
        x = np.stack([np.full(softmax.MAX_DEPTH, v, np.int8) for v in (-128, 0, 127)])
        run_three_ways(model, x, "softmax (depth 511, equal inputs)")


def _softmax_512_file(monkeypatch):
    """A .tflite with a softmax over 512 values, written past minitiny's own check."""
    with monkeypatch.context() as m:
        m.setattr(softmax, "MAX_DEPTH", 4095)
        return to_tflite(O.Builder(0, (512,), "softmax", 0.05, 0).softmax().model())


def test_softmax_over_512_is_refused_at_quantize_and_import(monkeypatch):
    """The issue's reproducer: a 512-class softmax. TFLM aborts on an all-equal input (its
    output shift reaches 32 bits), so minitiny refuses the model, naming the limit."""
    inp = mt.layers.Input((512,))
    model = mt.Model(inp, mt.layers.Activation("softmax")(inp))
    data = np.random.default_rng(0).normal(size=(32, 512)).astype("f4")
    with pytest.raises(GraphError, match="softmax over 512 values.*at most 511"):
        mt.quantize(model, representative_data=data)
    with pytest.raises(GraphError, match="at most 511"):
        from_tflite(_softmax_512_file(monkeypatch))


@O.requires_tflm
def test_tflm_aborting_is_an_error_not_a_crash(monkeypatch):
    """TFLM itself SIGABRTs on that file; run_tflm runs it in a worker process, so the
    caller gets TFLMCrashed, and the next call works."""
    data = _softmax_512_file(monkeypatch)
    x = np.random.default_rng(1).integers(-128, 128, (2, 512)).astype(np.int8)
    assert tflm.run_tflm(data, x).shape == (2, 512)           # inputs it can run
    with pytest.raises(tflm.TFLMCrashed, match="SIGABRT"):
        tflm.run_tflm(data, np.zeros((1, 512), np.int8))    # sum of exps 512: abort
    assert tflm.run_tflm(data, x).shape == (2, 512)


# ---------------------------------------------------------------------------------------
# Logistic and tanh: input scales from 1e-30 to 1e30
# ---------------------------------------------------------------------------------------
def tflm_defines(s):
    """TFLM's Prepare shifts 1LL by frexp(s * 2^27)'s exponent: defined for 0 .. 62."""
    exponent = np.frexp(np.float64(s) * 2.0 ** 27)[1]
    return 0 <= exponent <= 62


@O.requires_tflm
@FEW
@given(kind=st.sampled_from(["logistic", "tanh"]), e=exponents, z=zero_points)
def test_logistic_and_tanh_scales(kind, e, z):
    if not tflm_defines(f32(e)):
        with pytest.raises(GraphError, match="2\\^-28|2\\^35"):
            O.elementwise_model(kind, f32(e), z)
        return
    run_three_ways(O.elementwise_model(kind, f32(e), z), O.ALL_INT8, f"{kind} (scales)")


@O.requires_tflm
@pytest.mark.parametrize("kind", ["logistic", "tanh"])
def test_logistic_and_tanh_every_accepted_binade(kind):
    """Every power of two (and the midpoints) from 2^-28 up to 2^35, all 256 inputs, vs TFLM."""
    for i, e in enumerate(np.arange(-28, 35, 0.5)):
        s = np.float32(2.0 ** e)
        assert tflm_defines(s)
        O.check_against_tflm(O.elementwise_model(kind, s, [0, -128, 127, 5][i % 4]), O.ALL_INT8,
                             label=f"{kind} (every binade)")


@O.requires_tflm
def test_tflm_is_undefined_where_minitiny_refuses(monkeypatch):
    """Why the limit: from 2^35 on TFLM's outputs stop being the saturation the maths (and
    minitiny's arithmetic) gives; below it they agree (the tests above)."""
    with monkeypatch.context() as m:
        m.setattr(logistic_tanh, "MAX_INPUT_SCALE", np.inf)
        model = O.elementwise_model("logistic", np.float32(2.0 ** 36), 0)
    saturated = np.where(O.ALL_INT8 <= 0, -128, 127)
    assert np.array_equal(model.predict_int8(O.ALL_INT8), saturated)
    assert not np.array_equal(tflm.run_tflm(model, O.ALL_INT8), saturated)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_the_issue_reproducer_is_refused_at_quantize_and_import(monkeypatch, activation):
    """Input(4) -> sigmoid (or tanh) calibrated on +-1e16 (input scale ~7.8e13): refused;
    on +-1e12 (scale ~7.8e9) quantized, and NumPy == TFLM."""
    inp = mt.layers.Input((4,))
    model = mt.Model(inp, mt.layers.Activation(activation)(inp))
    rng = np.random.default_rng(0)
    with pytest.raises(GraphError, match="2\\^35 or more"):
        mt.quantize(model, representative_data=rng.uniform(-1e16, 1e16, (64, 4)).astype("f4"))
    q = mt.quantize(model, representative_data=rng.uniform(-1e12, 1e12, (64, 4)).astype("f4"))
    if tflm.available():
        O.check_against_tflm(q, O.int8_input(rng, (4,), 64), label=f"{activation} (+-1e12)")
    good = O.elementwise_model("logistic", np.float32(2.0 ** 30), 0)
    data = to_tflite(good)
    scale = struct.pack("<f", 2.0 ** 30)
    assert data.count(scale) >= 1
    with pytest.raises(GraphError, match="2\\^35 or more"):
        from_tflite(data.replace(scale, struct.pack("<f", 2.0 ** 40)))


# ---------------------------------------------------------------------------------------
# Add and fully_connected: input, weight and output scales from 1e-30 to 1e30
# ---------------------------------------------------------------------------------------
@O.requires_tflm
@FEW
@given(e_a=exponents, e_b=exponents, e_out=st.floats(-8, 30), seed=O.seeds)
def test_add_scales(e_a, e_b, e_out, seed):
    """Output scale max(s_a, s_b) * 10^e_out: TFLM needs 2 max / (2^20 s_out) < 1."""
    s_a, s_b = f32(e_a), f32(e_b)
    b = O.Builder(seed, (256,), "add", s_a)
    other = b.input("x2", (256,), s_b)
    activation = O.ACTIVATIONS[seed % 3]
    b.add(other, activation=activation)
    with np.errstate(over="ignore"):                           # inf: refused below
        s_out = np.float32(max(s_a, s_b) * np.float32(10.0 ** e_out))
    b.tensors[b.cur].scale = s_out
    if (not (np.isfinite(s_out) and s_out > 0) or relu6_bound_overflows(activation, s_out)
            or 2.0 * max(float(s_a), float(s_b)) / (2 ** 20 * float(s_out)) >= 1):
        with pytest.raises(GraphError):
            QModel("add", b.tensors, b.ops, b.inputs, [b.cur])
        return
    model = QModel("add", b.tensors, b.ops, b.inputs, [b.cur])
    rng = np.random.default_rng(seed)
    O.check_against_tflm(model, [np.tile(O.ALL_INT8, (2, 1)), rng.permuted(np.tile(O.ALL_INT8, (2, 1)), axis=1)],
                         label="add (scales)")
    # The C takes one input: x (scale s_b) -> RELU requantized to s_a -> ADD(that, x) has
    # the same two input scales, where the RELU's multiplier s_b / s_a is below 2^31.
    if float(s_b) / float(s_a) < 2.0 ** 31:
        one = O.Builder(seed, (256,), "add1", s_b)
        x = one.cur
        one.relu(s_a, int(b.tensors["x"].zero_point)).add(x, activation=activation)
        one.tensors[one.cur].scale = s_out
        run_three_ways(one.model(), np.tile(O.ALL_INT8, (2, 1)), "add (scales, one input)")


@O.requires_tflm
@FEW
@given(e_in=exponents, e_w=exponents, e_m=st.floats(-12, 10), units=st.integers(1, 40),
       in_features=st.sampled_from([1, 7, 100, 1000]), seed=O.seeds)
def test_fully_connected_scales(e_in, e_w, e_m, units, in_features, seed):
    """Input and weight scales anywhere in 1e-30..1e30, the output scale set so that the
    real multiplier s_in s_w / s_out is 10^e_m (up to 1e10: refused from 2^31)."""
    rng = np.random.default_rng(seed)
    b = O.Builder(seed, (in_features,), "fc", f32(e_in))
    activation = O.ACTIVATIONS[seed % 3]
    b.dense(units, activation, per_channel=bool(seed % 2))
    w, bias, y = (b.tensors[n] for n in b.ops[0].inputs[1:] + b.ops[0].outputs)
    w.scale = np.broadcast_to(f32(e_w), w.scale.shape).astype(np.float32).copy()
    bias.scale = (np.float32(f32(e_in)) * w.scale).astype(np.float32)
    if not bias.scale.shape:
        bias.scale = np.float32(bias.scale)
    bias.data = rng.integers(-20000, 20000, bias.shape).astype(np.int32)
    product = np.float64(f32(e_in)) * np.float64(f32(e_w))
    y.scale = np.float32(product / 10.0 ** e_m)
    real = product / np.float64(y.scale)
    bias_scale = np.float32(f32(e_in)) * np.float32(f32(e_w))         # float32, as written
    refusable = (not np.isfinite(y.scale) or y.scale == 0 or not 0 < bias_scale < np.inf
                 or abs(float(bias_scale) - product) > 1e-6 * min(float(bias_scale), product)
                 or real >= 2.0 ** 31 or relu6_bound_overflows(activation, y.scale)
                 # TFLM: |s_in s_w - s_bias| / s_out <= 0.02 (first channel)
                 or not abs(product - float(np.ravel(bias_scale)[0])) / float(y.scale) <= 0.02)
    try:
        model = QModel("fc", b.tensors, b.ops, b.inputs, [b.cur])
    except GraphError:
        assert refusable, "refused a model TFLM runs"
        return
    assert real < 2.0 ** 31
    run_three_ways(model, O.int8_input(rng, (in_features,), 8), "fully_connected (scales)")


# ---------------------------------------------------------------------------------------
# The same edges reached from a float model: calibration data and weights 1e-30..1e30
# ---------------------------------------------------------------------------------------
@O.requires_tflm
@FEW
@given(e_x=exponents, e_w=st.floats(-30, 30), units=st.sampled_from([1, 10, 1000]),
       head=st.sampled_from(["softmax", "sigmoid", "tanh", "relu", None]), seed=O.seeds)
def test_quantized_float_models_at_extreme_scales(e_x, e_w, units, head, seed):
    """Input(16) -> Dense(units) [-> head], calibrated on data of magnitude 10^e_x with
    weights of magnitude 10^e_w: mt.quantize either refuses with a ValueError naming the
    problem (GraphError, QuantizationError) or gives a model where NumPy == TFLM == C."""
    rng = np.random.default_rng(seed)
    inp = mt.layers.Input((16,))
    y = mt.layers.Dense(units)(inp)
    if head is not None:
        y = mt.layers.Activation(head)(y)
    model = mt.Model(inp, y)
    dense = [layer for layer in model.layers if isinstance(layer, mt.layers.Dense)][0]
    dense.set_weights([rng.normal(0, 10.0 ** e_w, (16, units)), rng.normal(0, 10.0 ** e_w, units)])
    data = (rng.normal(0, 1, (64, 16)) * 10.0 ** e_x).astype(np.float32)
    try:
        q = mt.quantize(model, representative_data=data)
    except ValueError as e:                        # names the op or tensor, says what is wrong
        assert re.match(r"(op|input|tensor) '\w+'", str(e)), str(e)
        return
    run_three_ways(q, O.int8_input(rng, (16,), 16), f"float model -> {head or 'dense'} (scales)")
