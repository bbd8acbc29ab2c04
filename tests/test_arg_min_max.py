"""ARG_MAX and ARG_MIN (int32 indices out) against a loop that keeps the first extreme value,
TensorFlow Lite Micro through the `.tflite` writer, the importer (a TF-made file in
tests/data/ops), and refused by name where minitiny's C cannot carry their int32 output.

Hypothesis draws the rank (1 to 4 per sample), the axis, and inputs with few distinct values
(ties decide the first index); a few large tensors per CI run, more under
HYPOTHESIS_PROFILE=thorough.
"""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from minitiny import codegen
from minitiny.codegen.output import CodegenError
from minitiny.quant.graph import GraphError
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "arg_max, arg_min vs TFLM")


def first_extreme(kind, x, axis):
    """The index of the first largest (smallest) value along `axis`, by walking it as TFLM does:
    the candidate changes only on a strictly greater (smaller) value."""
    moved = np.moveaxis(x, axis, -1)
    out = np.zeros(moved.shape[:-1], np.int32)
    for index in np.ndindex(out.shape):
        row, best = moved[index], 0
        for i in range(1, len(row)):
            if (row[i] > row[best]) if kind == "arg_max" else (row[i] < row[best]):
                best = i
        out[index] = best
    return out


@st.composite
def configs(draw, large=False):
    rank = draw(st.integers(1, 4))
    top = 40 if large else 5
    shape = tuple(draw(st.integers(1, top if d == rank - 1 else 4)) for d in range(rank))
    return (draw(st.sampled_from(["arg_max", "arg_min"])), shape, draw(st.integers(0, rank - 1)),
            draw(st.integers(1, 256)), draw(st.integers(0, 2 ** 16)))


def check(kind, shape, axis, distinct, seed):
    m = O.Builder(seed, shape, "am").arg(kind, axis).model()
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, -128 + distinct, size=(3,) + shape).astype(np.int8)     # ties when few
    got = m.predict_int8(x)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, first_extreme(kind, x, axis + 1))
    if O.tflm.available():
        O.check_against_tflm(m, x, label=kind)


@given(configs())
def test_small_against_the_loop_and_tflm(cfg):
    check(*cfg)


@settings(max_examples=40 if THOROUGH else 3)
@given(configs(large=True))
def test_large_against_the_loop_and_tflm(cfg):
    check(*cfg)


def test_round_trip_through_the_file():
    for kind in ("arg_max", "arg_min"):
        q = O.Builder(1, (3, 7), "am").dense(5, keep_num_dims=True).arg(kind, 1).model()
        r = from_tflite(to_tflite(q))
        assert [(op.kind, op.options) for op in r.ops][-1] == (kind, {"axis": 1})
        assert r.tensors[r.outputs[0]].dtype == "int32"
        x = O.int8_input(np.random.default_rng(2), (3, 7), 4)
        np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


def test_the_c_refuses_it_by_name():
    m = O.Builder(0, (6,), "am").arg("arg_max", 0).model()
    with tempfile.TemporaryDirectory() as d, \
            pytest.raises(CodegenError, match=r"op kind\(s\) arg_max have no C template"):
        codegen.generate(m, d, name="am")


def test_an_int8_output_is_refused_by_name():
    b = O.Builder(0, (6,), "am")
    with pytest.raises(GraphError, match=r"\(arg_max\): output 't1' must be an int32 activation holding indices"):
        b._op("arg_max", [b.cur], b._tensor((), 1.0, 0), {"axis": 0}).model()
