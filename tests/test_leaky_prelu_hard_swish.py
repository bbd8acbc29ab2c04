"""LEAKY_RELU, PRELU and HARD_SWISH against TensorFlow Lite Micro, bit for bit, and against
the real function they approximate.

Each op is run over every int8 input at many input and output scales and zero points (the
output depends on one input value, and on the alpha value for PRELU, so that covers it);
hypothesis draws shapes, alpha shapes that broadcast, alphas and scales. Independently of
TFLM, the dequantized output must be the real function of the dequantized input to within
an output step (HARD_SWISH: TFLM's 16-bit fixed point adds up to two more steps).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import int8_oracle as O
from minitiny.quant import kernels
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

SCALES = np.float32(np.exp(np.linspace(np.log(1e-4), np.log(1e2), 60)))
ZERO_POINTS = [-128, 127, 0, -1, 64, -77, 13, 100]
ALPHAS = [0.01, 0.1, 0.2, 0.3, 1.0, 1.7]


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "leaky_relu / prelu / hard_swish vs TFLM")


def one_op(kind, seed, shape, s_in, z_in, s_out=None, z_out=None, alpha=0.2, alpha_shape=None):
    b = O.Builder(seed, shape, kind, s_in, z_in)
    if kind == "leaky_relu":
        b.leaky_relu(alpha, s_out, z_out)
    elif kind == "prelu":
        b.prelu(alpha_shape, s_out, z_out)
    else:
        b.hard_swish(s_out, z_out)
    return b.model()


def real(kind, model, x):
    """The real function on the dequantized input (N, *shape)."""
    op = model.ops[-1]
    t = model.tensors[op.inputs[0]]
    r = t.dequantize(x).astype(np.float64)
    if kind == "leaky_relu":
        return np.where(r >= 0, r, op.options["alpha"] * r)
    if kind == "prelu":
        a = model.tensors[op.inputs[1]]
        alpha = a.dequantize(a.data).astype(np.float64)
        alpha = alpha.reshape((1,) * (r.ndim - alpha.ndim) + alpha.shape)
        return np.where(r >= 0, r, alpha * r)
    return r * np.clip(r + 3, 0, 6) / 6


def check_real(kind, model, x):
    out = model.tensors[model.outputs[0]]
    got = out.dequantize(model.predict_int8(x)).astype(np.float64)
    want = real(kind, model, x)
    inside = (want > out.dequantize(-128)) & (want < out.dequantize(127))
    step = float(out.scale)
    if kind == "hard_swish":               # 16-bit intermediates: a little more than a step
        step = 3 * step + 2 * float(model.tensors[model.inputs[0]].scale) / 128
    err = np.abs(got - want)[inside]
    assert err.size == 0 or err.max() <= 1.01 * step, (kind, err.max(), step, model.summary())


@O.requires_tflm
@pytest.mark.parametrize("kind", ["leaky_relu", "prelu", "hard_swish"])
def test_every_input_at_many_scales(kind):
    rng = np.random.default_rng(len(kind))
    x = O.ALL_INT8.reshape(1, 4, 64)
    for i, s_in in enumerate(SCALES):
        s_out = np.float32(s_in * O.log_uniform(rng, 0.1, 10))
        if kind == "hard_swish":           # TFLM needs (s_in / 128) / s_out < 1
            s_out = np.float32(max(s_out, s_in / 100))
        model = one_op(kind, i, (4, 64), s_in, ZERO_POINTS[i % 8], s_out, ZERO_POINTS[(i + 3) % 8],
                       alpha=ALPHAS[i % len(ALPHAS)], alpha_shape=[(64,), (4, 1), (1,), (4, 64)][i % 4])
        O.check_against_tflm(model, x, label=f"{kind} (all 256 inputs)")
        check_real(kind, model, x)


@O.requires_tflm
@pytest.mark.parametrize("kind", ["leaky_relu", "prelu", "hard_swish"])
@given(data=st.data())
def test_drawn_shapes_and_scales(kind, data):
    shape = data.draw(st.sampled_from([(1,), (7,), (3, 5), (2, 3, 4), (6, 6, 8)]))
    seed = data.draw(O.seeds)
    rng = np.random.default_rng(seed)
    s_in = O.log_uniform(rng, 1e-3, 10)
    alpha_shape = data.draw(st.sampled_from([shape[-1:], (1,), shape, (1,) * len(shape)]))
    model = one_op(kind, seed, shape, s_in, O.zero_point(rng), alpha=data.draw(st.sampled_from(ALPHAS)),
                   alpha_shape=alpha_shape)
    x = O.random_inputs(model, seed)[0]
    O.check_against_tflm(model, x, label=kind)
    check_real(kind, model, x)


@O.requires_tflm
def test_hard_swish_at_extreme_scales():
    """Input scales 1e-12..1e7 and output scales 1e-2..1e9 times the input's: the int16
    RoundingDivideByPOT's exponent reaches 16 and more (where gemmlowp's int16 mask is -1)
    and the reluish left shift grows; a scale TFLM cannot take is refused by name."""
    rng = np.random.default_rng(16)
    checked = 0
    for i in range(60):
        s_in = O.log_uniform(rng, 1e-12, 1e7)
        try:
            model = one_op("hard_swish", i, (256,), s_in, O.zero_point(rng),
                           np.float32(s_in * O.log_uniform(rng, 1e-2, 1e9)), O.zero_point(rng))
        except GraphError as e:
            assert "hard_swish" in str(e) and ("too large" in str(e) or "too small" in str(e)
                                               or "out of range" in str(e)), e
            continue
        O.check_against_tflm(model, O.ALL_INT8, label="hard_swish (extreme scales)")
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("kind", ["leaky_relu", "prelu", "hard_swish"])
def test_round_trip_through_the_file(kind):
    q = one_op(kind, 3, (5, 6), np.float32(0.05), -7, np.float32(0.04), 9, alpha=0.3)
    r = from_tflite(to_tflite(q))
    assert [op.kind for op in r.ops] == [kind]
    assert r.ops[0].options == {k: float(np.float32(v)) for k, v in q.ops[0].options.items()}
    x = O.int8_input(np.random.default_rng(0), (5, 6), 16)
    np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


def test_bad_alphas_and_scales_are_refused_by_name():
    ts = {"x": QTensor("x", (4,), "int8", 0.1, 0), "y": QTensor("y", (4,), "int8", 0.1, 0),
          "a": QTensor("a", (4,), "int8", 0.01, 0), "c": QTensor("c", (3,), "int8", 0.01, 0, np.ones(3, np.int8))}
    cases = [(QOp("leaky_relu", "l", ["x"], ["y"], {"alpha": -0.5}), "alpha must be finite and > 0"),
             (QOp("prelu", "p", ["x", "a"], ["y"]), "alpha 'a' must be a constant"),
             (QOp("prelu", "p", ["x", "c"], ["y"]), "must broadcast over the input (1, 4)"),
             (QOp("hard_swish", "h", ["x"], ["y"]), None)]
    ts_small_out = dict(ts, y=QTensor("y", (4,), "int8", 1e-6, 0))
    for op, fragment in cases:
        if fragment is None:             # (s_in / 128) / s_out >= 1
            with pytest.raises(GraphError, match="too small for input scale"):
                kernels.prepare(op, ts_small_out)
            continue
        with pytest.raises(GraphError) as e:
            kernels.prepare(op, ts)
        assert f"op '{op.name}' ({op.kind})" in str(e.value) and fragment in str(e.value), str(e.value)
