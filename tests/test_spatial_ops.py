"""The spatial ops and reductions of issue 19 item 4, each against independent oracles:

    naive loops      the window sums written as plain loops here (their own 'same' padding
                     rule, TF's), the requantization from quant/fixedpoint.py
    TFLite Micro     the QModel written as a .tflite (tflite_io) and run by TFLM's interpreter
    host C           every kernel variant (reference, scalar, dsp on the host through the
                     ACLE shim, auto) compiled and run through cffi, == NumPy

Hypothesis draws shapes, kernels, strides, dilations, paddings, axes, scales and zero
points; a few large cases per CI run, more under HYPOTHESIS_PROFILE=thorough.
"""
import os
import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import int8_oracle as O
from dsp_host import host_dsp, requires_qemu, run_on
from minitiny import codegen
from minitiny.quant import fixedpoint as fp
from minitiny.quant.graph import QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
requires_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
VARIANTS = ("reference", "scalar", "auto")      # the host variants; dsp runs through the shim


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "spatial ops and reductions vs TFLM")


def host_c(model, x, variant):
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="m", variant=variant)
        return codegen.load(d)(x)


def check_c(model, x, variants=VARIANTS):
    want = model.predict_int8(x)
    for variant in variants:
        got = host_c(model, x, variant)
        assert np.array_equal(got, want), (variant, np.argwhere(got != want)[:3], model.summary())


def round_trip(model):
    """The model through the .tflite writer and reader: the same ops, options and bits."""
    r = from_tflite(to_tflite(model))
    assert [(op.kind, op.options) for op in r.ops] == [(op.kind, op.options) for op in model.ops]
    return r


# ---------------------------------------------------------------------------------------
# Dilation (and depth multipliers) in CONV_2D and DEPTHWISE_CONV_2D
# ---------------------------------------------------------------------------------------
def same_before(size, k, stride, dilation):
    """TensorFlow's 'same' rule, written out here: pad the dilated window's overhang, the
    odd row after."""
    out = -(-size // stride)
    span = (k - 1) * dilation + 1
    return max((out - 1) * stride + span - size, 0) // 2


def naive_conv(model, x):
    """The convolution as nested loops over (out_y, out_x, out_channel, filter_y, filter_x,
    in_channel), padded taps skipped; requantized per channel with fixedpoint."""
    op = model.ops[0]
    p, t = op.params, model.tensors
    w = t[op.inputs[1]].data.astype(np.int64)
    b = t[op.inputs[2]].data.astype(np.int64) if len(op.inputs) > 2 else np.zeros(p["out_c"], np.int64)
    sh, sw = op.options.get("stride", (1, 1))
    dh, dw = op.options.get("dilation", (1, 1))
    kh, kw = w.shape[1], w.shape[2]
    h, wd, in_c = model.input.shape
    depthwise = op.kind == "depthwise_conv_2d"
    same = op.options["padding"] == "same"
    ph = same_before(h, kh, sh, dh) if same else 0
    pw = same_before(wd, kw, sw, dw) if same else 0
    out_h, out_w, out_c = t[op.outputs[0]].shape
    acc = np.zeros((len(x), out_h, out_w, out_c), np.int64)
    xs = x.astype(np.int64) + p["input_offset"]
    for oy in range(out_h):
        for ox in range(out_w):
            for oc in range(out_c):
                for fy in range(kh):
                    for fx in range(kw):
                        iy, ix = oy * sh - ph + fy * dh, ox * sw - pw + fx * dw
                        if not (0 <= iy < h and 0 <= ix < wd):
                            continue
                        if depthwise:
                            ic = oc // op.options["depth_multiplier"]
                            acc[:, oy, ox, oc] += w[0, fy, fx, oc] * xs[:, iy, ix, ic]
                        else:
                            acc[:, oy, ox, oc] += xs[:, iy, ix, :] @ w[oc, fy, fx, :]
    acc += b
    q = fp.multiply_by_quantized_multiplier(acc, p["output_multiplier"], p["output_shift"], False)
    return np.clip(q + p["output_offset"], p["act_min"], p["act_max"]).astype(np.int8)


@st.composite
def dilated_configs(draw, kind):
    """(in_shape, cfg) of a convolution with a dilation in 1..4 along each axis."""
    padding = draw(st.sampled_from(["same", "valid"]))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    hw = tuple(draw(st.integers(s if padding == "valid" else 1, s + 8)) for s in span)
    in_c = draw(st.integers(1, 4))
    cfg = dict(kernel=kernel, dilation=dilation, padding=padding,
               stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
               activation=draw(O.activations), per_channel=draw(st.booleans()), bias=draw(st.booleans()))
    if kind == "conv_2d":
        cfg["out_c"] = draw(st.integers(1, 5))
    else:
        cfg["depth_multiplier"] = draw(st.integers(1, 3))
    return hw + (in_c,), cfg


@pytest.mark.parametrize("kind", ["conv_2d", "depthwise_conv_2d"])
@given(data=st.data())
def test_dilated_convolution_is_the_naive_loop(kind, data):
    in_shape, cfg = data.draw(dilated_configs(kind))
    model = O.single_op_model(data.draw(O.seeds), kind, in_shape, **cfg)
    x = O.int8_input(np.random.default_rng(0), in_shape, 4)
    np.testing.assert_array_equal(model.predict_int8(x), naive_conv(model, x))


@O.requires_tflm
@pytest.mark.parametrize("kind", ["conv_2d", "depthwise_conv_2d"])
@given(data=st.data())
def test_dilated_convolution_matches_tflm_through_the_file(kind, data):
    in_shape, cfg = data.draw(dilated_configs(kind))
    seed = data.draw(O.seeds)
    model = round_trip(O.single_op_model(seed, kind, in_shape, **cfg))
    O.check_against_tflm(model, seed=seed, label=f"{kind} dilated")


@O.requires_tflm
@pytest.mark.parametrize("kind", ["conv_2d", "depthwise_conv_2d"])
def test_large_dilated_convolutions_match_tflm(kind):
    """Where users go: a 3x3 window at dilation 2..8 over a 48x48 feature map (DeepLab's
    atrous convolutions), depth multiplier 2; 1 case per CI run, 4 when thorough."""
    cases = [((48, 48, 8), (2, 2), "same"), ((40, 33, 4), (8, 4), "same"), ((33, 40, 6), (4, 1), "valid"),
             ((64, 12, 3), (16, 2), "valid")]
    for i, (shape, dilation, padding) in enumerate(cases[:None if THOROUGH else 1]):
        cfg = dict(out_c=8) if kind == "conv_2d" else dict(depth_multiplier=2)
        model = O.single_op_model(i, kind, shape, kernel=(3, 3), dilation=dilation, padding=padding,
                                  stride=(1, 1 + i % 2), activation=O.ACTIVATIONS[i % 3], **cfg)
        O.check_against_tflm(round_trip(model), O.random_inputs(model, i, 2), label=f"{kind} dilated (large)")


@requires_gcc
@pytest.mark.parametrize("kind", ["conv_2d", "depthwise_conv_2d"])
@settings(max_examples=8)
@given(data=st.data())
def test_dilated_convolution_in_c_every_variant(kind, data, shim_flags):
    """The reference kernel runs the dilated window; the scalar and DSP variants hand such a
    layer to it, so every variant (and the DSP one on the host) gives NumPy's bits."""
    in_shape, cfg = data.draw(dilated_configs(kind))
    model = O.single_op_model(data.draw(O.seeds), kind, in_shape, **cfg)
    x = O.int8_input(np.random.default_rng(1), in_shape, 6)
    check_c(model, x)
    host_dsp(model, x, shim_flags)


@requires_gcc
def test_a_dilated_layer_among_dsp_layers(shim_flags):
    """A model mixing dilated and plain layers: with the DSP variant the plain ones keep their
    DSP kernels, the dilated one gets the reference kernel, and the bits are NumPy's."""
    b = O.Builder(3, (12, 11, 1), "mixed")
    b.conv(4, kernel=(3, 3))                                      # a one-channel conv (depthwise form)
    b.conv(6, kernel=(3, 3), dilation=(2, 2), activation="relu")
    b.depthwise(2, kernel=(3, 3), dilation=(1, 3))
    b.depthwise(1, kernel=(3, 3))
    model = b.model()
    x = O.int8_input(np.random.default_rng(2), model.input.shape, 6)
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="m", variant="dsp")
        source = open(os.path.join(d, "m_model.c")).read()
    assert "static void conv_2d(const ConvParams" in source            # the reference kernels
    assert "static void depthwise_conv_2d(const DepthwiseParams" in source
    assert "__smlad" in source                                      # and DSP kernels beside them
    host_dsp(model, x, shim_flags)
    check_c(model, x)


def test_dilation_is_refused_when_not_positive():
    from minitiny.quant.graph import GraphError
    with pytest.raises(GraphError, match="dilation must be two positive integers"):
        O.single_op_model(0, "conv_2d", (6, 6, 1), out_c=1, dilation=(0, 1))


# ---------------------------------------------------------------------------------------
# MEAN, SUM, REDUCE_MAX, REDUCE_MIN over any axes
# ---------------------------------------------------------------------------------------
REDUCERS = ("mean", "sum", "reduce_max", "reduce_min")
EXTREMES = {"reduce_max": np.max, "reduce_min": np.min}


@st.composite
def reduce_configs(draw, kind, max_dim=6):
    """(in_shape, axes, keep_dims): rank 1..4 besides the batch (TFLite's 2..5), one or two
    axes for MEAN and SUM (TFLM's limit), any for REDUCE_MAX and REDUCE_MIN, negative ones too."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, max_dim)) for _ in range(rank))
    most = rank if kind in EXTREMES else min(rank, 2)
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=most, unique=True))
    axes = tuple(a - rank if draw(st.booleans()) else a for a in axes)
    keep = draw(st.booleans()) or len(axes) == rank
    return shape, axes, keep


def reduce_model(seed, kind, shape, axes, keep, same_quantization=False):
    b = O.Builder(seed, shape, kind)
    b.reduce(kind, axes, keep, same_quantization)
    return b.model()


def naive_reduction(model, x):
    """Over every output index, the values it reduces, found by comparing indices: the max or
    the min, or the sum of (q - Z_in)."""
    op = model.ops[0]
    shape = model.input.shape
    axes = {a % len(shape) for a in op.options["axes"]}
    out_shape = tuple(1 if a in axes else d for a, d in enumerate(shape))
    z = int(model.input.zero_point)
    result = np.zeros((len(x),) + out_shape, np.int64)
    for out in np.ndindex(*out_shape):
        values = [x[(slice(None),) + i] for i in np.ndindex(*shape)
                  if all(i[a] == out[a] for a in range(len(shape)) if a not in axes)]
        values = np.stack(values, axis=1).astype(np.int64)
        result[(slice(None),) + out] = EXTREMES[op.kind](values, axis=1) if op.kind in EXTREMES \
            else (values - z).sum(axis=1)
    return result


@pytest.mark.parametrize("kind", REDUCERS)
@given(data=st.data())
def test_reduction_is_the_naive_loop(kind, data):
    """REDUCE_MAX and REDUCE_MIN are the naive max and min; MEAN and SUM, dequantized, are the real mean and sum of
    the dequantized inputs to within one output step (where inside the output's range: half
    a step of rounding, and up to half a step more from TFLM's double rounding)."""
    shape, axes, keep = data.draw(reduce_configs(kind))
    model = reduce_model(data.draw(O.seeds), kind, shape, axes, keep)
    x = O.int8_input(np.random.default_rng(0), shape, 4)
    got = model.predict_int8(x).reshape((len(x),) + (-1,))
    want = naive_reduction(model, x).reshape(len(x), -1)
    if kind in EXTREMES:
        np.testing.assert_array_equal(got, want)
        return
    count = model.ops[0].params["count"]
    out = model.tensors[model.outputs[0]]
    real = float(model.input.scale) * want / (count if kind == "mean" else 1)
    lo, hi = out.dequantize(-128), out.dequantize(127)
    inside = (real > lo) & (real < hi)
    err = np.abs(out.dequantize(got).astype(np.float64) - real)[inside]
    assert err.size == 0 or err.max() <= 1.01 * float(out.scale), \
        (err.max(), float(out.scale), model.summary())


@O.requires_tflm
@pytest.mark.parametrize("kind", REDUCERS)
@given(data=st.data())
def test_reduction_matches_tflm_through_the_file(kind, data):
    shape, axes, keep = data.draw(reduce_configs(kind))
    seed = data.draw(O.seeds)
    model = reduce_model(seed, kind, shape, axes, keep, same_quantization=data.draw(st.booleans()))
    r = from_tflite(to_tflite(model))
    assert [op.kind for op in r.ops] == [kind] and r.ops[0].params["axes"] == model.ops[0].params["axes"]
    O.check_against_tflm(r, seed=seed, label=kind)


@O.requires_tflm
@pytest.mark.parametrize("kind", REDUCERS)
def test_large_reductions_match_tflm(kind):
    """Where users go: Conv1D + GlobalAveragePooling1D's mean over 256 steps of 64 channels, a
    64x64x32 global pool, a 2x2 count of 2^14 values per output; extreme scale ratios. 1 case
    per CI run, all when thorough."""
    cases = [((256, 64), (0,)), ((64, 64, 32), (0, 1)), ((128, 2, 128, 2), (0, 2)), ((3, 500, 7), (-2,))]
    rng = np.random.default_rng(REDUCERS.index(kind))
    for i, (shape, axes) in enumerate(cases[:None if THOROUGH else 1]):
        b = O.Builder(i, shape, kind, in_scale=O.log_uniform(rng, 1e-5, 1e2))
        b.reduce(kind, axes, keep_dims=bool(i % 2))
        O.check_against_tflm(from_tflite(to_tflite(b.model())), O.random_inputs(b.model(), i, 2),
                             label=f"{kind} (large)")


@requires_gcc
@pytest.mark.parametrize("kind", REDUCERS)
@settings(max_examples=6)
@given(data=st.data())
def test_reduction_in_c_every_variant(kind, data):
    shape, axes, keep = data.draw(reduce_configs(kind))
    model = reduce_model(data.draw(O.seeds), kind, shape, axes, keep)
    check_c(model, O.int8_input(np.random.default_rng(3), shape, 6))


def test_reductions_refused_with_the_reason():
    from minitiny.quant.graph import GraphError
    with pytest.raises(GraphError, match="resolves at most 2"):
        reduce_model(0, "mean", (2, 3, 4), (0, 1, 2), True)
    with pytest.raises(GraphError, match="must share scale and zero point"):
        b = O.Builder(0, (4, 5), "m")
        b.reduce("reduce_max", (1,))
        b.tensors[b.cur].scale = np.float32(b.tensors[b.cur].scale * 2)
        b.model()
    with pytest.raises(GraphError, match="could overflow"):
        b = O.Builder(0, (64, 64, 8), "m", in_scale=1.0)
        b.reduce("sum", (0, 1))
        b.tensors[b.cur].scale = np.float32(1e-5)     # s_in / s_out = 2^16.6: shifted left 17 bits
        b.model()


# ---------------------------------------------------------------------------------------
# TRANSPOSE_CONV
# ---------------------------------------------------------------------------------------
@st.composite
def transpose_configs(draw):
    """(in_shape, cfg): kernels 1..4, strides 1..3, SAME or VALID, sometimes an output one
    row or column larger than Keras' formula (its output_padding)."""
    padding = draw(st.sampled_from(["same", "valid"]))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    in_shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 4)))
    out_hw = tuple((n * s if padding == "same" else (n - 1) * s + k) + draw(st.integers(0, 1) if s > 1 else st.just(0))
                   for n, s, k in zip(in_shape, stride, kernel))
    return in_shape, dict(out_c=draw(st.integers(1, 5)), kernel=kernel, stride=stride, padding=padding,
                          out_hw=out_hw, activation=draw(O.activations),
                          per_channel=draw(st.booleans()), bias=draw(st.booleans()))


def transpose_model(seed, in_shape, cfg):
    b = O.Builder(seed, in_shape, "transpose_conv")
    b.transpose_conv(**cfg)
    return b.model()


def naive_transpose_conv(model, x):
    """TFLM's scatter, written out: each input pixel adds its window into an int32 buffer of
    the output's size; then bias and requantization per channel."""
    op = model.ops[0]
    p, t = op.params, model.tensors
    w = t[op.inputs[1]].data.astype(np.int64)
    out_h, out_w, out_c = t[op.outputs[0]].shape
    in_h, in_w, in_c = model.input.shape
    kh, kw = w.shape[1:3]
    sh, sw = op.options["stride"]
    same = op.options["padding"] == "same"
    ph = same_before(out_h, kh, sh, 1) if same else 0
    pw = same_before(out_w, kw, sw, 1) if same else 0
    acc = np.zeros((len(x), out_h, out_w, out_c), np.int64)
    xs = x.astype(np.int64) + p["input_offset"]
    for iy in range(in_h):
        for ix in range(in_w):
            for fy in range(kh):
                for fx in range(kw):
                    oy, ox = iy * sh - ph + fy, ix * sw - pw + fx
                    if 0 <= oy < out_h and 0 <= ox < out_w:
                        acc[:, oy, ox, :] += xs[:, iy, ix, :] @ w[:, fy, fx, :].T
    if len(op.inputs) > 2:
        acc += t[op.inputs[2]].data
    q = fp.multiply_by_quantized_multiplier(acc, p["output_multiplier"], p["output_shift"], False)
    return np.clip(q + p["output_offset"], p["act_min"], p["act_max"]).astype(np.int8)


@given(config=transpose_configs(), seed=O.seeds)
def test_transpose_conv_is_the_naive_scatter(config, seed):
    model = transpose_model(seed, *config)
    x = O.int8_input(np.random.default_rng(seed % 1000), model.input.shape, 4)
    np.testing.assert_array_equal(model.predict_int8(x), naive_transpose_conv(model, x))


@O.requires_tflm
@given(config=transpose_configs(), seed=O.seeds)
def test_transpose_conv_matches_tflm_through_the_file(config, seed):
    model = round_trip(transpose_model(seed, *config))
    O.check_against_tflm(model, seed=seed, label="transpose_conv")


@O.requires_tflm
def test_large_transpose_convs_match_tflm():
    """Where users go: an autoencoder's decoder, 16x16x32 -> 32x32x16 (3x3, stride 2, SAME),
    and 4x4 kernels at stride 4; 1 case per CI run, 3 when thorough."""
    cases = [((16, 16, 32), 16, (3, 3), (2, 2), "same"), ((8, 12, 8), 8, (4, 4), (4, 4), "valid"),
             ((20, 5, 4), 24, (5, 3), (2, 3), "same")]
    for i, (shape, out_c, kernel, stride, padding) in enumerate(cases[:None if THOROUGH else 1]):
        model = transpose_model(i, shape, dict(out_c=out_c, kernel=kernel, stride=stride, padding=padding,
                                               activation=O.ACTIVATIONS[i % 3]))
        O.check_against_tflm(round_trip(model), O.random_inputs(model, i, 2), label="transpose_conv (large)")


@requires_gcc
@settings(max_examples=8)
@given(config=transpose_configs(), seed=O.seeds)
def test_transpose_conv_in_c_every_variant(config, seed):
    model = transpose_model(seed, *config)
    check_c(model, O.int8_input(np.random.default_rng(4), model.input.shape, 6))


# ---------------------------------------------------------------------------------------
# RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR
# ---------------------------------------------------------------------------------------
RESIZERS = ("resize_nearest_neighbor", "resize_bilinear")


@st.composite
def resize_configs(draw, kind, max_dim=9):
    """(in_shape, size, align_corners, half_pixel_centers): up- and downsampling by any
    ratio (1x1 images and 1-row outputs too); bilinear never both flags (TFLM refuses)."""
    in_shape = (draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 2 * max_dim)), draw(st.integers(1, 2 * max_dim)))
    align = draw(st.booleans())
    half = draw(st.booleans()) and not (align and kind == "resize_bilinear")
    return in_shape, size, align, half


def resize_model(seed, kind, in_shape, size, align, half):
    b = O.Builder(seed, in_shape, kind)
    b.resize(kind, size, align, half)
    return b.model()


def real_positions(out_size, in_size, align, half):
    """Where output index i samples the input, as a real coordinate (TensorFlow's definition)."""
    i = np.arange(out_size, dtype=np.float64)
    if align and out_size > 1:
        return i * (in_size - 1) / (out_size - 1)
    scale = in_size / out_size
    return (i + 0.5) * scale - 0.5 if half else i * scale


@pytest.mark.parametrize("kind", RESIZERS)
@given(data=st.data())
def test_resize_samples_where_tensorflow_says(kind, data):
    """Nearest: each output copies an input pixel within half a pixel (plus TFLM's clamps) of
    where TensorFlow samples; bilinear: dequantized, the output is the real bilinear
    interpolation at TensorFlow's positions to within one output step (the positions are
    held in 1/1024 of a pixel)."""
    in_shape, size, align, half = data.draw(resize_configs(kind))
    model = resize_model(data.draw(O.seeds), kind, in_shape, size, align, half)
    x = O.int8_input(np.random.default_rng(0), in_shape, 3)
    got = model.predict_int8(x).astype(np.int64)
    ys = real_positions(size[0], in_shape[0], align, half)
    xs = real_positions(size[1], in_shape[1], align, half)
    if kind == "resize_nearest_neighbor":
        # TensorFlow's nearest neighbour: (i + 0.5 if half_pixel_centers) * scale, rounded
        # with align_corners (scale (in - 1) / (out - 1)), else floored (scale in / out)
        p = model.ops[0].params
        for index, out_n, n in ((p["in_y"], size[0], in_shape[0]), (p["in_x"], size[1], in_shape[1])):
            assert np.all((0 <= index) & (index < n))
            scale = (n - 1) / (out_n - 1) if align and out_n > 1 else n / out_n
            value = (np.arange(out_n) + (0.5 if half else 0.0)) * scale
            frac = value - np.floor(value)
            target = np.clip(np.floor(value + 0.5) if align else np.floor(value), 0, n - 1)
            # float32 may round a position across a boundary it lies within 1e-3 of
            near = np.abs(frac - 0.5) < 1e-3 if align else np.minimum(frac, 1 - frac) < 1e-3
            assert np.all((index == target) | near), (index, target, value)
        np.testing.assert_array_equal(got, x[:, p["in_y"]][:, :, p["in_x"]])
        return
    ys, xs = np.clip(ys, 0, in_shape[0] - 1), np.clip(xs, 0, in_shape[1] - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, in_shape[0] - 1), np.minimum(x0 + 1, in_shape[1] - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    v = x.astype(np.float64)
    want = (v[:, y0][:, :, x0] * (1 - fy) * (1 - fx) + v[:, y1][:, :, x0] * fy * (1 - fx)
            + v[:, y0][:, :, x1] * (1 - fy) * fx + v[:, y1][:, :, x1] * fy * fx)
    # rounding, plus the positions held in 1/1024: scale_10 is within 1/2048 of 1024 * the
    # scale, so output index i samples at most i / 2048 pixels off, worth 255 per pixel
    slack = 0.5 + 255 * max(size) / 2048 + 1e-9
    assert np.abs(got - want).max() <= slack, (np.abs(got - want).max(), slack)


@O.requires_tflm
@pytest.mark.parametrize("kind", RESIZERS)
@given(data=st.data())
def test_resize_matches_tflm_through_the_file(kind, data):
    in_shape, size, align, half = data.draw(resize_configs(kind))
    seed = data.draw(O.seeds)
    model = round_trip(resize_model(seed, kind, in_shape, size, align, half))
    O.check_against_tflm(model, seed=seed, label=kind)


@O.requires_tflm
@pytest.mark.parametrize("kind", RESIZERS)
def test_large_resizes_match_tflm(kind):
    """Where users go: a segmentation head's 8x upsampling of 24x24x8 to 192x192, odd ratios
    (17 -> 64), a downsampling; 1 case per CI run, all when thorough."""
    cases = [((24, 24, 8), (192, 192), False, True), ((17, 30, 3), (64, 7), True, False),
             ((100, 3, 2), (33, 250), False, False)]
    for i, (shape, size, align, half) in enumerate(cases[:None if THOROUGH else 1]):
        model = resize_model(i, kind, shape, size, align, half)
        O.check_against_tflm(round_trip(model), O.random_inputs(model, i, 2), label=f"{kind} (large)")


@requires_gcc
@pytest.mark.parametrize("kind", RESIZERS)
@settings(max_examples=6)
@given(data=st.data())
def test_resize_in_c_every_variant(kind, data):
    in_shape, size, align, half = data.draw(resize_configs(kind))
    model = resize_model(data.draw(O.seeds), kind, in_shape, size, align, half)
    check_c(model, O.int8_input(np.random.default_rng(5), in_shape, 6))


# ---------------------------------------------------------------------------------------
# FULLY_CONNECTED with keep_num_dims, SOFTMAX on any rank
# ---------------------------------------------------------------------------------------
@st.composite
def rows_configs(draw):
    """An input of rank 1..4 besides the batch (TFLite's 2..5), the last axis the features."""
    rank = draw(st.integers(1, 4))
    return tuple(draw(st.integers(1, 6)) for _ in range(rank))


def keep_num_dims_model(seed, shape, units, activation="none", per_channel=False, bias=True):
    b = O.Builder(seed, shape, "dense_rows")
    b.dense(units, activation, per_channel, bias, keep_num_dims=True)
    return b.model()


@given(shape=rows_configs(), units=st.integers(1, 8), seed=O.seeds)
def test_keep_num_dims_is_a_dense_per_row(shape, units, seed):
    """Each (..., C) row gives what a Dense on that row alone gives (the one-row model of
    the same weights, bias and quantization)."""
    model = keep_num_dims_model(seed, shape, units, bias=bool(seed % 2))
    x = O.int8_input(np.random.default_rng(seed % 1000), shape, 3)
    got = model.predict_int8(x).reshape(3, -1, units)
    row_in = model.tensors[model.inputs[0]]
    tensors = dict(model.tensors, x=QTensor("x", (shape[-1],), "int8", row_in.scale, row_in.zero_point))
    out = model.tensors[model.outputs[0]]
    tensors[out.name] = QTensor(out.name, (units,), "int8", out.scale, out.zero_point)
    op = model.ops[0]
    row_model = QModel("row", tensors, [QOp(op.kind, op.name, op.inputs, op.outputs, {"activation": "none"})],
                       ["x"], op.outputs)
    want = row_model.predict_int8(x.reshape(-1, shape[-1])).reshape(3, -1, units)
    np.testing.assert_array_equal(got, want)


@O.requires_tflm
@given(shape=rows_configs(), units=st.integers(1, 8), seed=O.seeds, activation=O.activations,
       per_channel=st.booleans(), bias=st.booleans())
def test_keep_num_dims_matches_tflm_through_the_file(shape, units, seed, activation, per_channel, bias):
    model = round_trip(keep_num_dims_model(seed, shape, units, activation, per_channel, bias))
    O.check_against_tflm(model, seed=seed, label="fully_connected keep_num_dims")


@O.requires_tflm
@given(shape=rows_configs(), seed=O.seeds, beta=st.sampled_from([1.0, 0.5, 2.0]))
def test_softmax_on_any_rank_matches_tflm_through_the_file(shape, seed, beta):
    b = O.Builder(seed, shape, "softmax")
    b.softmax(beta)
    O.check_against_tflm(round_trip(b.model()), seed=seed, label="softmax (any rank)")


@O.requires_tflm
def test_large_rows_match_tflm():
    """Where users go: Dense(64) over a (1, 128, 32) sequence and a softmax over the 10
    classes of each of 24x24 pixels (a segmentation head); 1 case per CI run, both when thorough."""
    cases = [("dense", (128, 32)), ("softmax", (24, 24, 10))]
    for i, (what, shape) in enumerate(cases[:None if THOROUGH else 1]):
        b = O.Builder(i, shape, what)
        b.dense(64, "relu", per_channel=True, keep_num_dims=True) if what == "dense" else b.softmax()
        O.check_against_tflm(round_trip(b.model()), O.random_inputs(b.model(), i, 2), label=f"{what} rows (large)")


@requires_gcc
@settings(max_examples=8)
@given(shape=rows_configs(), units=st.integers(1, 8), seed=O.seeds, softmax=st.booleans())
def test_rows_in_c_every_variant(shape, units, seed, softmax):
    """The reference kernel loops over the rows; the scalar and DSP variants hand a
    keep_num_dims layer to it. Softmax runs over the last axis of any rank in every variant."""
    model = keep_num_dims_model(seed, shape, units)
    if softmax:
        b = O.Builder(seed, shape, "softmax")
        model = b.softmax().model()
    check_c(model, O.int8_input(np.random.default_rng(6), shape, 6))


# ---------------------------------------------------------------------------------------
# On the emulated Cortex-M4
# ---------------------------------------------------------------------------------------
@requires_qemu
@pytest.mark.parametrize("variant", ["reference", "auto"])
def test_spatial_model_on_the_emulated_cortex_m4(variant, tmp_path):
    """Every op of this file in one model, built for the M4 and run under QEMU: its outputs
    are the NumPy reference's (firmware.run compares them)."""
    run_on(O.spatial_model(), variant, "cortex-m4", tmp_path, n=3)
