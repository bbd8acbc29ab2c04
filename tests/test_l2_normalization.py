"""L2_NORMALIZATION (tf.math.l2_normalize over the last axis) against the real function, TensorFlow
Lite Micro through the `.tflite` writer, and the generated C (reference kernels; once under
ASan and UBSan), which also runs TFLM's integer 1/sqrt (GetInvSqrtQuantizedMultiplierExp).

Hypothesis draws the rank (1 to 3 per sample), the depth (1 to 64, a few large ones up to
2000), the input scale over 1e-6..1e6 and zero point; some rows are all at the zero point
(a norm of 0). More under HYPOTHESIS_PROFILE=thorough.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "l2_normalization vs TFLM")


@st.composite
def configs(draw, large=False):
    rank = draw(st.integers(1, 3))
    depth = draw(st.integers(200, 2000)) if large else draw(st.integers(1, 64))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank - 1)) + (depth,)
    s_in = float(np.exp(draw(st.floats(np.log(1e-6), np.log(1e6)))))
    z_in = draw(st.sampled_from([-128, 127, 0]) | st.integers(-128, 127))
    return shape, s_in, z_in, draw(st.integers(0, 2 ** 16))


def check(shape, s_in, z_in, seed, c_code=False, sanitize=False):
    m = O.Builder(seed, shape, "l2", np.float32(s_in), z_in).l2_normalization().model()
    x = O.int8_input(np.random.default_rng(seed), shape, 4)
    x[0].reshape(-1, shape[-1])[0] = z_in                    # one row of zeros
    want = m.predict_int8(x)
    # the real function: within 1.01 output steps (two roundings, the Newton-Raphson 1/sqrt)
    r = (x.astype(np.float64) - z_in).reshape(-1, shape[-1])
    norm = np.sqrt((r * r).sum(axis=1, keepdims=True))
    real = np.clip(np.where(norm > 0, r / np.where(norm > 0, norm, 1), 0), -1, 127 / 128)
    assert np.all(np.abs(want.reshape(r.shape) / 128 - real) <= 1.01 / 128)
    if O.tflm.available():
        O.check_against_tflm(m, x)
    if c_code:
        O.check_reference_c(m, x, sanitize)


@given(configs())
def test_small_against_the_real_function_tflm_and_c(cfg):
    check(*cfg, c_code=True)


@settings(max_examples=40 if THOROUGH else 3)
@given(configs(large=True))
def test_large_against_the_real_function_and_tflm(cfg):
    check(*cfg)


def test_c_sanitized():
    check((3, 40), 0.05, -7, 1, c_code=True, sanitize=True)


def test_round_trip_through_the_file():
    q = O.Builder(1, (3, 6), "l2").l2_normalization().model()
    r = from_tflite(to_tflite(q))
    assert [op.kind for op in r.ops] == ["l2_normalization"]
    x = O.int8_input(np.random.default_rng(2), (3, 6), 2)
    np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


def test_output_quantization_is_checked_by_name():
    ts = {"x": QTensor("x", (4,), "int8", 0.1, 0), "y": QTensor("y", (4,), "int8", 0.1, 0)}
    with pytest.raises(GraphError, match=r"op 'n' \(l2_normalization\): output 'y' must have scale 0.0078125 and zero point 0"):
        QModel("m", ts, [QOp("l2_normalization", "n", ["x"], ["y"])], ["x"], ["y"])
