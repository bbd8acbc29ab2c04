"""The DSP depthwise_conv_2d kernel: its padded int16 plane and tap pairs against TFLM's
direct window sum, its doubled-accumulator epilogue against minitiny/quant/fixedpoint.py,
and the generated C against the NumPy int8 reference on the host (ACLE shim, sanitizers)
and on QEMU's Cortex-M4. Shared set-up: tests/dsp_host.py.
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402
from dsp_host import (folded_layer, host_dsp, inputs_for, requires_gcc, requires_qemu,  # noqa: E402
                      run_on, with_real_multiplier)

from minitiny.codegen import dsp, generator  # noqa: E402
from minitiny.quant import fixedpoint as fp  # noqa: E402


# ---------------------------------------------------------------------------------------
# depthwise_conv_2d: the plane kernel (dsp/depthwise_conv_2d.c.j2, dsp.py's depthwise section)
# ---------------------------------------------------------------------------------------
def plane_depthwise(x, w, bias, stride, pad, out_hw, z):
    """A NumPy model of what the kernel sums for one channel, written from its comments:
    the plane (x padded with Z, then Z up to `cols`), the even/odd int16 weight pairs, and
    for each output the words from its window's start column rounded down to even. The
    result must be the plain sum of w * (x - Z) + bias over the window inside the image."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = w.shape, stride, pad, out_hw
    pairs = kw // 2 + 1
    cols = 2 * ((ow - 1) * sw // 2 + pairs)
    rows = (oh - 1) * sh + kh
    plane = np.full((rows, max(cols, pw + x.shape[1])), z, np.int64)
    ys, xs = min(x.shape[0], rows - ph), min(x.shape[1], cols - pw)
    plane[ph:ph + ys, pw:pw + xs] = x[:ys, :xs]
    wz = np.zeros((kh, 2 * pairs + 1), np.int64)           # w[1 + k], zeros around
    wz[:, 1:1 + kw] = w
    even = np.stack([wz[:, 1::2][:, :pairs], wz[:, 2::2][:, :pairs]], axis=-1)    # (kh, pairs, 2)
    odd = np.stack([wz[:, 0::2][:, :pairs], wz[:, 1::2][:, :pairs]], axis=-1)
    folded = bias - z * int(w.sum())
    out = np.zeros((oh, ow), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            s = ox * sw
            words = plane[oy * sh:oy * sh + kh, s & ~1:(s & ~1) + 2 * pairs].reshape(kh, pairs, 2)
            out[oy, ox] = folded + int(((even if s % 2 == 0 else odd) * words).sum())
    return out


@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.integers(1, 3), st.sampled_from(["same", "valid"]), st.integers(-128, 127), st.integers(0, 2 ** 16))
def test_depthwise_plane_pairs_give_the_window_sums(h, w_, kh, kw, sh, sw, padding, z, seed):
    """The plane, its Z padding, the folded bias and the even/odd pairs: the oracle is the
    direct sum over the window's taps inside the image (TFLM's reference loop)."""
    if padding == "valid" and (kh > h or kw > w_):
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(h, w_))
    w = rng.integers(-127, 128, size=(kh, kw))
    bias = int(rng.integers(-1000, 1000))
    out_hw, pads = [], []
    for size, k, s in ((h, kh, sh), (w_, kw, sw)):
        out = -(-size // s) if padding == "same" else (size - k) // s + 1
        out_hw.append(out)
        pads.append(max((out - 1) * s + k - size, 0) // 2 if padding == "same" else 0)
    got = plane_depthwise(x, w, bias, (sh, sw), pads, out_hw, z)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            want = bias
            for fy in range(kh):
                for fx in range(kw):
                    iy, ix = oy * sh - pads[0] + fy, ox * sw - pads[1] + fx
                    if 0 <= iy < h and 0 <= ix < w_:
                        want += int(w[fy, fx]) * (int(x[iy, ix]) - z)
            assert got[oy, ox] == want


def test_depthwise_plane_geometry():
    """The figures the kernel's comments promise, worked by hand for ds-cnn's layer (3x3
    'same' on 25x5x64) and for an image too big for one band."""
    p = o.single_op_model(0, "depthwise_conv_2d", (25, 5, 64)).ops[0].params
    axis, across, along = dsp.depthwise_axes(p)
    assert axis == "y" and along["out"] == 25 and across["out"] == 5     # rows run along the 25
    assert along["in_step"] == 5 * 64 and across["in_step"] == 64
    band, rows, cols, copy = dsp.depthwise_plane(p)
    assert (band, rows, cols, copy) == (5, 7, 28, 25)      # 7 = 5 + 2 padding; 28 >= 24 + 4 columns
    assert dsp.depthwise_fast(p) and dsp.depthwise_scratch_bytes(p) == 7 * 28 * 2
    assert dsp.depthwise_weight_bytes(p) == 9 * 64
    q = o.single_op_model(0, "depthwise_conv_2d", (40, 40, 2), bias=False).ops[0].params
    band, rows, cols, _ = dsp.depthwise_plane(q)
    assert cols == 42 and rows * cols * 2 <= dsp.DEPTHWISE_PLANE_BYTES < (rows + 1) * cols * 2
    assert band == rows - 2 < 40
    assert dsp.depthwise_weight_bytes(q) == 9 * 2 + 4 * 2                # a folded bias is added
    r = o.single_op_model(0, "depthwise_conv_2d", (6, 7, 3), kernel=(2, 3), stride=(2, 1)).ops[0].params
    assert not dsp.depthwise_fast(r)
    assert dsp.depthwise_scratch_bytes(r) == dsp.depthwise_plane(r)[1] * dsp.depthwise_plane(r)[2] * 2 + 2 * 2 * 2 * 4


def depthwise_models(seed):
    """A shape for each path of the plane kernel: the 3x3 fast kernel along x and along y,
    rows of odd and even length, one output per row, several bands, the general kernel
    (other sizes, strides along the rows, depth multipliers, 'valid'), channel counts not
    a multiple of 4, per-tensor and per-channel, no bias, relu and relu6, and the general
    requantization (a multiplier >= 1/2)."""
    dw = "depthwise_conv_2d"
    return [
        o.single_op_model(seed, dw, (25, 5, 6), activation="relu"),                     # along y, odd
        o.single_op_model(seed, dw, (4, 9, 5), per_channel=False),                        # along x, odd
        o.single_op_model(seed, dw, (6, 8, 3), stride=(2, 1), activation="relu6"),        # along x, even
        o.single_op_model(seed, dw, (1, 1, 7)),                                           # one output
        o.single_op_model(seed, dw, (3, 1, 2), depth_multiplier=3, bias=False),
        o.single_op_model(seed, dw, (40, 38, 1), bias=False),                            # bands
        o.single_op_model(seed, dw, (37, 36, 2), kernel=(2, 5), stride=(1, 2)),           # general, bands
        o.single_op_model(seed, dw, (7, 6, 5), kernel=(3, 3), stride=(2, 2), depth_multiplier=2),
        o.single_op_model(seed, dw, (6, 7, 3), kernel=(4, 2), padding="valid", per_channel=False),
        o.single_op_model(seed, dw, (9, 4, 4), kernel=(1, 1), stride=(3, 2), padding="valid"),
        with_real_multiplier(o.single_op_model(seed, dw, (5, 6, 3), bias=False), 0.8),
        o.single_op_model(seed, dw, (6, 10, 4)),                                         # along x, 10 = 2 * 4 + 2
        # a multiplier near 2^-30: requantize_fast, but Z_out 2^r too big to fold (seed 0)
        with_real_multiplier(o.single_op_model(seed, dw, (5, 10, 3), per_channel=False, activation="relu"),
                             2.0 ** -30),
        # the 3x3 stride-2 path: along y (13 outputs), along x (7), bands, stride 2 along x only
        o.single_op_model(seed, dw, (25, 9, 6), stride=(2, 2), activation="relu"),
        o.single_op_model(seed, dw, (9, 14, 5), stride=(2, 2), per_channel=False),
        o.single_op_model(seed, dw, (40, 38, 3), stride=(2, 2), bias=False),
        o.single_op_model(seed, dw, (8, 22, 3), stride=(1, 2), padding="valid", activation="relu6"),
    ]


def test_depthwise_models_take_the_paths_they_name():
    layers = [generator.build_context(m, "m", variant="dsp")["layers"][0] for m in depthwise_models(0)]
    # the one-output layer takes the scalar kernel, the faster there (generator.scalar_is_faster)
    assert layers[3]["dsp"] is None and layers[3]["template"] == "scalar/depthwise_conv_2d.c.j2"
    ctx = [layer["dsp"] for i, layer in enumerate(layers) if i != 3]
    assert [c["fast"] for c in ctx] == [True] * 5 + [False, True, False, False] + [True] * 7
    assert [c["stride2"] for c in ctx] == [False] * 6 + [True] + [False] * 5 + [True] * 4
    assert [c["along_axis"]["out"] for c in ctx[-4:]] == [13, 7, 20, 10]
    assert ctx[-2]["band"] < 19                                     # several bands
    assert {c["along_axis"]["out"] % 4 for c in ctx if c["stride2"]} == {0, 1, 2, 3}
    assert [c["along"] for c in ctx[:3]] == ["y", "x", "x"]
    assert ctx[4]["band"] < 40 and ctx[5]["band"] < 36             # several bands
    assert ctx[9]["fast_requantize"] is False and ctx[0]["fast_requantize"]
    # four outputs per pass, then two and/or one: rows of every length mod 4
    assert {c["along_axis"]["out"] % 4 for c in ctx if c["fast"]} == {0, 1, 2, 3}
    # the doubled sums (requantize_doubled_to_int8) exactly where the rounding folds
    assert [c["scale"] for c in ctx] == [1 if c["rounding"] is None else 2 for c in ctx]
    assert ctx[0]["scale"] == 2 and ctx[9]["scale"] == 1
    assert ctx[11]["fast_requantize"] and ctx[11]["rounding"] is None and ctx[11]["along_axis"]["out"] % 4 == 2
    m = depthwise_models(0)[0]
    layer = generator.build_context(m, "m", variant="dsp")["layers"][0]
    assert (layer["dsp"]["bias"] == 2 * dsp.depthwise_bias(layer["p"], m.tensors[m.ops[0].inputs[1]].data,
                                                             layer["bias"]["data"])).all()


def doubled_requantize(acc, multiplier, right_shift, rounding):
    """requantize_doubled_to_int8 before its clamp, in Python integers, with SMMLAR as the
    Arm Architecture Reference Manual defines it: (Ra << 32) + Rn * Rm + 0x80000000, the top
    32 bits; here of acc2 = 2 acc. Checks that every value stays an int32 as the C needs."""
    acc2 = 2 * acc
    assert -(1 << 31) <= acc2 < 1 << 31
    total = ((rounding << 32) + acc2 * multiplier + 0x80000000) >> 32
    assert -(1 << 31) <= total < 1 << 31
    return (total - (1 if acc2 < 0 else 0)) >> right_shift


@given(st.integers(-(1 << 30) + 1, (1 << 30) - 1), st.integers(1 << 30, (1 << 31) - 1), st.integers(1, 31),
       st.integers(-128, 127))
@settings(max_examples=400)
def test_doubled_requantize_is_tflms(acc, multiplier, right_shift, z):
    """The depthwise epilogue on 2 acc gives TFLM's MultiplyByQuantizedMultiplier + Z_out
    (fixedpoint.py) whenever folded_rounding accepts the layer."""
    p, w, b = folded_layer(abs(acc), right_shift, z)
    rounding = dsp.folded_rounding("depthwise_conv_2d", p, w.reshape(1, 1, 1, 1), b)
    if rounding is not None:
        assert doubled_requantize(acc, multiplier, right_shift, int(rounding[0])) == \
            fp.multiply_by_quantized_multiplier(acc, multiplier, -right_shift) + z


def test_doubled_requantize_on_ties_and_the_sign_of_acc():
    """Exhaustive where the rounding can go wrong: with multiplier 2^30 (and 2^30 + 1) the
    high part is about acc / 2, so small accumulators hit every tie of the division by 2^r
    on both signs; and acc = -1 with multiplier 2^30, the one case where the sign of acc
    (which the epilogue subtracts) is not the sign of the high part (TFLM's)."""
    for r in range(1, 7):
        for z in (-128, -1, 0, 5, 127):
            rounding = (1 << (r - 1)) + z * (1 << r)
            for multiplier in (1 << 30, (1 << 30) + 1, (1 << 31) - 1):
                for acc in range(-(1 << (r + 3)), 1 << (r + 3)):
                    assert doubled_requantize(acc, multiplier, r, rounding) == \
                        fp.multiply_by_quantized_multiplier(acc, multiplier, -r) + z, (acc, multiplier, r, z)
    for r in range(1, 32):
        for z in (-128, 0, 127):
            if (1 << (r - 1)) + 128 * (1 << r) + 2 < 1 << 31:       # folded_rounding's bound
                assert doubled_requantize(-1, 1 << 30, r, (1 << (r - 1)) + z * (1 << r)) == z


@requires_gcc
@pytest.mark.parametrize("seed", [0, 1])
def test_depthwise_models_on_the_host(shim_flags, seed):
    for i, model in enumerate(depthwise_models(seed)):
        host_dsp(model, inputs_for(model, seed, n=3), shim_flags, sanitize=(i % 2 == seed))


@requires_qemu
def test_depthwise_models_on_the_m4(tmp_path):
    """The real SMLAD/SMLATB/SMLABT against NumPy (run_on compares)."""
    for i, model in enumerate(depthwise_models(2)):
        if np.prod(model.input.shape) <= 2000:                     # the big band models: host only
            run_on(model, "dsp", "cortex-m4", tmp_path, seed=i, n=2)
