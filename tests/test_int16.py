"""TFLite's 16x8 scheme: int16 activations (zero point 0), int8 weights, int64 bias.

Every op kind that runs in 16x8 (minitiny.quant.kernels.INT16_KINDS) is drawn here with
random shapes, scales, weights and biases and run two ways on int16 inputs that include
-32768 and 32767: minitiny's NumPy reference and TensorFlow Lite Micro's interpreter on the
`.tflite` file minitiny's writer makes. The outputs must be identical. Hypothesis draws the
configurations (a few large or extreme ones per CI run, many under
HYPOTHESIS_PROFILE=thorough). The importer is checked on the writer's files with float32
edges, and the checks of Prepare name what they refuse.
"""
import hashlib
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from minitiny.quant import kernels
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite, run_tflm_int8

pytestmark = O.requires_tflm
FEW = settings(max_examples=max(4, settings().max_examples // 5))


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "16x8 kernels vs TFLM")


# ---------------------------------------------------------------------------------------
# Building 16x8 models
# ---------------------------------------------------------------------------------------
def act(name, shape, scale):
    """An int16 activation: symmetric, zero point 0."""
    return QTensor(name, shape, "int16", np.float32(scale), 0)


def int16_input(rng, shape, n=6):
    """(n, *shape) int16, uniform, with -32768 and 32767 planted in every sample."""
    x = rng.integers(-32768, 32768, size=(n,) + tuple(shape)).astype(np.int16)
    flat = x.reshape(n, -1)
    flat[:, 0], flat[:, -1] = -32768, 32767
    return x


def model(name, tensors, ops, inputs, outputs):
    return QModel(name, {t.name: t for t in tensors}, ops, inputs, outputs)


def weighted(kind, rng, in_shape, s_in, spread, activation, bias, **cfg):
    """One FC / conv / depthwise op on an int16 input, its output scale set so the typical
    output is spread * 2^13 (spread 1: well inside int16, 100: mostly saturated)."""
    if kind == "fully_connected":
        w_shape, axis, fan_in = (cfg["units"], int(np.prod(in_shape))), 0, int(np.prod(in_shape))
        options = {"activation": activation}
    elif kind == "conv_2d":
        k = cfg["kernel"]
        w_shape, axis, fan_in = (cfg["out_c"], k, k, in_shape[2]), 0, k * k * in_shape[2]
        options = {"stride": (cfg["stride"],) * 2, "padding": cfg["padding"], "activation": activation}
    else:
        k, m = cfg["kernel"], cfg["depth_multiplier"]
        w_shape, axis, fan_in = (1, k, k, in_shape[2] * m), 3, k * k
        options = {"stride": (cfg["stride"],) * 2, "padding": cfg["padding"], "depth_multiplier": m,
                   "activation": activation}
    n_out = w_shape[axis]
    s_w = O.log_uniform(rng, 1e-3, 1e-1, n_out if cfg.get("per_channel", True) else None)
    w = rng.integers(-127, 128, size=w_shape).astype(np.int8)
    s_out = np.float32(s_in * float(np.max(s_w)) * 127 * 16384 * np.sqrt(fan_in) / (spread * 8192))
    tensors = [act("x", in_shape, s_in),
               QTensor("w", w_shape, "int8", s_w, np.zeros(np.shape(s_w), np.int32), w,
                       axis if np.ndim(s_w) else 0)]
    inputs = ["x", "w"]
    if bias:
        b_scale = (np.float32(s_in) * np.broadcast_to(s_w, (n_out,))).astype(np.float32)
        b = rng.integers(-(1 << 30), 1 << 30, n_out, dtype=np.int64) * rng.integers(1, 1 << 8, n_out)
        tensors.append(QTensor("b", (n_out,), "int64", b_scale, np.zeros(n_out, np.int32), b))
        inputs.append("b")
    probe = model("probe", tensors + [act("y", (1,), s_out)], [], ["x"], ["x"])
    out_shape = _output_shape(kind, probe, in_shape, w_shape, options)
    tensors.append(act("y", out_shape, s_out))
    return model(kind, tensors, [QOp(kind, "op", inputs, ["y"], options)], ["x"], ["y"])


def _output_shape(kind, probe, in_shape, w_shape, options):
    if kind == "fully_connected":
        return (w_shape[0],)
    from minitiny import geometry
    k, s = w_shape[1], options["stride"][0]
    return (geometry.out_size(options["padding"], in_shape[0], k, s),
            geometry.out_size(options["padding"], in_shape[1], k, s),
            w_shape[0] if kind == "conv_2d" else w_shape[3])


def check(m, rng, n=6, label=None):
    xs = [int16_input(rng, m.tensors[name].shape, n) for name in m.inputs]
    return O.check_against_tflm(m, xs, label=label or f"{m.ops[-1].kind} 16x8")


# ---------------------------------------------------------------------------------------
# The weighted ops
# ---------------------------------------------------------------------------------------
activations = st.sampled_from(["none", "relu", "relu6"])
spreads = st.sampled_from([0.5, 1.0, 4.0, 100.0])
input_scales = st.floats(-6, 1).map(lambda e: np.float32(10.0 ** e))


@given(seed=st.integers(0, 2 ** 31), in_features=st.integers(1, 40), units=st.integers(1, 12),
       per_channel=st.booleans(), bias=st.booleans(), activation=activations, spread=spreads,
       s_in=input_scales)
def test_fully_connected(seed, in_features, units, per_channel, bias, activation, spread, s_in):
    rng = np.random.default_rng(seed)
    check(weighted("fully_connected", rng, (in_features,), s_in, spread, activation, bias,
                   units=units, per_channel=per_channel), rng)


windowed = dict(seed=st.integers(0, 2 ** 31), h=st.integers(1, 9), w=st.integers(1, 9),
                c=st.integers(1, 4), kernel=st.integers(1, 4), stride=st.integers(1, 3),
                padding=st.sampled_from(["same", "valid"]), activation=activations, spread=spreads,
                s_in=input_scales)


@given(out_c=st.integers(1, 5), bias=st.booleans(), **windowed)
def test_conv_2d(seed, h, w, c, kernel, stride, padding, activation, spread, s_in, out_c, bias):
    if padding == "valid" and kernel > min(h, w):
        kernel = min(h, w)
    rng = np.random.default_rng(seed)
    check(weighted("conv_2d", rng, (h, w, c), s_in, spread, activation, bias, out_c=out_c,
                   kernel=kernel, stride=stride, padding=padding), rng)


@given(depth_multiplier=st.integers(1, 3), **windowed)
def test_depthwise_conv_2d(seed, h, w, c, kernel, stride, padding, activation, spread, s_in,
                           depth_multiplier):
    if padding == "valid" and kernel > min(h, w):
        kernel = min(h, w)
    rng = np.random.default_rng(seed)
    check(weighted("depthwise_conv_2d", rng, (h, w, c), s_in, spread, activation, True,
                   kernel=kernel, stride=stride, padding=padding,
                   depth_multiplier=depth_multiplier), rng)


@FEW
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["fully_connected", "conv_2d"]))
def test_large_fan_in_with_int64_bias(seed, kind):
    """Where users go: fan-ins in the thousands, biases far beyond int32, the int64
    accumulator near what TFLM's int64 requantization takes (|acc| < 2^47)."""
    rng = np.random.default_rng(seed)
    if kind == "fully_connected":
        m = weighted(kind, rng, (2000,), np.float32(1e-4), 1.0, "none", True, units=4)
    else:
        m = weighted(kind, rng, (12, 12, 64), np.float32(1e-4), 1.0, "relu", True, out_c=3,
                     kernel=5, stride=2, padding="same")
    b = m.tensors["b"]
    b.data = (rng.choice([-1, 1], b.shape) * (rng.integers(1, 1 << 8, b.shape) << 36)).astype(np.int64)
    m.prepare()
    check(m, rng, n=3, label=f"{kind} 16x8, large")


# ---------------------------------------------------------------------------------------
# Pools, mean, element-wise, softmax, logistic, tanh, reshape
# ---------------------------------------------------------------------------------------
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["max_pool_2d", "average_pool_2d"]),
       h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 4), pool=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.sampled_from(["same", "valid"]), activation=activations,
       s=input_scales)
def test_pools(seed, kind, h, w, c, pool, stride, padding, activation, s):
    from minitiny import geometry
    if padding == "valid":
        pool = min(pool, h, w)
    out = (geometry.out_size(padding, h, pool, stride), geometry.out_size(padding, w, pool, stride), c)
    m = model(kind, [act("x", (h, w, c), s), act("y", out, s)],
              [QOp(kind, "op", ["x"], ["y"], {"pool_size": (pool, pool), "stride": (stride, stride),
                                              "padding": padding, "activation": activation})],
              ["x"], ["y"])
    check(m, np.random.default_rng(seed))


@given(seed=st.integers(0, 2 ** 31), h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 5),
       keep_dims=st.booleans(), s_in=input_scales, ratio=st.floats(-2, 2))
def test_mean(seed, h, w, c, keep_dims, s_in, ratio):
    out = (1, 1, c) if keep_dims else (c,)
    m = model("mean", [act("x", (h, w, c), s_in), act("y", out, s_in * np.float32(10.0 ** ratio))],
              [QOp("mean", "op", ["x"], ["y"], {"axes": (0, 1), "keep_dims": keep_dims})], ["x"], ["y"])
    check(m, np.random.default_rng(seed))


@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["add", "sub", "mul"]),
       shapes=st.sampled_from([((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)),
                               ((5,), (1,)), ((2, 1, 3), (2, 4, 1))]),
       constant=st.booleans(), swap=st.booleans(), activation=activations,
       e1=st.floats(-5, 0), e2=st.floats(-5, 0), e_out=st.floats(-1, 1))
def test_elementwise(seed, kind, shapes, constant, swap, activation, e1, e2, e_out):
    rng = np.random.default_rng(seed)
    (sa, sb), (s1, s2) = shapes, (np.float32(10.0 ** e1), np.float32(10.0 ** e2))
    out_shape = np.broadcast_shapes((1,) + sa, (1,) + sb if not constant else sb)[1:]
    if constant:
        b = QTensor("b", sb, "int16", s2, 0, rng.integers(-32768, 32768, sb).astype(np.int16))
    else:
        b = act("b", sb, s2)
        out_shape = np.broadcast_shapes(sa, sb)
    s_out = (s1 * s2 * 32768 if kind == "mul" else max(s1, s2)) * np.float32(10.0 ** e_out)
    names = ["a", "b"][::-1] if swap else ["a", "b"]
    options = {"activation": activation}
    m = model(kind, [act("a", sa, s1), b, act("y", tuple(out_shape), s_out)],
              [QOp(kind, "op", names, ["y"], options)], ["a"] if constant else ["a", "b"], ["y"])
    check(m, rng)


# the output quantization TFLM's int16 SOFTMAX, LOGISTIC and TANH fix
FIXED = act("y", (1,), 1 / 32768)


@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["softmax", "logistic", "tanh"]),
       shape=st.sampled_from([(10,), (3, 7), (2, 2, 33), (1,)]),
       e=st.floats(-7, 0.4), power_of_two=st.booleans(), beta=st.sampled_from([1.0, 0.5, 2.0]))
def test_softmax_logistic_tanh(seed, kind, shape, e, power_of_two, beta):
    """Power-of-two input scales take TFLM's exact multiplier path in LOGISTIC and TANH
    (2^-12, and 2^-11 for TANH); any other scale its general one."""
    s = np.float32(2.0 ** -int(np.clip(round(-e * 3.3), 0, 20))) if power_of_two else np.float32(10.0 ** e)
    if power_of_two and seed % 2:
        s = np.float32(2.0 ** (-12 + (seed // 2) % 2 * (kind == "tanh")))
    options = {"beta": beta} if kind == "softmax" else {}
    m = model(kind, [act("x", shape, s), act("y", shape, FIXED.scale)],
              [QOp(kind, "op", ["x"], ["y"], options)], ["x"], ["y"])
    check(m, np.random.default_rng(seed))


@FEW
@given(seed=st.integers(0, 2 ** 31), depth=st.sampled_from([1000, 4096]), e=st.floats(-6, -2))
def test_softmax_wide(seed, depth, e):
    """A wide softmax (spectrogram bins, a vocabulary): the sum of exps over thousands."""
    m = model("softmax", [act("x", (depth,), np.float32(10.0 ** e)), act("y", (depth,), 1 / 32768)],
              [QOp("softmax", "op", ["x"], ["y"], {"beta": 1.0})], ["x"], ["y"])
    check(m, np.random.default_rng(seed), n=3, label="softmax 16x8, wide")


def test_logistic_tanh_every_input():
    """All 65536 int16 inputs, at a general and at a power-of-two scale."""
    x = np.arange(-32768, 32768, dtype=np.int16).reshape(16, 4096)
    for kind in ("logistic", "tanh"):
        for s in (np.float32(3.7e-4), np.float32(2.0 ** -12)):
            m = model(kind, [act("x", (4096,), s), act("y", (4096,), 1 / 32768)],
                      [QOp(kind, "op", ["x"], ["y"])], ["x"], ["y"])
            O.check_against_tflm(m, x, label=f"{kind} 16x8, every input")


# ---------------------------------------------------------------------------------------
# A 16x8 CNN through the writer and the importer
# ---------------------------------------------------------------------------------------
def small_cnn(rng):
    """conv (relu) -> depthwise -> max pool -> average pool -> reshape -> add (constant)
    -> fully connected -> tanh ... and a softmax head: a 16x8 CNN built by hand."""
    s = np.float32(2e-4)
    conv = weighted("conv_2d", rng, (8, 8, 2), s, 1.0, "relu", True, out_c=4, kernel=3, stride=1,
                    padding="same")
    t = dict(conv.tensors)
    s1 = t["y"].scale
    w_dw = rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8)
    s_dw = O.log_uniform(rng, 1e-3, 1e-2, 4)
    extra = [QTensor("w_dw", (1, 3, 3, 4), "int8", s_dw, np.zeros(4, np.int32), w_dw, 3),
             QTensor("b_dw", (4,), "int64", (s1 * s_dw).astype(np.float32), np.zeros(4, np.int32),
                     rng.integers(-(1 << 20), 1 << 20, 4)),
             act("dw", (8, 8, 4), s1 * 2), act("mp", (4, 4, 4), s1 * 2), act("ap", (2, 2, 4), s1 * 2),
             act("flat", (16,), s1 * 2),
             QTensor("c", (16,), "int16", np.float32(1e-3), 0, rng.integers(-32768, 32768, 16).astype(np.int16)),
             act("sum", (16,), s1 * 4),
             QTensor("w_fc", (5, 16), "int8", np.float32(0.01), 0, rng.integers(-127, 128, (5, 16)).astype(np.int8)),
             act("fc", (5,), np.float32(1e-3)), act("prob", (5,), 1 / 32768)]
    ops = conv.ops + [
        QOp("depthwise_conv_2d", "dw", ["y", "w_dw", "b_dw"], ["dw"], {"padding": "same"}),
        QOp("max_pool_2d", "mp", ["dw"], ["mp"], {"pool_size": (2, 2), "stride": (2, 2)}),
        QOp("average_pool_2d", "ap", ["mp"], ["ap"], {"pool_size": (2, 2), "stride": (2, 2)}),
        QOp("reshape", "flat", ["ap"], ["flat"]),
        QOp("add", "sum", ["flat", "c"], ["sum"]),
        QOp("fully_connected", "fc", ["sum", "w_fc"], ["fc"]),
        QOp("softmax", "prob", ["fc"], ["prob"])]
    return model("cnn16", list(t.values()) + extra, ops, ["x"], ["prob"])


@pytest.mark.parametrize("edges", [("int16", "int16"), ("float32", "float32"), ("int8", "float32")])
def test_cnn_through_writer_and_importer(edges):
    """The writer's file, with int16 or float32 edges, imports back to the same model (the
    same tensor types, the same outputs) and runs in TFLM to the same bits."""
    rng = np.random.default_rng(7)
    m = small_cnn(rng)
    data = to_tflite(m, *edges)
    back = from_tflite(data)
    assert [t.dtype for t in back.tensors.values()].count("int64") == 2
    assert back.input.dtype == back.output.dtype == "int16"
    x = int16_input(rng, m.input.shape, 16)
    ours = m.predict_int8(x)
    np.testing.assert_array_equal(back.predict_int8(x), ours)
    np.testing.assert_array_equal(run_tflm_int8(data, x), ours)
    # predict takes floats, quantizes them to int16 and gives floats back
    real = m.input.dequantize(x)
    np.testing.assert_allclose(m.predict(real), m.output.dequantize(ours))


# ---------------------------------------------------------------------------------------
# A 16x8 CNN converted by TensorFlow (scripts/make_tflite_testdata.py)
# ---------------------------------------------------------------------------------------
DATA = os.path.join(os.path.dirname(__file__), "data", "tflite")
TF_CNN_OPS = ["conv_2d", "depthwise_conv_2d", "add", "max_pool_2d", "conv_2d", "average_pool_2d",
              "mean", "fully_connected", "tanh", "fully_connected", "logistic", "fully_connected",
              "softmax"]


def test_tf_converted_16x8_cnn_gives_tflms_stored_outputs():
    """TF 2.21's 16x8 converter: int16 activations and edges, int8 weights, int64 biases.
    The NumPy reference gives the outputs TFLM gave when the script made the file (int16
    inputs over the full range, then in distribution), and TFLM's live outputs."""
    path = os.path.join(DATA, "cnn_16x8.tflite")
    with open(os.path.join(DATA, "manifest.json")) as f:
        info = json.load(f)["files"]["cnn_16x8.tflite"]
    with open(os.path.join(DATA, "cnn_16x8.expected.npz"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == info["expected_sha256"]
    q = from_tflite(path)
    assert [op.kind for op in q.ops] == TF_CNN_OPS
    assert {op.params["dtype"] for op in q.ops} == {"int16"}
    assert {q.tensors[op.inputs[2]].dtype for op in q.ops if len(op.inputs) == 3
            and op.kind != "add"} == {"int64"}
    with np.load(os.path.join(DATA, "cnn_16x8.expected.npz")) as z:
        x, y = z["x"], z["y"]
    assert x.dtype == y.dtype == np.int16
    ours = q.predict_int8(x)
    tally = O.TALLY.setdefault("TF 2.21 cnn_16x8 vs TFLM (stored)", [0, 0])
    tally[0] += ours.size
    tally[1] += int((ours != y).sum())
    np.testing.assert_array_equal(ours, y)
    O.check_against_tflm(q, int16_input(np.random.default_rng(1), q.input.shape, 32),
                         label="TF 2.21 cnn_16x8")


def test_tf_converted_16x8_cnn_with_float_edges():
    """The same model with float32 edges: QUANTIZE to int16 and DEQUANTIZE from int16 fold
    away; the folded model is the int16-edged one, and TFLM agrees through the float edges."""
    path = os.path.join(DATA, "cnn_16x8_float_edges.tflite")
    q = from_tflite(path)
    plain = from_tflite(os.path.join(DATA, "cnn_16x8.tflite"))
    assert [op.kind for op in q.ops] == TF_CNN_OPS
    assert q.input.dtype == q.output.dtype == "int16"
    x = int16_input(np.random.default_rng(2), q.input.shape, 32)
    ours = q.predict_int8(x)
    np.testing.assert_array_equal(ours, plain.predict_int8(x))
    np.testing.assert_array_equal(run_tflm_int8(path, x), ours)


# ---------------------------------------------------------------------------------------
# What Prepare refuses, by name
# ---------------------------------------------------------------------------------------
def _refused(m_args, fragment):
    with pytest.raises(GraphError) as e:
        model(*m_args)
    assert fragment in str(e.value), str(e.value)


def test_refusals_name_the_problem():
    x, y = act("x", (4,), 0.01), act("y", (4,), 0.01)
    # int16 with a zero point: the 16x8 scheme is symmetric
    _refused(("m", [QTensor("x", (4,), "int16", 0.01, 3), y], [QOp("reshape", "r", ["x"], ["y"])],
              ["x"], ["y"]), "must have zero point 0")
    # int8 in, int16 out
    _refused(("m", [QTensor("x", (4,), "int8", 0.01, 0), y], [QOp("reshape", "r", ["x"], ["y"])],
              ["x"], ["y"]), "mixes int8 and int16")
    # an op without a 16x8 kernel
    _refused(("m", [x, y], [QOp("hard_swish", "r", ["x"], ["y"])], ["x"], ["y"]), "no 16x8")
    # a 16x8 weighted op with an int32 bias
    w = QTensor("w", (4, 4), "int8", 0.01, 0, np.ones((4, 4), np.int8))
    b = QTensor("b", (4,), "int32", np.float32(1e-4), 0, np.ones(4, np.int32))
    _refused(("m", [x, w, b, y], [QOp("fully_connected", "f", ["x", "w", "b"], ["y"])], ["x"], ["y"]),
             "constant int64 tensor")
    # an int8 constant operand in a 16x8 add
    c = QTensor("c", (4,), "int8", 0.01, 0, np.ones(4, np.int8))
    _refused(("m", [x, c, y], [QOp("add", "a", ["x", "c"], ["y"])], ["x"], ["y"]), "is int8")
    # TFLM's int16 softmax, logistic, tanh fix the output quantization
    for kind in ("softmax", "logistic", "tanh"):
        _refused(("m", [x, y], [QOp(kind, "s", ["x"], ["y"])], ["x"], ["y"]), "scale 1/32768")
    # a multiplier beyond TFLM's int64 requantization (shift < 8)
    w = QTensor("w", (4, 4), "int8", 1.0, 0, np.ones((4, 4), np.int8))
    _refused(("m", [act("x", (4,), 1.0), w, act("y", (4,), 1e-3)],
              [QOp("fully_connected", "f", ["x", "w"], ["y"])], ["x"], ["y"]), "shift < 8")


def test_int8_models_are_unchanged():
    """An int8 op's params say dtype int8, and its output is int8 (the 16x8 paths are
    chosen by the tensors' dtype only)."""
    m = O.single_op_model(0, "conv_2d", (5, 5, 2), out_c=3)
    assert m.ops[0].params["dtype"] == "int8"
    assert m.predict_int8(O.int8_input(np.random.default_rng(0), m.input.shape)).dtype == np.int8
    assert set(kernels.INT16_KINDS) >= {"fully_connected", "conv_2d", "depthwise_conv_2d", "softmax"}


def test_the_table_of_supported_ops_says_int16x8_where_a_kernel_runs_it():
    from minitiny.quant import supported
    assert {b.kind for b in supported.OPS if b.kind and "int16x8" in b.modes} == set(kernels.INT16_KINDS)


@given(seed=st.integers(0, 2 ** 31), axis=st.integers(0, 2), n=st.integers(2, 4), s=input_scales)
def test_concatenation(seed, axis, n, s):
    rng = np.random.default_rng(seed)
    shapes = [tuple(int(rng.integers(1, 4)) if d == axis else 3 for d in range(3)) for _ in range(n)]
    out = list(shapes[0])
    out[axis] = sum(sh[axis] for sh in shapes)
    names = [f"x{i}" for i in range(n)]
    m = model("concatenation", [act(nm, sh, s) for nm, sh in zip(names, shapes)] + [act("y", tuple(out), s)],
              [QOp("concatenation", "op", names, ["y"], {"axis": axis})], names, ["y"])
    check(m, rng)


# ---------------------------------------------------------------------------------------
# The quantizer: mt.quantize(model, data, activations="int16")
# ---------------------------------------------------------------------------------------
def _trained_cnn(seed=0):
    from minitiny import layers as L
    from minitiny.models import Sequential
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 10, 8, 1)).astype(np.float32)
    y = (x[:, :5].mean(axis=(1, 2, 3)) > x[:, 5:].mean(axis=(1, 2, 3))).astype(np.int64)
    m = Sequential([L.Conv2D(6, 3, padding="same", activation="relu", input_shape=(10, 8, 1)),
                    L.DepthwiseConv2D(3, padding="same", activation="relu6"),
                    L.MaxPooling2D(), L.AveragePooling2D(), L.GlobalAveragePooling2D(),
                    L.Dense(8, activation="tanh"), L.Dense(6, activation="sigmoid"),
                    L.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return m, x


def test_quantize_int16_gives_a_16x8_model_that_tflm_runs_bit_for_bit():
    import minitiny as mt
    m, x = _trained_cnn()
    q = mt.quantize(m, x[:128], activations="int16")
    acts = [t for t in q.tensors.values() if not t.is_constant]
    assert {t.dtype for t in acts} == {"int16"} and all(int(t.zero_point) == 0 for t in acts)
    assert {t.dtype for t in q.tensors.values() if t.is_constant} == {"int8", "int64"}
    assert q.tensors[q.outputs[0]].scale == np.float32(1 / 32768)
    xq = q.quantize_input(x[128:])
    assert xq.dtype == np.int16
    O.check_against_tflm(q, xq, label="mt.quantize 16x8 CNN")
    O.check_against_tflm(q, int16_input(np.random.default_rng(3), q.input.shape, 16),
                         label="mt.quantize 16x8 CNN")


def test_int16_activations_follow_the_float_model_closer_than_int8():
    """The point of 16x8: each activation has 256 times the resolution. With weights int8
    represents exactly (so only the activations round), the 16x8 model's probabilities stay
    far closer to the float model's than the int8 model's."""
    import minitiny as mt
    from minitiny import layers as L
    from minitiny.models import Sequential
    rng = np.random.default_rng(0)

    def int8_exact(shape, gain):      # n / 127 * a_c with |n| = 127 in every column
        n = rng.integers(-127, 128, shape)
        n[0] = 127
        return (n / 127 * rng.uniform(0.2, 1.0, shape[1]) * gain).astype(np.float32)
    m = Sequential([L.Dense(16, activation="tanh", input_shape=[8]), L.Dense(4, activation="softmax")])
    m.set_weights([int8_exact((8, 16), 1), np.zeros(16, np.float32), int8_exact((16, 4), 3),
                   np.zeros(4, np.float32)])
    x = rng.normal(size=(400, 8)).astype(np.float32)
    want = np.asarray(m.predict(x[200:]))
    err8 = np.abs(mt.quantize(m, x[:200]).predict(x[200:]) - want)
    err16 = np.abs(mt.quantize(m, x[:200], activations="int16").predict(x[200:]) - want)
    assert err16.mean() < err8.mean() / 30 and err16.max() < err8.max() / 30, (err16.max(), err8.max())


def test_quantize_int16_refuses_what_has_no_16x8_kernel_by_name():
    """Every kind Keras layers lower to runs in 16x8; an op graph with one TFLM runs on int8
    only (a HARD_SWISH) is refused naming the op and its layer."""
    import minitiny as mt
    from minitiny import layers as L
    from minitiny.models import Sequential
    from minitiny.quant.lower import FloatGraph, FOp
    from minitiny.quant.quantizer import QuantizationError, convert

    class Layer:
        name = "hs3"
    graph = FloatGraph("g", "x", (3,), [FOp("hard_swish", "hs", ["x"], (3,), layers=[Layer()])], "hs")
    ranges = {"x": (-1.0, 1.0), "hs": (-0.5, 1.0)}
    with pytest.raises(QuantizationError, match="'hs3'.*no 16x8 kernel"):
        convert(graph, ranges, activations="int16")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    with pytest.raises(QuantizationError, match="activations must be one of int8, int16"):
        mt.quantize(Sequential([L.Dense(2, input_shape=[3])]), x, activations="int4")


def test_tf_lite_converter_writes_16x8_with_the_16x8_ops_set():
    """`import minitiny as tf` programs: the 16x8 OpsSet gives int16 activations; int16 or
    float32 edges; TFLM runs the bytes to the interpreter's outputs; int16 edges without
    the 16x8 OpsSet, or int8 edges with it, are refused by name."""
    import minitiny as tf
    from minitiny.quant.lite import NotInMinitinyLite
    m, x = _trained_cnn(2)

    def converter(edge):
        c = tf.lite.TFLiteConverter.from_keras_model(m)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([x[i:i + 1]] for i in range(64))
        c.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        c.inference_input_type = c.inference_output_type = edge
        return c
    for edge in (np.int16, np.float32):
        data = converter(edge).convert()
        q = from_tflite(data)
        assert {t.dtype for t in q.tensors.values() if not t.is_constant} == {"int16"}
        interpreter = tf.lite.Interpreter(model_content=data)
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        assert inp["dtype"] == edge
        sample = x[100:101] if edge == np.float32 else q.quantize_input(x[100:101])
        interpreter.set_tensor(inp["index"], sample)
        interpreter.invoke()
        got = interpreter.get_tensor(out["index"])
        xq = q.quantize_input(x[100:101])
        want = q.predict_int8(xq)
        np.testing.assert_array_equal(got if edge == np.int16 else q.output.quantize(got), want)
        np.testing.assert_array_equal(run_tflm_int8(data, xq), want)
    with pytest.raises(NotInMinitinyLite, match="edges are int16 or float32"):
        converter(np.int8).convert()
    c = converter(np.int16)
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with pytest.raises(NotInMinitinyLite, match="int16 needs the 16x8 scheme"):
        c.convert()


# ---------------------------------------------------------------------------------------
# The generated C (reference kernels, int16_t arena, int64 bias): == NumPy, sanitized, strict
# ---------------------------------------------------------------------------------------
C_KINDS = ["fully_connected", "conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d",
           "mean", "add", "sub", "mul", "softmax", "logistic", "tanh", "reshape"]


def c_model(kind, rng):
    """A random one-op 16x8 model of `kind` for the C, its scales drawn over three decades and
    more; ADD, SUB and MUL on two activations whose shapes broadcast or not."""
    s = np.float32(10.0 ** rng.uniform(-6, 0))
    act_ = rng.choice(["none", "relu", "relu6"])
    if kind in ("fully_connected", "conv_2d", "depthwise_conv_2d"):
        cfg = dict(units=int(rng.integers(1, 9))) if kind == "fully_connected" else \
            dict(out_c=int(rng.integers(1, 5)), kernel=int(rng.integers(1, 4)), stride=int(rng.integers(1, 3)),
                 padding=str(rng.choice(["same", "valid"])), depth_multiplier=int(rng.integers(1, 3)))
        shape = (int(rng.integers(1, 30)),) if kind == "fully_connected" else (5, 6, int(rng.integers(1, 4)))
        return weighted(kind, rng, shape, s, float(rng.choice([0.5, 1, 100])), act_, bool(rng.integers(2)),
                        **{k: v for k, v in cfg.items() if k != "depth_multiplier" or kind == "depthwise_conv_2d"})
    if kind in ("max_pool_2d", "average_pool_2d"):
        out = (3, 3, 2)
        return model(kind, [act("x", (6, 5, 2), s), act("y", out, s)],
                     [QOp(kind, "op", ["x"], ["y"], {"pool_size": (2, 2), "stride": (2, 2), "padding": "same",
                                                     "activation": act_})], ["x"], ["y"])
    if kind == "mean":
        return model(kind, [act("x", (4, 3, 5), s), act("y", (5,), s * np.float32(0.3))],
                     [QOp(kind, "op", ["x"], ["y"], {"axes": (0, 1)})], ["x"], ["y"])
    if kind in ("add", "sub", "mul"):
        s2 = np.float32(10.0 ** rng.uniform(-6, 0))
        s_out = s * s2 * 32768 * 0.5 if kind == "mul" else max(s, s2) * 1.5
        b_shape = [(3, 4), (4,), (3, 1)][int(rng.integers(3))]
        return model(kind, [act("a", (3, 4), s), act("b", b_shape, s2), act("y", (3, 4), s_out)],
                     [QOp(kind, "op", ["a", "b"], ["y"], {"activation": act_})], ["a", "b"], ["y"])
    if kind == "reshape":       # a reshape between two pools (alone it would be the input itself)
        return model(kind, [act("x", (4, 4, 2), s), act("p", (2, 2, 2), s), act("r", (8,), s),
                            act("y", (8,), 1 / 32768)],
                     [QOp("max_pool_2d", "p", ["x"], ["p"], {"pool_size": (2, 2), "stride": (2, 2)}),
                      QOp("reshape", "r", ["p"], ["r"]), QOp("tanh", "t", ["r"], ["y"])], ["x"], ["y"])
    if rng.integers(2) and kind != "softmax":
        s = np.float32(2.0 ** -12)                  # the power-of-two path
    return model(kind, [act("x", (3, 7), s), act("y", (3, 7), 1 / 32768)],
                 [QOp(kind, "op", ["x"], ["y"], {"beta": 1.0} if kind == "softmax" else {})], ["x"], ["y"])


def c_inputs(m, rng, n=8):
    xs = [int16_input(rng, m.tensors[name].shape, n) for name in m.inputs]
    return xs if len(xs) > 1 else xs[0]


@FEW
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(C_KINDS))
def test_host_c_matches_numpy(seed, kind, tmp_path_factory):
    from minitiny import codegen
    rng = np.random.default_rng(seed)
    m = c_model(kind, rng)
    d = tmp_path_factory.mktemp("c16")
    codegen.generate(m, d, name="m")
    x = c_inputs(m, rng)
    np.testing.assert_array_equal(codegen.load(d)(x), m.predict_int8(x), err_msg=kind)


def test_c_of_every_kind_under_asan_and_ubsan(tmp_path):
    """Every 16x8 kind in one sanitized executable each: the C == NumPy, no sanitizer report."""
    from minitiny import codegen
    rng = np.random.default_rng(11)
    for kind in C_KINDS:
        m = c_model(kind, rng)
        codegen.generate(m, tmp_path / kind, name="m")
        x = c_inputs(m, rng, 4)
        np.testing.assert_array_equal(codegen.load(tmp_path / kind, sanitize=True)(x), m.predict_int8(x),
                                      err_msg=kind)


def test_c_of_the_tf_converted_16x8_cnn(tmp_path):
    """The TF 2.21 16x8 CNN: the generated C (host, and under ASan/UBSan) gives TFLM's stored
    int16 outputs; its header says int16 (types and macros); strict C99 under gcc, clang and
    arm-none-eabi-gcc."""
    import shutil
    import subprocess
    from minitiny import codegen
    from minitiny.codegen.loader import STRICT_FLAGS
    q = from_tflite(os.path.join(DATA, "cnn_16x8.tflite"))
    codegen.generate(q, tmp_path, name="kws16")
    with np.load(os.path.join(DATA, "cnn_16x8.expected.npz")) as z:
        x, y = z["x"], z["y"]
    np.testing.assert_array_equal(codegen.load(tmp_path)(x), y)
    np.testing.assert_array_equal(codegen.load(tmp_path, sanitize=True)(x[:16]), y[:16])
    header = (tmp_path / "kws16_model.h").read_text()
    for line in ("#define KWS16_INPUT_TYPE int16_t", "#define KWS16_OUTPUT_TYPE int16_t",
                 "int kws16_invoke(const int16_t *input, int16_t *output);",
                 "/* int16 values, shape int16[16][10][1] */"):
        assert line in header, line
    for cc, extra in (("gcc", []), ("clang", []), ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-Os"])):
        if shutil.which(cc) is None:
            continue
        result = subprocess.run([cc, *STRICT_FLAGS, *extra, "-c", str(tmp_path / "kws16_model.c"),
                                 "-o", str(tmp_path / f"{cc}.o")], capture_output=True, text=True)
        assert result.returncode == 0, f"{cc}: {result.stderr}"


def test_generate_refuses_thresholds_for_16x8(tmp_path):
    """(The tuned variants of 16x8: tests/test_int16_fast.py.)"""
    from minitiny import codegen
    from minitiny.codegen.output import CodegenError
    m = c_model("softmax", np.random.default_rng(0))
    with pytest.raises(CodegenError, match="threshold= needs an int8 output"):
        codegen.generate(m, tmp_path / "t", name="m", threshold=0.5)


def run_tf_16x8_file_on_the_m4(name, rows, tmp_path):
    """The TF 16x8 file `name`'s C built for a Cortex-M4 and run in QEMU on the stored inputs
    `rows`: TFLM's stored int16 outputs, bit for bit, and instruction counts per layer."""
    import shutil
    fw = pytest.importorskip("minitiny.firmware")
    missing = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    from minitiny import codegen
    q = from_tflite(os.path.join(DATA, f"{name}.tflite"))
    codegen.generate(q, tmp_path / "m", name="m16")
    with np.load(os.path.join(DATA, f"{name}.expected.npz")) as z:
        x, y = z["x"][rows], z["y"][rows]
    r = fw.run(tmp_path / "m", board="cortex-m4", inputs=x, expected=y, cache_dir=tmp_path / "cache",
               timeout=60)
    assert r.status == "ok", r.message
    assert r.outputs.dtype == np.int16
    np.testing.assert_array_equal(r.outputs.reshape(y.shape), y)
    assert r.layer_instructions.shape == (len(x), len(q.ops))


def test_the_tf_16x8_cnn_on_the_emulated_cortex_m4(tmp_path):
    run_tf_16x8_file_on_the_m4("cnn_16x8", slice(60, 66), tmp_path)    # full-range and in-distribution


def test_cli_imports_and_verifies_a_16x8_file(tmp_path, capsys):
    """`minitiny import` then `minitiny verify`: random int16 inputs over the whole range,
    the host C and TFLM both bit-exact with NumPy; the thorough verify's inputs (special
    patterns at the int16 extremes, uniform int16) through the probe's byte snapshots."""
    from minitiny import cli
    from minitiny.testing.equivalence import standard_inputs
    assert cli.main(["import", os.path.join(DATA, "cnn_16x8.tflite"), "--out", str(tmp_path)]) == 0
    assert cli.main(["verify", str(tmp_path), "-n", "32"]) == 0
    out = capsys.readouterr().out
    assert "32 random int16 inputs" in out and "OK: bit-exact" in out
    q = from_tflite(os.path.join(DATA, "cnn_16x8.tflite"))
    batches = list(standard_inputs(q, n=40))
    assert all(b.dtype == np.int16 for b in batches)
    assert batches[0].min() == -32768 and batches[0].max() == 32767
    from minitiny.testing.equivalence import assert_equivalent
    assert assert_equivalent(q, tmp_path, n=64) >= 64


def test_cli_quantize_with_int16_activations_writes_a_16x8_tflite(tmp_path, capsys):
    """`minitiny quantize --activations int16 --out m.tflite`: a 16x8 file TFLM runs to
    the NumPy reference's int16 outputs; float32 edges too."""
    from minitiny import cli
    model, x = _trained_cnn(3)
    model.save(tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", x[:100])
    for edge in ("int8", "float32"):
        out = tmp_path / f"m16_{edge}.tflite"
        assert cli.main(["quantize", str(tmp_path / "m.npz"), "--data", str(tmp_path / "x.npy"), "--out",
                         str(out), "--activations", "int16", "--input-type", edge, "--output-type", edge,
                         "--quiet"]) == 0, capsys.readouterr().err
        q = from_tflite(out.read_bytes())
        assert {t.dtype for t in q.tensors.values() if not t.is_constant} == {"int16"}
        xq = q.quantize_input(x[:40])
        np.testing.assert_array_equal(run_tflm_int8(out.read_bytes(), xq), q.predict_int8(xq))
