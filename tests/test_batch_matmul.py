"""BATCH_MATMUL (Keras' Attention, MultiHeadAttention, Dot) against an independent loop over
the real products, TensorFlow Lite Micro through the `.tflite` writer, and the generated C
(reference kernels; once under ASan and UBSan).

Hypothesis draws the matrices (rows, depth, cols), adj_x and adj_y, zero, one or two batch
dimensions with either operand broadcast along them, and the quantization; a few large
products per CI run (depths in the hundreds), more under HYPOTHESIS_PROFILE=thorough.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from minitiny.quant import fixedpoint as fp
from minitiny.quant.graph import GraphError
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "batch_matmul vs TFLM")


def model(lhs_shape, rhs_shape, adj_x, adj_y, seed):
    b = O.Builder(seed, lhs_shape, "bmm")
    lhs = b.cur
    rhs = b.input("rhs", rhs_shape)
    b.cur = lhs
    return b.batch_matmul(rhs, adj_x, adj_y).model()


def loop(m, lhs, rhs):
    """The product one output at a time, in Python integers: the sum of (q_l - z_l)(q_r - z_r)
    over the depth, requantized by s_l s_r / s_out (TFLM's double-rounding multiply), plus
    the output zero point, clamped."""
    p = m.ops[0].params
    out_t = m.tensors[m.outputs[0]]
    a = np.swapaxes(lhs, -1, -2) if p["adj_x"] else lhs            # (N, ..., rows, depth)
    c = np.swapaxes(rhs, -1, -2) if p["adj_y"] else rhs            # (N, ..., depth, cols)
    rank = len(out_t.shape) + 1
    a = a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:])   # batch dimensions lined up
    c = c.reshape(c.shape[:1] + (1,) * (rank - c.ndim) + c.shape[1:])
    out = np.zeros((lhs.shape[0],) + out_t.shape, np.int8)
    for index in np.ndindex(out.shape):
        sample, batch, (row, col) = index[0], index[1:-2], index[-2:]
        a_b = tuple(0 if d == 1 else i for d, i in zip(a.shape[1:-2], batch))    # broadcast
        c_b = tuple(0 if d == 1 else i for d, i in zip(c.shape[1:-2], batch))
        lhs_row = a[(sample,) + a_b + (row,)].astype(int) + p["lhs_offset"]
        rhs_col = c[(sample,) + c_b + (slice(None), col)].astype(int) + p["rhs_offset"]
        total = int(np.dot(lhs_row, rhs_col))
        q = int(fp.multiply_by_quantized_multiplier(total, p["output_multiplier"], p["output_shift"]))
        out[index] = min(max(q + p["output_offset"], -128), 127)
    return out


@st.composite
def configs(draw, large=False):
    top = 40 if large else 6
    rows, depth, cols = (draw(st.integers(1, top)) for _ in range(3))
    if large:
        depth = draw(st.integers(64, 400))
    n_batch = draw(st.integers(0, 2))
    batch = [draw(st.integers(1, 3)) for _ in range(n_batch)]
    # each operand keeps some batch dimensions, others 1 (broadcast), and may drop leading ones
    lhs_batch = [d if draw(st.booleans()) else 1 for d in batch]
    rhs_batch = [d if draw(st.booleans()) else 1 for d in batch]
    rhs_batch = rhs_batch[draw(st.integers(0, len(rhs_batch))):]
    adj_x, adj_y = draw(st.booleans()), draw(st.booleans())
    lhs = tuple(lhs_batch) + ((depth, rows) if adj_x else (rows, depth))
    rhs = tuple(rhs_batch) + ((cols, depth) if adj_y else (depth, cols))
    return lhs, rhs, adj_x, adj_y, draw(st.integers(0, 2 ** 16))


def check(lhs_shape, rhs_shape, adj_x, adj_y, seed, c_code=False, sanitize=False, n=3):
    m = model(lhs_shape, rhs_shape, adj_x, adj_y, seed)
    rng = np.random.default_rng(seed)
    xs = [O.int8_input(rng, lhs_shape, n), O.int8_input(rng, rhs_shape, n)]
    want = m.predict_int8(xs)
    np.testing.assert_array_equal(want, loop(m, *xs))
    if O.tflm.available():
        O.check_against_tflm(m, xs)
    if c_code:
        O.check_reference_c(m, xs, sanitize)


@given(configs())
def test_small_against_the_loop_tflm_and_c(cfg):
    check(*cfg, c_code=True)


@settings(max_examples=50 if THOROUGH else 3)
@given(configs(large=True))
def test_large_against_the_loop_and_tflm(cfg):
    check(*cfg, n=1)


def test_c_sanitized():
    check((2, 5, 7), (1, 4, 7), False, True, 3, c_code=True, sanitize=True)


def test_round_trip_through_the_file():
    q = model((2, 5, 6), (6, 4), False, False, 1)
    r = from_tflite(to_tflite(q))
    assert [op.kind for op in r.ops] == ["batch_matmul"]
    rng = np.random.default_rng(2)
    xs = [O.int8_input(rng, (2, 5, 6), 2), O.int8_input(rng, (6, 4), 2)]
    np.testing.assert_array_equal(r.predict_int8(xs), q.predict_int8(xs))


def test_shapes_that_do_not_multiply_are_refused_by_name():
    with pytest.raises(GraphError, match=r"\(batch_matmul\): lhs \(5, 6\) and rhs \(5, 4\) do not multiply: 6 != 5"):
        b = O.Builder(0, (5, 6), "bmm")
        lhs, rhs = b.cur, b.input("rhs", (5, 4))
        b.cur = lhs
        b._op("batch_matmul", [lhs, rhs], b._tensor((5, 4), 0.1, 0)).model()
