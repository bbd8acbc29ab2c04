"""The scalar kernels (codegen/templates/scalar/{fully_connected,conv_2d,depthwise_conv_2d}.c.j2)
and the requantization they call (templates/scalar/requantize.c.j2), beside TFLM's as the
reference variant emits it (fixedpoint.c.j2 MultiplyByQuantizedMultiplier).

* The requantization's short road for shift <= -1 (no branch, no mask) against
  minitiny/quant/fixedpoint.py (gemmlowp's two roundings as TFLM writes them): the C itself,
  compiled, on every shift, the ties of both roundings, the int32 extremes (the one saturating
  product INT32_MIN * INT32_MIN too), random values, and values drawn by hypothesis.
* The kernels' new code paths (four output channels or four input channels at a time, and
  the one-at-a-time remainder) on shapes that take each of them: channel counts below, at and
  past multiples of 4, one input channel, 1x1 images, stride 2, 'same' and 'valid' padding,
  depth multiplier > 1, per-tensor and per-channel scales, fused relu/relu6; the generated C
  against the NumPy int8 reference (QModel.predict_int8), bit for bit; the same shapes
  through the reference kernels.
About 10 s.
"""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402

from minitiny.codegen import generator, templating  # noqa: E402
from minitiny.quant import fixedpoint as fp  # noqa: E402
from test_codegen_models import check_bit_exact, inputs_for  # noqa: E402

GCC = shutil.which("gcc")
requires_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# ---------------------------------------------------------------------------------------
# MultiplyByQuantizedMultiplier, the C as generated, against fixedpoint.py
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[False, True], ids=["TFLM's (reference)", "the short road (scalar)"])
def c_mbqm(request):
    """The generated MultiplyByQuantizedMultiplier (double rounding), in a shared library
    with one exported loop over arrays: TFLM's function, as the reference variant emits it,
    and the scalar variant's shorter road to the same bits."""
    if GCC is None:
        pytest.skip("gcc is not installed")
    helpers = generator._helpers(["fully_connected"])
    source = templating.environment().get_template("fixedpoint.c.j2").render(
        helpers=helpers, single_rounding=False, requantize_fast=request.param)
    source = ("#include <stdint.h>\n" + source + """
void mbqm_many(const int32_t *x, const int32_t *m, const int32_t *shift, int32_t *out, int n)
{
    for (int i = 0; i < n; ++i) {
        out[i] = MultiplyByQuantizedMultiplier(x[i], m[i], (int)shift[i]);
    }
}
""")
    with tempfile.TemporaryDirectory() as d:
        c, so = os.path.join(d, "mbqm.c"), os.path.join(d, "mbqm.so")
        with open(c, "w") as f:
            f.write(source)
        subprocess.run([GCC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                        "-shared", "-fPIC", c, "-o", so], check=True, capture_output=True)
        lib = ctypes.CDLL(so)
        lib.mbqm_many.restype = None

        def run(x, m, shift):
            x, m, shift = (np.ascontiguousarray(np.asarray(v, np.int64).astype(np.int32)) for v in (x, m, shift))
            out = np.empty_like(x)
            ptr = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))  # noqa: E731
            lib.mbqm_many(ptr(x), ptr(m), ptr(shift), ptr(out), ctypes.c_int(len(x)))
            return out.astype(np.int64)
        yield run


def check_mbqm(run, x, m, shift):
    x, m, shift = (np.asarray(v, np.int64).ravel() for v in np.broadcast_arrays(x, m, shift))
    got = run(x, m, shift)
    want = np.array([int(fp.multiply_by_quantized_multiplier(a, b, s)) for a, b, s in zip(x, m, shift)])
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(int(x[i]), int(m[i]), int(shift[i]), int(got[i]), int(want[i])) for i in bad[:5]]


def test_mbqm_on_ties_and_extremes(c_mbqm):
    """Every right shift 1..31 (and 0, 1, 30 for the general road) on the ties of the high
    multiply and of the rounding shift, both signs, and the int32 ends; multipliers at the
    ends of [2^30, 2^31), 0, negative ones, and INT32_MIN (whose product with INT32_MIN is
    the one that saturates)."""
    shifts = list(range(-31, 1)) + [1, 30]
    multipliers = [1 << 30, (1 << 30) + 1, 3 << 29, INT32_MAX, 0, -(1 << 30), INT32_MIN + 1, INT32_MIN]
    xs = {0, 1, -1, 2, -2, 3, -3, INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 1 << 30, -(1 << 30)}
    for r in range(1, 32):                     # x * 2^30 / 2^31 = x / 2: x = odd gives ties of the first rounding
        xs |= {(1 << r) + (1 << (r - 1)), -(1 << (r - 1)), (1 << (r - 1)) - 1, -(1 << r) - (1 << (r - 1))}
        xs |= {v * 2 for v in ((1 << r) + (1 << (r - 1)), -(1 << (r - 1)))}    # ties of the second, m = 2^30
    xs = [v for v in xs if INT32_MIN <= v <= INT32_MAX]
    grid = np.array([(x, m, s) for x in xs for m in multipliers for s in shifts], np.int64)
    check_mbqm(c_mbqm, grid[:, 0], grid[:, 1], grid[:, 2])


def test_mbqm_random(c_mbqm):
    """20,000 random (x, multiplier, shift) over the whole int32 range, a third of them with
    x small (as real accumulators are)."""
    rng = np.random.default_rng(6)
    n = 20000
    x = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    x[: n // 3] = rng.integers(-(1 << 20), 1 << 20, n // 3)
    m = rng.integers(1 << 30, 1 << 31, n)
    m[::7] = rng.integers(INT32_MIN, INT32_MAX, len(m[::7]), endpoint=True)
    shift = rng.integers(-31, 8, n)
    check_mbqm(c_mbqm, x, m, shift)


@given(st.integers(INT32_MIN, INT32_MAX), st.integers(INT32_MIN, INT32_MAX), st.integers(-31, 30))
def test_mbqm_drawn_by_hypothesis(c_mbqm, x, m, shift):
    check_mbqm(c_mbqm, x, m, shift)


# ---------------------------------------------------------------------------------------
# The kernels: every new code path against the NumPy int8 reference
# ---------------------------------------------------------------------------------------
def model(seed, in_shape, build):
    b = o.Builder(seed, in_shape, "scalar")
    build(b)
    return b.model()


CASES = {
    # dense: units below, at, and past multiples of 4 (block + remainder), folded or not
    "dense_3": ((17,), lambda b: b.dense(3, "relu", per_channel=True)),
    "dense_4": ((9,), lambda b: b.dense(4, "none", per_channel=False, bias=False)),
    "dense_9_relu6": ((33,), lambda b: b.dense(9, "relu6", per_channel=True)),
    # conv: out channels 1..6 and 8, one input channel, 'same' borders, stride 2, 1x1 image
    "conv_1ch_same": ((7, 6, 1), lambda b: b.conv(8, (3, 3), padding="same", activation="relu")),
    "conv_5_stride2": ((9, 7, 3), lambda b: b.conv(5, (3, 2), (2, 2), padding="same", per_channel=False)),
    "conv_6_valid": ((6, 6, 4), lambda b: b.conv(6, (3, 3), (1, 2), padding="valid", activation="relu6")),
    "conv_3_1x1_image": ((1, 1, 5), lambda b: b.conv(3, (3, 3), padding="same", bias=False)),
    "conv_4_1x1_image": ((1, 1, 2), lambda b: b.conv(4, (1, 1), padding="valid")),
    "conv_7_tall_kernel": ((11, 5, 1), lambda b: b.conv(7, (5, 4), (2, 2), padding="same")),
    # depthwise: input channels below, at, past multiples of 4; depth multiplier 2; borders
    "dw_3": ((5, 5, 3), lambda b: b.depthwise(1, (3, 3), padding="same")),
    "dw_4_m2": ((6, 5, 4), lambda b: b.depthwise(2, (3, 3), (2, 1), padding="same", activation="relu")),
    "dw_9": ((5, 4, 9), lambda b: b.depthwise(1, (3, 3), padding="same", per_channel=False, bias=False)),
    "dw_6_m3_valid": ((4, 5, 6), lambda b: b.depthwise(3, (2, 3), (1, 2), padding="valid", activation="relu6")),
    "dw_8_1x1_image": ((1, 1, 8), lambda b: b.depthwise(1, (3, 3), padding="same")),
}


@requires_gcc
@pytest.mark.parametrize("variant", ["reference", "scalar"])
@pytest.mark.parametrize("label", sorted(CASES))
def test_scalar_kernel_paths_are_bit_exact(label, variant):
    in_shape, build = CASES[label]
    for seed in range(2):
        m = model(seed, in_shape, build)
        check_bit_exact(m, inputs_for(m, seed, n=8), variant=variant)


@requires_gcc
def test_the_cases_take_both_paths_of_each_kernel():
    """The shapes above reach the four-at-a-time loop and the remainder loop of each kernel
    (read from the generated C, so a template change that drops a path shows here)."""
    seen = {}
    for label, (in_shape, build) in CASES.items():
        with tempfile.TemporaryDirectory() as d:
            from minitiny import codegen
            codegen.generate(model(0, in_shape, build), d, name="m", variant="scalar")
            with open(os.path.join(d, "m_model.c")) as f:
                c = f.read()
        kind = label.split("_")[0]
        seen.setdefault(kind, set())
        seen[kind] |= {path for path, text in (("four", "+= 4)"), ("rest", "one at a time")) if text in c}
    assert seen == {"dense": {"four", "rest"}, "conv": {"four", "rest"}, "dw": {"four", "rest"}}
