"""DEPTH_TO_SPACE and SPACE_TO_DEPTH against an independent naive loop (TensorFlow's
definition, written out per output value), TensorFlow Lite Micro through the `.tflite` writer,
and the generated C (reference kernels, and once under ASan and UBSan).

Hypothesis draws the block size (1..4), the plane and the channels so the sizes divide, and
the quantization; a few large feature maps per CI run, more under HYPOTHESIS_PROFILE=thorough.
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
    O.print_tally(request, "depth_to_space, space_to_depth vs TFLM")


def naive(kind, x, b):
    """tf.nn.depth_to_space / space_to_depth by their documented definition, one value at a
    time: depth_to_space moves channel group (dy * b + dx) of input pixel (y, x) to output
    pixel (y b + dy, x b + dx)."""
    n, h, w, c = x.shape
    if kind == "depth_to_space":
        out = np.zeros((n, h * b, w * b, c // (b * b)), x.dtype)
        for y in range(h):
            for xx in range(w):
                for dy in range(b):
                    for dx in range(b):
                        group = (dy * b + dx) * out.shape[3]
                        out[:, y * b + dy, xx * b + dx, :] = x[:, y, xx, group:group + out.shape[3]]
        return out
    out = np.zeros((n, h // b, w // b, c * b * b), x.dtype)
    for y in range(h):
        for xx in range(w):
            group = ((y % b) * b + xx % b) * c
            out[:, y // b, xx // b, group:group + c] = x[:, y, xx, :]
    return out


def model(kind, b, plane, c, seed=0):
    """A conv (so the op reads a computed activation) then the op."""
    h, w = plane
    builder = O.Builder(seed, (h, w, 3), kind)
    builder.conv(c, kernel=(1, 1))
    return getattr(builder, kind)(b).model()


@st.composite
def configs(draw, large=False):
    kind = draw(st.sampled_from(["depth_to_space", "space_to_depth"]))
    b = draw(st.integers(1, 4))
    top = 12 if large else 4
    if kind == "depth_to_space":
        plane = (draw(st.integers(1, top)), draw(st.integers(1, top)))
        c = b * b * draw(st.integers(1, 6 if large else 3))
    else:
        plane = (b * draw(st.integers(1, top)), b * draw(st.integers(1, top)))
        c = draw(st.integers(1, 16 if large else 5))
    return kind, b, plane, c, draw(st.integers(0, 2 ** 16))


def check(kind, b, plane, c, seed, c_code=False, sanitize=False):
    m = model(kind, b, plane, c, seed)
    x = O.int8_input(np.random.default_rng(seed), m.tensors[m.inputs[0]].shape, 3)
    everything = m.predict_int8(x, return_all=True)
    before = everything[m.ops[0].outputs[0]]
    np.testing.assert_array_equal(everything[m.outputs[0]], naive(kind, before, b))
    if O.tflm.available():
        O.check_against_tflm(m, x, label=kind)
    if c_code:
        O.check_reference_c(m, x, sanitize)


@given(configs())
def test_small_against_the_loop_and_tflm(cfg):
    check(*cfg)


@settings(max_examples=60 if THOROUGH else 3)
@given(configs(large=True))
def test_large_against_the_loop_tflm_and_c(cfg):
    check(*cfg, c_code=True)


@pytest.mark.parametrize("kind", ["depth_to_space", "space_to_depth"])
def test_c_sanitized(kind):
    check(kind, 2, (6, 4), 8, 5, c_code=True, sanitize=True)


def test_round_trip_through_the_file():
    for kind in ("depth_to_space", "space_to_depth"):
        q = model(kind, 2, (4, 6), 8)
        r = from_tflite(to_tflite(q))
        assert [op.kind for op in r.ops] == ["conv_2d", kind]
        assert r.ops[1].options == {"block_size": 2}
        x = O.int8_input(np.random.default_rng(2), (4, 6, 3), 2)
        np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


@pytest.mark.parametrize("kind, plane, c, match", [
    ("depth_to_space", (2, 2), 6, "input depth 6 is not divisible by block_size\\^2 = 4"),
    ("space_to_depth", (3, 4), 2, "input height 3 and width 4 must be divisible by block_size 2"),
])
def test_sizes_that_do_not_divide_are_refused_by_name(kind, plane, c, match):
    b = O.Builder(0, plane + (c,), kind)
    with pytest.raises(GraphError, match=rf"\({kind}\): {match}"):
        b._op(kind, [b.cur], b._tensor((1, 1, 1), b.t.scale, b.t.zero_point), {"block_size": 2}).model()
