"""ABS and RSQRT (TFLM micro/kernels/elementwise.cc, int8) against TensorFlow Lite Micro bit
for bit, against the real functions, in the generated C, and refused by name where TFLM stops.

Each op reads one int8 input, so every model runs on all 256 inputs (RSQRT: those at or above
the zero point; TFLM stops with an error below it). Hypothesis draws the input scale over
1e-6..1e6, the output scale over six orders of magnitude around the natural one, and the zero
points with the extremes over-represented; more under HYPOTHESIS_PROFILE=thorough.
"""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import int8_oracle as O
from minitiny.quant import fixedpoint as fp
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

ZERO_POINTS = st.sampled_from([-128, 127, 0, -3, 77]) | st.integers(-128, 127)


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "abs, rsqrt vs TFLM")


def model(kind, s_in, z_in, s_out, z_out, shape=None):
    """One op; by default of one value per valid input (valid_inputs)."""
    shape = shape or ((256,) if kind == "abs" else (128 - z_in,))
    b = O.Builder(0, shape, kind, np.float32(s_in), z_in)
    return getattr(b, kind)(np.float32(s_out), z_out).model()


def valid_inputs(m):
    """All 256 int8 values (RSQRT: those >= the input zero point), as a batch of one."""
    q = O.ALL_INT8[0]
    if m.ops[0].kind == "rsqrt":
        q = q[q >= int(m.tensors[m.inputs[0]].zero_point)]
    return q[None]


def check_real(m):
    """Dequantized, each output is within a step of the real function where it lies inside
    the output's range (two roundings: the high multiply rounds to an integer before the
    rounding shift, so 17 * 0.3679 = 6.25 becomes 12.5 -> 13, then 6.5 -> 7; RSQRT also
    carries TFLM's Newton-Raphson estimate, and gives an input at the zero point the
    output's largest value)."""
    kind = m.ops[0].kind
    x, y = m.tensors[m.inputs[0]], m.tensors[m.outputs[0]]
    q = valid_inputs(m)
    r = x.dequantize(q).astype(np.float64)
    with np.errstate(divide="ignore"):
        want = np.abs(r) if kind == "abs" else np.where(r > 0, 1 / np.sqrt(np.maximum(r, 1e-300)), np.inf)
    got = y.dequantize(m.predict_int8(q)).astype(np.float64)
    inside = (want >= y.dequantize(-128)) & (want <= y.dequantize(127))
    steps = 1.0 if kind == "abs" else 1.01
    tolerance = steps * float(y.scale) * (1 + 1e-5) + (1e-6 if kind == "abs" else 1e-3) * np.abs(want[inside])
    err = np.abs(got - want)[inside]
    assert np.all(err <= tolerance), (kind, err.max(), float(y.scale), m.summary())
    assert np.all(got[~inside & (want > y.dequantize(127))] == y.dequantize(127))


@O.requires_tflm
@given(kind=st.sampled_from(["abs", "rsqrt"]), s_in=st.floats(np.log(1e-6), np.log(1e6)),
       ratio=st.floats(np.log(1e-3), np.log(1e3)), z_in=ZERO_POINTS, z_out=ZERO_POINTS,
       same_scale=st.booleans())
def test_every_input_matches_tflm(kind, s_in, ratio, z_in, z_out, same_scale):
    s_in = float(np.float32(np.exp(s_in)))
    # the natural output scale: ABS keeps the input's range, RSQRT's largest value is 1/sqrt(s_in)
    natural = s_in if kind == "abs" else 1 / np.sqrt(s_in) / 127
    s_out = s_in if kind == "abs" and same_scale else natural * float(np.exp(ratio))
    try:
        m = model(kind, s_in, z_in, s_out, z_out)
    except GraphError as e:                       # a multiplier out of TFLM's range: refused
        assert "multiplier" in str(e)
        assume(False)
    O.check_against_tflm(m, valid_inputs(m), label=f"{kind} (every input)")
    check_real(m)


def test_inverse_square_root_helper():
    """GetInvSqrtQuantizedMultiplierExp against 1/sqrt in floats: multiplier * 2^(shift - 31)
    within 1e-5 of 1/sqrt(x) (relative), over small, large and random x up to 2^31 - 1."""
    rng = np.random.default_rng(3)
    xs = list(range(2, 600)) + [2 ** 27, 2 ** 29 - 1, 2 ** 29, 2 ** 31 - 1] + \
        rng.integers(2, 2 ** 31 - 1, size=500).tolist()
    for x in xs:
        m, shift = fp.inv_sqrt_quantized_multiplier_exp(x, -1)
        got = m * 2.0 ** (shift - 31)
        assert abs(got - 1 / np.sqrt(x)) <= 1e-5 / np.sqrt(x), (x, m, shift)
    assert fp.inv_sqrt_quantized_multiplier_exp(1, -1) == (fp.INT32_MAX, 0)
    assert fp.inv_sqrt_quantized_multiplier_exp(0, -1) == (fp.INT32_MAX, 0)


@pytest.mark.parametrize("kind", ["abs", "rsqrt"])
def test_c_matches_numpy(kind):
    """The generated C (the lookup table of every output) against the NumPy arithmetic, on a
    large feature map and in place after a conv, and once under ASan and UBSan."""
    b = O.Builder(4, (24, 20, 8), kind)
    b.conv(8, kernel=(3, 3), padding="same", activation="relu" if kind == "rsqrt" else "none")
    m = getattr(b, kind)().model()
    x = O.int8_input(np.random.default_rng(1), (24, 20, 8), 3)
    for sanitize in (False, True):
        O.check_reference_c(m, x, sanitize)


def test_round_trip_through_the_file():
    for kind in ("abs", "rsqrt"):
        q = model(kind, 0.07, -5, 0.04 if kind == "abs" else 0.05, 30, shape=(3, 5))
        r = from_tflite(to_tflite(q))
        assert [op.kind for op in r.ops] == [kind]
        x = valid_inputs(q)[:, :15].reshape(1, 3, 5)
        np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


def test_rsqrt_refuses_a_negative_input_by_name():
    """TFLM stops on an input below the zero point; minitiny names the op and the value."""
    m = model("rsqrt", 0.1, 10, 0.05, 0, shape=(4,))
    with pytest.raises(GraphError, match=r"op 'rsqrt_0' \(rsqrt\): input 9 lies below the zero point 10"):
        m.predict_int8(np.array([[10, 11, 9, 12]], dtype=np.int8))


def test_out_of_range_multiplier_is_refused_by_name():
    ts = {"x": QTensor("x", (4,), "int8", 1e6, 0), "y": QTensor("y", (4,), "int8", 1e6, 0)}
    with pytest.raises(GraphError, match=r"op 'r' \(rsqrt\): the multiplier 1 / \(sqrt\(s_in\) \* s_out\)"):
        QModel("m", ts, [QOp("rsqrt", "r", ["x"], ["y"])], ["x"], ["y"])
