"""The DSP-SIMD kernels (codegen variants "dsp" and "auto") give the scalar kernels' bits:
the weight layouts, the requantization, dense and conv on the host and on the emulated cores.
The depthwise, small-in_channel conv, pooling and mean kernels have their own files
(tests/test_dsp_*.py); the set-up all of them share is tests/dsp_host.py.

Oracles, each independent of the code under test:
* QModel.predict_int8, the NumPy int8 reference, for every output; on the emulated cores
  also the scalar C build of the same model on the same core.
* The weight layouts (codegen/dsp.py) against a NumPy model of what the kernels read, with
  the lanes of SXTB16 as the Arm Architecture Reference Manual defines them.
* On the host: dsp_host.ACLE_SHIM, the DSP intrinsics the kernels use written out in C
  from the Arm ARM's pseudo-code, stands in for <arm_acle.h>, so gcc compiles the DSP C for
  the host: hypothesis draws many shapes cheaply, and AddressSanitizer + UBSan check every
  read and write of the kernels (the tails, the im2col buffer, the padded weight rows).
* On QEMU's Cortex-M4 (and M7, M55): the real instructions, including the inline assembly.

Needs gcc for the host tests, arm-none-eabi-gcc and qemu-system-arm for the rest (skipped,
with the reason, without them).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402
from dsp_host import (ARM_GCC, ARM_OBJDUMP, STRICT, folded_layer, host_dsp, inputs_for,  # noqa: E402
                      requantize_fast, requires_arm, requires_gcc, requires_qemu, run_on,
                      with_bias, with_real_multiplier)
from test_codegen_models import EXTRA_WARNINGS, every_kind_model, random_model  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.codegen import dsp, generator  # noqa: E402
from minitiny.quant import fixedpoint as fp  # noqa: E402



# ---------------------------------------------------------------------------------------
# The layouts, in NumPy
# ---------------------------------------------------------------------------------------
def lanes(word_bytes):
    """SXTB16 and SXTB16 with ROR #8 of a little-endian word: (b0, b2) and (b1, b3)."""
    b = [int(v) for v in word_bytes]
    return (b[0], b[2]), (b[1], b[3])


@given(st.integers(1, 40), st.integers(1, 7), st.integers(0, 2 ** 16))
def test_conv_layout_pairs_each_weight_with_its_column_value(k, out_c, seed):
    """The conv kernel: word of group g, lanes (sxtb16, ror) times the column pairs (k, k+1),
    (k+2, k+3) must give the plain dot product of the natural weights and the column."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(out_c, 1, 1, k)).astype(np.int8)
    rows = dsp.conv_weight(w)
    k4 = dsp.padded(k)
    assert rows.shape == (out_c, k4) and rows.dtype == np.int8
    column = np.zeros(k4, np.int64)
    column[:k] = rng.integers(-255, 256, size=k)           # im2col pads with zeros
    for c in range(out_c):
        acc = 0
        for g in range(k4 // 4):
            (w0, w1), (w2, w3) = lanes(rows[c, 4 * g:4 * g + 4])
            x = column[4 * g:4 * g + 4]
            acc += w0 * x[0] + w1 * x[1] + w2 * x[2] + w3 * x[3]   # two SMLADs
        assert acc == int(w[c].reshape(-1).astype(np.int64) @ column[:k])
    # dsp_weights="int16": the words of a row are the pairs (k, k+1), (k+2, k+3) as they are
    rows16 = dsp.conv_weight16(w).astype(np.int64)
    assert rows16.shape == (out_c, k4) and dsp.conv_weight16(w).dtype == np.int16
    for c in range(out_c):
        acc = sum(rows16[c, 2 * i] * column[2 * i] + rows16[c, 2 * i + 1] * column[2 * i + 1]   # SMLAD
                  for i in range(k4 // 2))
        assert acc == int(w[c].reshape(-1).astype(np.int64) @ column[:k])


@given(st.integers(1, 11), st.integers(1, 30), st.integers(0, 2 ** 16))
def test_dense_layout_feeds_four_units_per_input_word(units, n, seed):
    """The dense kernel walks one pointer: per group of 4 units, per input word, 4 words."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(units, n)).astype(np.int8)
    x = np.zeros(dsp.padded(n), np.int64)
    x[:n] = rng.integers(-255, 256, size=n)
    x[n:] = rng.integers(-255, 256, size=dsp.padded(n) - n)    # the bytes read past the input
    flat = np.concatenate(dsp.dense_weight(w))
    assert flat.size == units * dsp.padded(n)
    got, pos = [], 0
    for _ in range(units // 4):
        acc = [0, 0, 0, 0]
        for blk in range(dsp.padded(n) // 4):
            (x0, x2), (x1, x3) = (x[4 * blk], x[4 * blk + 2]), (x[4 * blk + 1], x[4 * blk + 3])
            for u in range(4):
                (a, b), (c, d) = lanes(flat[pos:pos + 4])
                acc[u] += a * x0 + b * x2 + c * x1 + d * x3
                pos += 4
        got += acc
    for _ in range(units % 4):
        acc = 0
        for blk in range(dsp.padded(n) // 4):
            (a, b), (c, d) = lanes(flat[pos:pos + 4])
            acc += a * x[4 * blk] + b * x[4 * blk + 2] + c * x[4 * blk + 1] + d * x[4 * blk + 3]
            pos += 4
        got.append(acc)
    assert pos == flat.size
    assert got == (w.astype(np.int64) @ x[:n]).tolist()


@given(st.integers(1, 11), st.integers(1, 23), st.integers(0, 2 ** 16))
def test_dense_int16_layout_needs_no_extension(units, n, seed):
    """dsp_weights="int16": per group of 4 units, per input word, each unit's two int16
    words (lo, hi) meet the input lanes (x0, x2) and (x1, x3); then the tail units' rows."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(units, n)).astype(np.int8)
    x = rng.integers(-255, 256, size=dsp.padded(n)).astype(np.int64)   # the tail: bytes past the input
    lines = dsp.dense_weight16(w)
    flat = np.concatenate(lines).astype(np.int64)
    assert all(line.dtype == np.int16 for line in lines) and flat.size == units * dsp.padded(n)
    assert dsp.weight_bytes("fully_connected", dict(out_features=units, in_features=n), "int16") == 2 * flat.size
    blocks = dsp.padded(n) // 4
    got, pos = [], 0
    for _ in range(units // 4):                     # groups of 4 units, interleaved
        acc = [0, 0, 0, 0]
        for blk in range(blocks):
            x0, x1, x2, x3 = x[4 * blk:4 * blk + 4]
            for u in range(4):
                lo02, hi02, lo13, hi13 = flat[pos:pos + 4]
                acc[u] += lo02 * x0 + hi02 * x2 + lo13 * x1 + hi13 * x3
                pos += 4
        got += acc
    for _ in range(units % 4):                      # the tail units, one row each
        acc = 0
        for blk in range(blocks):
            x0, x1, x2, x3 = x[4 * blk:4 * blk + 4]
            lo02, hi02, lo13, hi13 = flat[pos:pos + 4]
            acc += lo02 * x0 + hi02 * x2 + lo13 * x1 + hi13 * x3
            pos += 4
        got.append(acc)
    assert pos == flat.size
    assert got == (w.astype(np.int64) @ x[:n]).tolist()


def test_offset_pair_and_scratch_sizes():
    assert dsp.offset_pair(5) == 0x00050005
    assert dsp.offset_pair(-128) == -(1 << 32) + 0xFF80FF80       # (-128, -128) as int32
    assert dsp.offset_pair(128) == 0x00800080
    p = dict(kernel_h=3, kernel_w=3, in_c=3, in_h=8, in_w=8, out_h=8, out_w=8, stride_h=1, stride_w=1,
             pad_h=1, pad_w=1, out_c=8)
    # in_c = 3: each filter row 9 -> 10 int16, 30 -> 32 per column; and the plane: 10 rows (8 + 2
    # of padding) of 7 * 3 + 10 = 31 -> 32 values (the last window's start, and its 10 values)
    assert dsp.scratch_bytes("conv_2d", p) == dsp.CONV_PIXELS * 32 * 2 + 10 * 32 * 2
    # in_c = 4, 3x3: whole blocks (36 per column), and a plane of 10 rows of 7 * 4 + 12 = 40
    assert dsp.scratch_bytes("conv_2d", dict(p, in_c=4)) == dsp.CONV_PIXELS * 36 * 2 + 10 * 40 * 2
    # 1x1 on 4 channels: the columns only (each value is copied once, no plane)
    one = dict(p, in_c=4, kernel_h=1, kernel_w=1, pad_h=0, pad_w=0)
    assert dsp.scratch_bytes("conv_2d", one) == dsp.CONV_PIXELS * 4 * 2
    # dense: 8 units (two groups of four) read the int8 input; 16 units (four groups) extend
    # it once, 30 inputs -> 32 int16 values (8 blocks of two pair words)
    assert dsp.scratch_bytes("fully_connected", dict(in_features=30, out_features=8)) == 0
    assert dsp.scratch_bytes("fully_connected", dict(in_features=30, out_features=16)) == 32 * 2


def test_dense_unroll_divides_the_blocks():
    """Blocks of 4 inputs per iteration of the dense kernel's loop: the largest divisor of
    the blocks up to DENSE_UNROLL_MAX (8), none left over. Worked out by hand."""
    assert [dsp.dense_unroll(b) for b in (1, 4, 64, 196, 7, 12, 30)] == [1, 4, 8, 7, 7, 6, 6]


def test_conv_unroll_writes_small_loops_out_whole_and_divides_long_ones():
    """Blocks of 4 values per iteration of the conv kernel's k loop: all of them up to
    CONV_WHOLE_BLOCKS (32), then the largest divisor up to 16 when it is at least 4 (no
    blocks left over after the loop), else 2. Worked out by hand."""
    assert [dsp.conv_unroll(4 * b) for b in (1, 18, 32)] == [1, 18, 32]
    assert dsp.conv_unroll(4 * 36) == 12 and dsp.conv_unroll(4 * 144) == 16 and dsp.conv_unroll(4 * 35) == 7
    assert dsp.conv_unroll(4 * 37) == 2 and dsp.conv_unroll(4 * 34) == 2       # 37 prime; 34 = 2 x 17


# ---------------------------------------------------------------------------------------
# The fast requantization's identity, in Python integers
# ---------------------------------------------------------------------------------------
@given(st.integers(-(1 << 30) + 1, (1 << 30) - 1), st.integers(1 << 30, (1 << 31) - 1), st.integers(1, 31))
@settings(max_examples=400)
def test_requantize_fast_is_tflms_double_rounding(acc, multiplier, right_shift):
    """Oracle: minitiny/quant/fixedpoint.py (gemmlowp's two roundings as TFLM writes them)."""
    assert requantize_fast(acc, multiplier, right_shift) == fp.multiply_by_quantized_multiplier(
        acc, multiplier, -right_shift)


def test_requantize_fast_on_ties_and_extremes():
    """Exact ties of both roundings, both signs, and the ends of the proven range."""
    cases = [(a, m, r) for r in (1, 2, 7, 30, 31) for m in (1 << 30, (1 << 30) + 1, (1 << 31) - 1)
             for a in (0, 1, -1, 2, -2, 3, -3, (1 << r) + (1 << (r - 1)), -(1 << (r - 1)),
                       (1 << 30) - 1, -(1 << 30) + 1, 1 << 29, -(1 << 29))]
    for acc, m, r in cases:
        if abs(acc) >= 1 << 30:
            continue                          # outside the proven range (never generated)
        assert requantize_fast(acc, m, r) == fp.multiply_by_quantized_multiplier(acc, m, -r), (acc, m, r)


def test_fast_requantize_is_used_only_where_proven():
    w = np.full((3, 5), 127, np.int8)
    p = dict(output_shift=np.array([-1, -9, -31]), output_multiplier=np.array([1 << 30] * 3))
    assert dsp.fast_requantize("fully_connected", p, w, None)
    assert not dsp.fast_requantize("fully_connected", dict(p, single_rounding=True), w, None)
    for shift in (0, 1, -32):               # a multiplier >= 1/2 (no right shift), or out of range
        assert not dsp.fast_requantize("fully_connected", dict(p, output_shift=np.array([-3, shift, -3])), w, None)
    assert not dsp.fast_requantize("fully_connected", dict(p, output_multiplier=np.array([0, 1 << 30, 1 << 30])), w, None)
    bound = 5 * 127 * 255
    assert dsp.fast_requantize("fully_connected", p, w, np.array([0, (1 << 30) - 1 - bound, 0]))
    assert not dsp.fast_requantize("fully_connected", p, w, np.array([0, (1 << 30) - bound, 0]))
    dw = np.zeros((1, 3, 3, 4), np.int8)
    dw[0, :, :, 2] = -128                    # channel 2 of a depthwise weight: its last index
    assert (dsp.accumulator_bound("depthwise_conv_2d", dw, None) == [0, 0, 9 * 128 * 255, 0]).all()


@given(st.integers(-(1 << 30) + 1, (1 << 30) - 1), st.integers(1 << 30, (1 << 31) - 1), st.integers(1, 31),
       st.integers(-128, 127))
@settings(max_examples=400)
def test_folded_rounding_adds_the_zero_point_exactly(acc, multiplier, right_shift, z):
    """Step 0 of requantize_doubled_to_int8 (dsp/helpers.c.j2): (high - sign + rounding) >> r must be
    TFLM's MultiplyByQuantizedMultiplier + the output zero point (fixedpoint.py, Python
    integers) whenever folded_rounding accepts the layer, and it must refuse exactly when
    the int32 sum could overflow (the bound written out here, in Python integers)."""
    p, w, b = folded_layer(abs(acc), right_shift, z)
    rounding = dsp.folded_rounding("fully_connected", p, w, b)
    fits = abs(acc) + 1 + (1 << (right_shift - 1)) + abs(z) * (1 << right_shift) < 1 << 31
    assert (rounding is not None) == fits
    if fits:
        assert int(rounding[0]) == (1 << (right_shift - 1)) + z * (1 << right_shift)
        high = (2 * acc * multiplier + (1 << 31)) >> 32                        # SMMULR
        total = high - (1 if high < 0 else 0) + int(rounding[0])
        assert -(1 << 31) <= total < 1 << 31                                   # an int32 sum
        assert total >> right_shift == fp.multiply_by_quantized_multiplier(acc, multiplier, -right_shift) + z


def test_folded_rounding_is_per_channel_and_needs_the_fast_path():
    p, w, b = folded_layer(1000, 7, -128, channels=3)
    p["output_shift"] = np.array([-1, -7, -20])
    assert dsp.folded_rounding("conv_2d", p, w, b).tolist() == [1 - 128 * 2, 64 - 128 * 128, (1 << 19) - 128 * (1 << 20)]
    assert dsp.folded_rounding("conv_2d", dict(p, output_shift=np.array([-1, 0, -3])), w, b) is None  # no right shift
    assert dsp.folded_rounding("conv_2d", dict(p, single_rounding=True), w, b) is None
    assert dsp.folded_rounding("conv_2d", dict(p, output_shift=np.array([-1, -7, -24])), w, b) is None  # 128 * 2^24


# ---------------------------------------------------------------------------------------
# The scalar kernels' folded input offset (codegen/generator.py folded_bias)
# ---------------------------------------------------------------------------------------
def test_folded_bias_is_the_identity_and_refuses_what_it_cannot_prove():
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(4, 2, 2, 3)).astype(np.int8)
    x = rng.integers(-128, 128, size=(2, 2, 3))
    b = rng.integers(-1000, 1000, size=4)
    p = dict(input_offset=37, pad_h=0, pad_w=0, in_h=2, in_w=2, out_h=1, out_w=1, stride_h=1, stride_w=1,
             kernel_h=2, kernel_w=2)
    folded = generator.folded_bias("conv_2d", p, w, b)
    for c in range(4):                      # Python integers: the unfolded sum
        assert int(folded[c] + (w[c].astype(np.int64) * x).sum()) == int((w[c].astype(np.int64) * (x + 37)).sum() + b[c])
    assert generator.folded_bias("conv_2d", dict(p, pad_w=1), w, b) is None        # borders skip taps
    assert generator.folded_bias("conv_2d", dict(p, in_w=5, out_w=2, stride_w=3), w, b) is not None
    assert generator.folded_bias("conv_2d", dict(p, in_w=4, out_w=2, stride_w=3), w, b) is None  # padded after
    assert (generator.folded_bias("fully_connected", p, w.reshape(4, -1), None) == 37 * w.reshape(4, -1).sum(1)).all()
    # partial sums must fit an int32: max|bias'| + 128 * sum|w| < 2^31
    w1 = np.full((1, 10), 127, np.int8)
    edge = (1 << 31) - 1 - 128 * 1270 - 128 * 1270
    assert generator.folded_bias("fully_connected", dict(p, input_offset=128), w1, np.array([edge])) is not None
    assert generator.folded_bias("fully_connected", dict(p, input_offset=128), w1, np.array([edge + 1])) is None


# ---------------------------------------------------------------------------------------
# On the host, with the DSP intrinsics emulated
# ---------------------------------------------------------------------------------------
@requires_gcc
@given(st.sampled_from(["fully_connected", "conv_2d", "depthwise_conv_2d"]).flatmap(
    lambda k: o.op_configs(k).map(lambda c: (k,) + tuple(c))), o.seeds)
def test_dsp_kernels_on_the_host_match_numpy(shim_flags, config, seed):
    """int8_oracle's shapes: odd sizes, channels 1..4, strides, paddings, depth multipliers."""
    kind, in_shape, cfg = config
    model = o.single_op_model(seed, kind, in_shape, **cfg)
    host_dsp(model, inputs_for(model, seed % 1000), shim_flags)


@requires_gcc
@settings(max_examples=15)
@given(st.integers(1, 12), st.integers(1, 9), st.integers(1, 9), st.integers(1, 3), st.integers(1, 4),
       st.sampled_from(["same", "valid"]), o.seeds)
def test_wider_convolutions_on_the_host(shim_flags, in_c, out_c, hw, k, stride, padding, seed):
    """Channels past 4 (the whole-block im2col and several channel groups), tiny outputs."""
    k = min(k, hw) if padding == "valid" else k
    kind = ["conv_2d", "depthwise_conv_2d", "fully_connected"][seed % 3]
    if kind == "conv_2d":
        model = o.single_op_model(seed, kind, (hw, hw + 1, in_c), out_c=out_c, kernel=(k, k),
                                  stride=(stride, stride), padding=padding, activation="relu")
    elif kind == "depthwise_conv_2d":
        model = o.single_op_model(seed, kind, (hw, hw + 1, in_c), depth_multiplier=1 + seed % 3,
                                  kernel=(k, k), stride=(stride, stride), padding=padding)
    else:
        model = o.single_op_model(seed, kind, (in_c * hw,), units=out_c * 3 + 1, activation="relu6")
    host_dsp(model, inputs_for(model, 1), shim_flags)


@requires_gcc
@settings(max_examples=15)
@given(st.integers(1, 40), st.integers(1, 11), st.booleans(), st.booleans(), o.seeds)
def test_int16_dsp_weights_on_the_host(shim_flags, n, units, per_channel, bias, seed):
    """dsp_weights="int16": tails of units and inputs, per-channel or not, with and
    without bias, under the sanitizers every few examples."""
    model = o.single_op_model(seed, "fully_connected", (n,), units=units, per_channel=per_channel,
                              bias=bias, activation=["none", "relu", "relu6"][seed % 3])
    host_dsp(model, inputs_for(model, seed % 1000), shim_flags, sanitize=seed % 4 == 0, dsp_weights="int16")


@requires_gcc
@settings(max_examples=12)
@given(st.integers(1, 300), st.integers(dsp.DENSE_EXTEND_GROUPS * 4, 70), st.booleans(), st.booleans(), o.seeds)
def test_dense_with_the_input_extended_once_on_the_host(shim_flags, n, units, per_channel, bias, seed):
    """From DENSE_EXTEND_GROUPS groups of four units the dense kernel extends its input once
    into the arena (doubled where the rounding folds the output zero point): inputs not a
    multiple of 4, units mod 4 left over, both weight widths, the sanitizers every few."""
    model = o.single_op_model(seed, "fully_connected", (n,), units=units, per_channel=per_channel,
                              bias=bias, activation=["none", "relu", "relu6"][seed % 3])
    if seed % 2:       # a multiplier >= 1/2: the plain requantization, the input not doubled
        model = with_real_multiplier(model, 0.8)
    ctx = generator.build_context(model, "m", variant="dsp")["layers"][0]["dsp"]
    assert ctx["extended"] and ctx["scratch_bytes"] == 2 * dsp.padded(n)
    assert (ctx["rounding"] is None) == (seed % 2 == 1)
    for width in ("int8", "int16"):
        host_dsp(model, inputs_for(model, seed % 1000), shim_flags, sanitize=seed % 4 == 0, dsp_weights=width)


@requires_gcc
@settings(max_examples=15)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(2, 7), st.integers(1, 3), st.integers(1, 2),
       st.sampled_from(["same", "valid"]), st.booleans(), o.seeds)
def test_conv_kernels_on_the_host_with_both_weight_widths(shim_flags, in_c, out_c, hw, k, stride, padding,
                                                          per_channel, seed):
    """conv_2d with int8 and int16 weights: both im2col paths (in_c a multiple of 4 or not),
    the doubled columns of requantize_doubled_to_int8 and the layers it refuses."""
    k = min(k, hw) if padding == "valid" else k
    model = o.single_op_model(seed, "conv_2d", (hw, hw + 1, in_c), out_c=out_c, kernel=(k, k),
                              stride=(stride, stride), padding=padding, per_channel=per_channel,
                              activation=["none", "relu", "relu6"][seed % 3])
    for width in ("int8", "int16"):
        host_dsp(model, inputs_for(model, seed % 1000), shim_flags, sanitize=seed % 3 == 0, dsp_weights=width)


@requires_gcc
@settings(max_examples=15)
@given(st.integers(0, 2 ** 16), st.lists(st.sampled_from(["conv_2d", "depthwise_conv_2d", "fully_connected",
                                                          "max_pool_2d", "add", "relu", "reshape"]),
                                         min_size=1, max_size=6))
def test_random_models_on_the_host(shim_flags, seed, kinds):
    model = random_model(seed, kinds)
    host_dsp(model, inputs_for(model, seed), shim_flags)


@requires_gcc
@pytest.mark.parametrize("seed", [0, 1])
def test_sanitizers_run_clean_on_the_dsp_kernels(shim_flags, seed):
    models = [every_kind_model(seed * 10),
              o.single_op_model(seed, "conv_2d", (5, 7, 8), out_c=7, kernel=(3, 3), padding="same"),
              o.single_op_model(seed, "conv_2d", (3, 2, 3), out_c=3, kernel=(3, 3), padding="same"),
              o.single_op_model(seed, "depthwise_conv_2d", (6, 5, 9), depth_multiplier=1, padding="same"),
              o.single_op_model(seed, "fully_connected", (33,), units=7)]
    for model in models:
        host_dsp(model, inputs_for(model, seed), shim_flags, sanitize=True)


def edge_models(seed):
    """Each path beside the common one: general requantization (multipliers >= 1/2, an
    accumulator bound >= 2^30), the offset kept in the scalar loop (padding, partial sums
    near 2^31), folded biases for layers without a bias, a 1-channel input."""
    big = (1 << 30) + 5
    return [
        with_real_multiplier(o.single_op_model(seed, "fully_connected", (13,), units=6), 0.7),
        with_real_multiplier(o.single_op_model(seed, "conv_2d", (5, 6, 4), out_c=5, padding="same"), 3.0),
        with_real_multiplier(o.single_op_model(seed, "depthwise_conv_2d", (4, 5, 6), depth_multiplier=1), 0.6),
        with_bias(o.single_op_model(seed, "fully_connected", (9,), units=5), big),
        with_bias(o.single_op_model(seed, "conv_2d", (4, 4, 3), out_c=2, kernel=(1, 1), padding="valid"), -big),
        o.single_op_model(seed, "fully_connected", (11,), units=5, bias=False),
        o.single_op_model(seed, "conv_2d", (6, 5, 3), out_c=4, kernel=(2, 3), padding="valid", bias=False),
        o.single_op_model(seed, "conv_2d", (7, 6, 1), out_c=5, kernel=(3, 3), stride=(2, 2), padding="same"),
        o.single_op_model(seed, "depthwise_conv_2d", (5, 5, 3), depth_multiplier=2, stride=(2, 1), padding="valid"),
        saturated_dense(seed),
    ]


def saturated_dense(seed, n=7):
    """Weights all 127, input zero point -128 (offset 128), bias at Prepare's limit
    n * 127 * 255 + bias = 2^31 - 1: folding the offset would let partial sums reach
    bias + 256 * 127 n > 2^31, so the scalar loop keeps the offset."""
    model = o.single_op_model(seed, "fully_connected", (n,), units=2)
    op = model.ops[0]
    model.tensors[op.inputs[0]].zero_point = np.asarray(np.int32(-128))
    model.tensors[op.inputs[1]].data = np.full((2, n), 127, np.int8)
    return with_bias(model, (1 << 31) - 1 - n * 127 * 255)


def test_edge_models_take_the_paths_they_name(tmp_path):
    flags = []
    for model in edge_models(0):
        ctx = generator.build_context(model, "m", variant="auto")
        layer = ctx["layers"][0]
        flags.append((layer["dsp"]["fast_requantize"], layer["folded_bias"] is not None))
    assert [f for f, _ in flags[:5]] == [False] * 5            # general requantization
    assert [f for f, _ in flags[5:9]] == [True] * 4
    assert [g for _, g in flags[:2]] == [True, False]           # conv "same": offset in the loop
    assert flags[3][1] and flags[4][1]                          # 2^30 + 128 sum|w| < 2^31: folds
    assert flags[5][1] and flags[6][1] and not flags[7][1]      # no bias -> a folded one; padding
    assert flags[9] == (False, False)          # |acc| may reach 2^31 - 1; partial sums could pass it


@requires_gcc
@pytest.mark.parametrize("seed", [0, 1])
def test_edge_models_on_the_host(shim_flags, seed, tmp_path):
    for i, model in enumerate(edge_models(seed)):
        x = inputs_for(model, seed)
        host_dsp(model, x, shim_flags, sanitize=(i % 3 == seed))
        codegen.generate(model, tmp_path / f"s{i}", name="m", variant="scalar")   # the folded scalar C
        np.testing.assert_array_equal(codegen.load(tmp_path / f"s{i}", sanitize=(i % 3 == seed))(x),
                                      model.predict_int8(x))


@requires_gcc
def test_auto_builds_the_scalar_kernels_on_the_host_and_dsp_refuses(tmp_path):
    """The host has no <arm_acle.h>: "auto" compiles only because it keeps the scalar path,
    and "dsp" stops at its #error, which names what is missing."""
    model = every_kind_model(2)
    x = inputs_for(model, 3, 16)
    codegen.generate(model, tmp_path / "auto", name="m", variant="auto")
    np.testing.assert_array_equal(codegen.load(tmp_path / "auto")(x), model.predict_int8(x))
    codegen.generate(model, tmp_path / "dsp", name="m", variant="dsp")
    with pytest.raises(codegen.CompileError, match="__ARM_FEATURE_DSP"):
        codegen.load(tmp_path / "dsp")
    with pytest.raises(codegen.CodegenError, match="unknown kernel variant 'neon'"):
        codegen.generate(model, tmp_path / "x", variant="neon")


def test_the_plan_holds_the_im2col_scratch(tmp_path):
    model = random_model(4, ["conv_2d", "conv_2d", "fully_connected"], input_shape=(6, 5, 3))
    # the plain schedule: in place, the scalar and DSP kernels may share different bytes
    scalar = codegen.generate(model, tmp_path / "s", variant="scalar", in_place=False).manifest
    m = codegen.generate(model, tmp_path / "d", variant="dsp", in_place=False).manifest
    convs = [i for i, layer in enumerate(m["layers"]) if layer["kind"] == "conv_2d"]
    for i in convs:
        layer = m["layers"][i]
        p = model.ops[i].params
        assert layer["scratch_bytes"] == dsp.scratch_bytes("conv_2d", p) > 0
        assert layer["ram_bytes"] == scalar["layers"][i]["ram_bytes"] + layer["scratch_bytes"]
        rows = [r for r in m["plan"] if r["tensors"] == [f"{model.ops[i].name} scratch"]]
        assert len(rows) == 1 and rows[0]["first"] == rows[0]["last"] == i      # live at its layer only
        assert rows[0]["offset"] + rows[0]["size"] <= m["arena_bytes"]
    assert m["arena_bytes"] >= m["arena_lower_bound"] >= scalar["arena_lower_bound"]
    src = open(tmp_path / "d" / f"{m['name']}_model.c").read()
    assert src.count("scratch int16[") == len(convs)               # the layer banners say so


# ---------------------------------------------------------------------------------------
# On the emulated Cortex-M cores
# ---------------------------------------------------------------------------------------
def float_models():
    """Small versions of the benchmark's models (bench/cortexm_mac.py), quantized by minitiny."""
    import minitiny as mt
    L = mt.layers
    mt.random.seed(0)
    mlp = mt.Sequential([L.Dense(37, activation="relu", input_shape=(50,)), L.Dense(10)], name="mlp")
    cnn = mt.Sequential([L.Conv2D(8, 3, padding="same", activation="relu", input_shape=(12, 11, 1)),
                         L.MaxPooling2D(2), L.Conv2D(12, 3, padding="same", activation="relu"),
                         L.Flatten(), L.Dense(10)], name="cnn")
    layers = [L.Conv2D(16, (5, 4), strides=2, padding="same", input_shape=(15, 10, 1)),
              L.BatchNormalization(), L.ReLU()]
    for _ in range(2):
        layers += [L.DepthwiseConv2D(3, padding="same"), L.BatchNormalization(), L.ReLU(),
                   L.Conv2D(16, 1), L.BatchNormalization(), L.ReLU()]
    ds_cnn = mt.Sequential(layers + [L.GlobalAveragePooling2D(), L.Dense(12)], name="ds_cnn")
    rng = np.random.default_rng(0)
    out = {}
    for model in (mlp, cnn, ds_cnn):
        rep = rng.normal(size=(32,) + tuple(model.input_shape)).astype(np.float32)
        out[model.name] = mt.quantize(model, rep)
    return out


@pytest.fixture(scope="module")
def seed_models():
    models = float_models()
    models["every_kind"] = every_kind_model(0)
    return models


@requires_qemu
@pytest.mark.parametrize("name", ["mlp", "cnn", "ds_cnn", "every_kind"])
def test_seed_models_dsp_equals_scalar_and_numpy_on_the_m4(seed_models, name, tmp_path):
    model = seed_models[name]
    scalar = run_on(model, "scalar", "cortex-m4", tmp_path)
    fast = run_on(model, "dsp", "cortex-m4", tmp_path)
    np.testing.assert_array_equal(fast.outputs, scalar.outputs)
    assert fast.ram["stack_bound"] <= 1024, fast.ram           # as tests/test_equivalence.py asks
    assert fast.ram["arena"] >= scalar.ram["arena"]            # the im2col scratch is in the arena


@requires_qemu
@pytest.mark.parametrize("name", ["mlp", "every_kind"])
def test_int16_dsp_weights_on_the_m4(seed_models, name, tmp_path):
    """The LDRD/SMLAD int16 path on the real instructions: the same outputs, more flash.
    Built with -Os: at -O2 gcc may unroll a small layer whole and fold its constant weights
    into the instructions (every_kind's last dense layer has a few dozen), leaving no array
    in flash to measure."""
    from minitiny import firmware
    model = seed_models[name]
    runs = {}
    for dsp_weights in ("int8", "int16"):
        d = tmp_path / dsp_weights
        g = codegen.generate(model, d, name="m", variant="dsp", dsp_weights=dsp_weights)
        assert g.manifest["dsp_weights"] == dsp_weights
        runs[dsp_weights] = r = firmware.run(d, board="cortex-m4", inputs=inputs_for(model, 5, 4), profile=False,
                                             opt="-Os")
        assert r.status == "ok" and r.matches_reference is True, r.message
    np.testing.assert_array_equal(runs["int16"].outputs, runs["int8"].outputs)
    widened = sum(t.data.size for op in model.ops if op.kind in ("fully_connected", "conv_2d")
                  for t in [model.tensors[op.inputs[1]]])
    assert runs["int16"].flash["weights"] - runs["int8"].flash["weights"] >= widened   # each weight: 1 byte more


def test_dsp_weights_is_checked(tmp_path):
    with pytest.raises(codegen.CodegenError, match="dsp_weights='int4'"):
        codegen.generate(every_kind_model(0), tmp_path, variant="dsp", dsp_weights="int4")
    with pytest.raises(codegen.CodegenError, match="variant 'scalar' has none"):
        codegen.generate(every_kind_model(0), tmp_path, variant="scalar", dsp_weights="int16")
    assert not os.listdir(tmp_path)                      # nothing written


@requires_qemu
@pytest.mark.parametrize("board", ["cortex-m7", "cortex-m55"])
def test_dsp_kernels_on_the_m7_and_m55(seed_models, board, tmp_path):
    for name in ("ds_cnn", "every_kind"):
        run_on(seed_models[name], "dsp", board, tmp_path, seed=2)


@requires_qemu
def test_odd_shapes_on_the_m4(tmp_path):
    """Odd sizes on the real instructions (inline assembly included): channels not multiples
    of 2 or 4, strides, paddings, depth multipliers, outputs of fewer than 4 pixels."""
    rng = np.random.default_rng(2024)
    models = [o.single_op_model(1, "conv_2d", (7, 6, 3), out_c=5, kernel=(3, 2), stride=(2, 1)),
              o.single_op_model(2, "conv_2d", (5, 5, 8), out_c=3, kernel=(3, 3), padding="same"),
              o.single_op_model(3, "conv_2d", (2, 3, 5), out_c=7, kernel=(2, 3), padding="valid"),
              o.single_op_model(4, "depthwise_conv_2d", (6, 7, 5), depth_multiplier=1, stride=(2, 1)),
              o.single_op_model(5, "depthwise_conv_2d", (5, 4, 3), depth_multiplier=3, padding="same"),
              o.single_op_model(6, "fully_connected", (2, 3, 5), units=9, per_channel=True),
              o.single_op_model(7, "fully_connected", (3,), units=2, bias=False)]
    for kind in ("fully_connected", "conv_2d", "depthwise_conv_2d"):
        for _ in range(2):
            in_shape, cfg = o.random_config(rng, kind)
            models.append(o.single_op_model(int(rng.integers(1 << 30)), kind, in_shape, **cfg))
    models += edge_models(3)        # the general requantization, folded and unfolded biases
    for i, model in enumerate(models):
        run_on(model, "dsp", "cortex-m4", tmp_path, seed=i, n=4)


def disassembly(result, name="m"):
    obj = result.build_dir / f"{name}_model.o"
    return subprocess.run([ARM_OBJDUMP, "-d", str(obj)], capture_output=True, text=True, check=True).stdout


@requires_qemu
def test_auto_picks_the_dsp_kernels_by_core(seed_models, tmp_path):
    model = seed_models["ds_cnn"]
    m4 = run_on(model, "auto", "cortex-m4", tmp_path)
    m3 = run_on(model, "auto", "cortex-m3", tmp_path)        # Armv7-M: no DSP extension
    np.testing.assert_array_equal(m4.outputs, m3.outputs)
    assert "smlad" in disassembly(m4) and "smlad" not in disassembly(m3)
    from minitiny import firmware
    codegen.generate(model, tmp_path / "dsp_only", name="m", variant="dsp")
    with pytest.raises(firmware.BuildError, match="__ARM_FEATURE_DSP"):   # no DSP extension
        firmware.run(tmp_path / "dsp_only", board="cortex-m3", n=1, profile=False)


@requires_arm
def test_dsp_and_auto_compile_clean_for_cortex_m(tmp_path):
    """Every DSP core at -O2, and the M4 at -O0 and -Os too: the inline asm (LDRD/STRD at
    offsets written into the instruction, SMMLAR, SSAT) must not need the optimiser. The
    last three models reach the newest paths: a one-channel 3x3 conv (computed as a
    depthwise conv), a 3x3 conv on 8 channels (the plane's block copies), a 2x2 pool."""
    models = [every_kind_model(1), o.single_op_model(1, "conv_2d", (6, 6, 8), out_c=3),
              o.single_op_model(2, "fully_connected", (8,), units=3),
              o.single_op_model(3, "depthwise_conv_2d", (6, 6, 8), depth_multiplier=2),
              o.single_op_model(4, "conv_2d", (12, 12, 1), out_c=4, kernel=(3, 3), padding="same"),
              o.single_op_model(5, "conv_2d", (8, 8, 8), out_c=4, kernel=(3, 3), padding="same"),
              o.single_op_model(6, "max_pool_2d", (8, 8, 8), pool_size=(2, 2), stride=(2, 2))]
    for i, model in enumerate(models):
        for variant in ("dsp", "auto"):
            g = codegen.generate(model, tmp_path / f"{variant}{i}", name="m", variant=variant)
            builds = [(cpu, "-O2") for cpu in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")]
            for cpu, opt in builds + [("cortex-m4", "-O0"), ("cortex-m4", "-Os")]:
                out = subprocess.run([ARM_GCC, f"-mcpu={cpu}", "-mthumb", opt, "-ffreestanding"] + STRICT
                                     + EXTRA_WARNINGS + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                                     capture_output=True, text=True)
                assert out.returncode == 0, f"{variant} {cpu} {opt}:\n{out.stderr}"
    # MINITINY_SCALAR keeps the scalar kernels on a DSP core; without it "auto" uses SMLAD
    g = codegen.generate(models[1], tmp_path / "scalar_forced", name="m", variant="auto")
    for defines, has_smlad in (([], True), (["-DMINITINY_SCALAR"], False)):
        subprocess.run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-O2", "-ffreestanding"] + STRICT + defines
                       + ["-S", g.source, "-o", str(tmp_path / "m.s")], check=True)
        assert ("smlad" in (tmp_path / "m.s").read_text()) == has_smlad
