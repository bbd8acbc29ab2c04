"""MIRROR_PAD (tf.pad REFLECT and SYMMETRIC) against NumPy's np.pad of the same mode, TensorFlow
Lite Micro through the `.tflite` writer, and the generated C (reference kernels; once under
ASan and UBSan).

Hypothesis draws the rank (1 to 4 per sample), the dimensions, each padding up to TensorFlow's
limit (the size less one for REFLECT, the size for SYMMETRIC), and the mode; a few large
tensors per CI run, more under HYPOTHESIS_PROFILE=thorough.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from minitiny.quant.graph import GraphError
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "mirror_pad vs TFLM")


@st.composite
def configs(draw, large=False):
    mode = draw(st.sampled_from(["reflect", "symmetric"]))
    rank = draw(st.integers(1, 4))
    top = 30 if large else 5
    shape = tuple(draw(st.integers(1, top if d == rank - 1 or rank < 3 else 6)) for d in range(rank))
    most = [n - 1 if mode == "reflect" else n for n in shape]
    paddings = tuple((draw(st.integers(0, m)), draw(st.integers(0, m))) for m in most)
    return shape, paddings, mode, draw(st.integers(0, 2 ** 16))


def check(shape, paddings, mode, seed, c_code=False, sanitize=False):
    b = O.Builder(seed, shape, "mp")
    m = b.mirror_pad(paddings, mode).model()
    x = O.int8_input(np.random.default_rng(seed), shape, 3)
    want = m.predict_int8(x)
    np.testing.assert_array_equal(want, np.pad(x, ((0, 0),) + paddings, mode=mode))
    if O.tflm.available():
        O.check_against_tflm(m, x)
    if c_code:
        O.check_reference_c(m, x, sanitize)


@given(configs())
def test_small_against_numpy_tflm_and_c(cfg):
    check(*cfg, c_code=True)


@settings(max_examples=40 if THOROUGH else 3)
@given(configs(large=True))
def test_large_against_numpy_and_tflm(cfg):
    check(*cfg)


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
def test_c_sanitized(mode):
    check((3, 4, 2), ((2, 1), (0, 3), (1, 1)), mode, 4, c_code=True, sanitize=True)


def test_round_trip_through_the_file():
    for mode in ("reflect", "symmetric"):
        q = O.Builder(1, (4, 5, 2), "mp").mirror_pad(((1, 2), (3, 0), (0, 1)), mode).model()
        r = from_tflite(to_tflite(q))
        assert [(op.kind, op.options["mode"]) for op in r.ops] == [("mirror_pad", mode)]
        x = O.int8_input(np.random.default_rng(2), (4, 5, 2), 2)
        np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


@pytest.mark.parametrize("mode, pad, match", [
    ("reflect", (3, 0), r"paddings \(3, 0\) of dimension 0 \(size 3\): reflect mode pads at most the size less one"),
    ("symmetric", (0, 4), r"paddings \(0, 4\) of dimension 0 \(size 3\): symmetric mode pads at most the size"),
])
def test_paddings_past_the_mirror_are_refused_by_name(mode, pad, match):
    with pytest.raises(GraphError, match=r"\(mirror_pad\): " + match):
        O.Builder(0, (3, 2), "mp").mirror_pad((pad, (0, 0)), mode).model()
