"""The DSP-SIMD kernels (codegen variants "dsp" and "auto") give the scalar kernels' bits.

Oracles, each independent of the code under test:
* QModel.predict_int8, the NumPy int8 reference, for every output; on the emulated cores
  also the scalar C build of the same model on the same core.
* The weight layouts (codegen/dsp.py) against a NumPy model of what the kernels read, with
  the lanes of SXTB16 as the Arm Architecture Reference Manual defines them.
* On the host: ACLE_SHIM below, the five DSP intrinsics the kernels use written out in C
  from the Arm ARM's pseudo-code, stands in for <arm_acle.h>, so gcc compiles the DSP C for
  the host: hypothesis draws many shapes cheaply, and AddressSanitizer + UBSan check every
  read and write of the kernels (the tails, the im2col buffer, the padded weight rows).
* On QEMU's Cortex-M4 (and M7, M55): the real instructions, including the inline assembly.

Needs gcc for the host tests, arm-none-eabi-gcc and qemu-system-arm for the rest (skipped,
with the reason, without them).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402
from test_codegen_models import EXTRA_WARNINGS, every_kind_model, random_model  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.codegen import dsp, generator  # noqa: E402
from minitiny.quant import fixedpoint as fp  # noqa: E402

GCC = shutil.which("gcc")
ARM_GCC, QEMU = shutil.which("arm-none-eabi-gcc"), shutil.which("qemu-system-arm")
ARM_OBJDUMP = shutil.which("arm-none-eabi-objdump")
requires_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
requires_arm = pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
requires_qemu = pytest.mark.skipif(ARM_GCC is None or QEMU is None or ARM_OBJDUMP is None, reason=(
    "arm-none-eabi-gcc or qemu-system-arm not installed (apt-get install -y "
    "--no-install-recommends gcc-arm-none-eabi qemu-system-arm)"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


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
             pad_h=1, pad_w=1)
    # in_c = 3: each filter row 9 -> 10 int16, 30 -> 32 per column; and the plane: 10 rows (8 + 2
    # of padding) of 7 * 3 + 10 = 31 -> 32 values (the last window's start, and its 10 values)
    assert dsp.scratch_bytes("conv_2d", p) == dsp.CONV_PIXELS * 32 * 2 + 10 * 32 * 2
    assert dsp.scratch_bytes("conv_2d", dict(p, in_c=4)) == dsp.CONV_PIXELS * 36 * 2   # whole blocks
    assert dsp.scratch_bytes("fully_connected", p) == 0


# ---------------------------------------------------------------------------------------
# The fast requantization's identity, in Python integers
# ---------------------------------------------------------------------------------------
def requantize_fast(acc, multiplier, right_shift):
    """templates/dsp.c.j2 requantize_fast, step by step: SMMULR (the Arm ARM: the high word
    of a * b + 2^31) of 2 acc and the multiplier, then the one-line rounding shift."""
    high = (2 * acc * multiplier + (1 << 31)) >> 32
    return (high + (high >> 31) + (1 << (right_shift - 1))) >> right_shift


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


def folded_layer(bound, r, z, channels=1):
    """A layer whose accumulator bound is `bound` (a bias of that size, zero weights), right
    shift r and output zero point z: what dsp.folded_rounding reads."""
    p = dict(output_shift=np.full(channels, -r), output_multiplier=np.full(channels, 1 << 30),
             output_offset=z)
    return p, np.zeros((channels, 1), np.int8), np.full(channels, bound)


@given(st.integers(-(1 << 30) + 1, (1 << 30) - 1), st.integers(1 << 30, (1 << 31) - 1), st.integers(1, 31),
       st.integers(-128, 127))
@settings(max_examples=400)
def test_folded_rounding_adds_the_zero_point_exactly(acc, multiplier, right_shift, z):
    """Step 0 of requantize_doubled_to_int8 (dsp.c.j2): (high - sign + rounding) >> r must be
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
ACLE_SHIM = r"""
/* The ACLE DSP intrinsics minitiny's DSP kernels use, for a host C compiler: each written
 * from the pseudo-code of the Arm Architecture Reference Manual (Armv7-M, A7.7: SXTB16,
 * SXTAB16, SMLAD, SMLABB/SMLATT). All arithmetic on uint32_t, so wrap-around is defined. */
#ifndef TEST_ACLE_SHIM_H
#define TEST_ACLE_SHIM_H
#include <stdint.h>
static inline int32_t shim_half(int32_t x, int top)       /* SInt(x<15:0>) or SInt(x<31:16>) */
{
    return (int16_t)(uint16_t)((uint32_t)x >> (top ? 16 : 0));
}
static inline int32_t shim_byte(int32_t x, int i)         /* SInt(x<8i+7:8i>) */
{
    return (int8_t)(uint8_t)((uint32_t)x >> (8 * i));
}
static inline int32_t shim_pack(int32_t lo, int32_t hi)   /* two 16-bit results */
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
static inline int32_t __sxtb16(int32_t x)
{
    return shim_pack(shim_byte(x, 0), shim_byte(x, 2));
}
static inline int32_t __sxtab16(int32_t a, int32_t x)
{
    return shim_pack(shim_half(a, 0) + shim_byte(x, 0), shim_half(a, 1) + shim_byte(x, 2));
}
static inline int32_t __smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(shim_half(a, 0) * shim_half(b, 0))
                     + (uint32_t)(shim_half(a, 1) * shim_half(b, 1)));
}
static inline int32_t __smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(shim_half(a, 0) * shim_half(b, 0)));
}
static inline int32_t __smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(shim_half(a, 1) * shim_half(b, 1)));
}
/* SSUB8 and SEL (Armv7-M A7.7.126, A7.7.111) talk through APSR.GE<3:0>: a global here. */
static unsigned shim_apsr_ge;
static inline int32_t __ssub8(int32_t a, int32_t b)
{
    uint32_t result = 0;
    shim_apsr_ge = 0;
    for (int i = 0; i < 4; ++i) {
        const int32_t diff = shim_byte(a, i) - shim_byte(b, i);    /* SInt - SInt, 9 bits */
        result |= ((uint32_t)diff & 0xFFu) << (8 * i);              /* R[d]<8i+7:8i> = diff<7:0> */
        if (diff >= 0) {
            shim_apsr_ge |= 1u << i;                                /* APSR.GE<i> */
        }
    }
    return (int32_t)result;
}
static inline uint32_t __sel(uint32_t a, uint32_t b)
{
    uint32_t result = 0;
    for (int i = 0; i < 4; ++i) {                                   /* GE<i> ? R[n] : R[m], per byte */
        result |= (((shim_apsr_ge >> i) & 1u ? a : b) & (0xFFu << (8 * i)));
    }
    return result;
}
#endif
"""


@pytest.fixture(scope="module")
def shim_flags(tmp_path_factory):
    """Compiler flags that build the DSP kernels on the host; a private compile cache."""
    d = tmp_path_factory.mktemp("acle")
    (d / "arm_acle.h").write_text(ACLE_SHIM)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINITINY_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield ["-D__ARM_FEATURE_DSP=1", "-isystem", str(d)]


def host_dsp(model, x, flags, sanitize=False, variant="dsp", **options):
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="m", variant=variant, **options)
        got = codegen.load(d, flags=flags, sanitize=sanitize)(x)
    want = model.predict_int8(x)
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        raise AssertionError(f"{len(bad)} of {want.size} outputs differ; first at {tuple(bad[0])}: "
                             f"C {got[tuple(bad[0])]}, NumPy {want[tuple(bad[0])]}\n{model.summary()}")


def inputs_for(model, seed, n=8):
    return o.int8_input(np.random.default_rng(seed), model.input.shape, n)


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


def with_real_multiplier(model, real):
    """The one-op model with its output scale set so that the largest channel's real
    multiplier s_in * s_w / s_out is `real` (>= 1/2: no right shift, fast_requantize refuses)."""
    op = model.ops[0]
    x, w, out = (model.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    out.scale = np.asarray(np.float32(float(x.scale) * float(np.max(w.scale)) / real))
    model.prepare()
    return model


def with_bias(model, value):
    """The one-op model with every bias value set to `value` (the accumulator bound grows)."""
    op = model.ops[0]
    b = model.tensors[op.inputs[2]]
    b.data = np.full_like(b.data, value)
    model.prepare()
    return model


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
    scalar = codegen.generate(model, tmp_path / "s", variant="scalar").manifest
    m = codegen.generate(model, tmp_path / "d", variant="dsp").manifest
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
# ---- conv small in_channel ----
# conv_2d with in_channel not a multiple of 4 (first layers: grayscale, RGB, spectrograms):
# the input converted once per band to an int16 plane, each filter row of the weights padded
# to whole blocks of 4 (codegen/dsp.py conv_rows, conv_plane).
# ---------------------------------------------------------------------------------------
SMALL_IN_C = [1, 2, 3, 5, 6, 7]
SMALL_KERNELS = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (10, 4), (2, 3), (3, 1)]


def small_conv(seed, h, w, in_c, kernel, stride, padding, **cfg):
    if padding == "valid":
        kernel = (min(kernel[0], h), min(kernel[1], w))
    return o.single_op_model(seed, "conv_2d", (h, w, in_c), kernel=kernel, stride=stride, padding=padding, **cfg)


def conv_dsp_context(model, dsp_weights="int8"):
    return generator.build_context(model, "m", variant="dsp", dsp_weights=dsp_weights)["layers"][0]["dsp"]


@settings(max_examples=40)
@given(st.sampled_from(SMALL_IN_C), st.sampled_from(SMALL_KERNELS), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(["same", "valid"]), st.integers(1, 30), st.integers(1, 30), o.seeds)
def test_small_in_c_plane_windows_give_the_conv_sums(in_c, kernel, sh, sw, padding, h, w, seed):
    """A NumPy model of what the kernel reads: the plane of each band as conv_plane lays it
    out (x - Z, 0 in the padding), each window's kh rows of L2 plane values (L = kw * in_c
    rounded up to even) and zeros up to K4, times conv_rows' weights, must give the convolution's sums, summed naively over the taps
    inside the image. Every read stays inside the plane, the bands cover every output row,
    and the plane stays within CONV_PLANE_BYTES unless one pass's rows do not fit."""
    model = small_conv(seed, h, w, in_c, kernel, (sh, sw), padding, out_c=3)
    op = model.ops[0]
    p, weight = op.params, model.tensors[op.inputs[1]].data
    kh, kw = weight.shape[1:3]
    band, rows, cols, copy = dsp.conv_plane(p)
    l2 = kw * in_c + (kw * in_c) % 2
    rows_w = dsp.conv_rows(weight).astype(np.int64)                   # (out_c, K4)
    k4 = rows_w.shape[1]
    assert k4 == dsp.conv_k4(p) and k4 % 4 == 0 and 0 <= k4 - kh * l2 < 4
    assert p["pad_w"] * in_c + copy <= cols and cols % 2 == 0
    least = min(p["out_h"], -(-dsp.CONV_PIXELS // p["out_w"]))
    assert band >= least and (rows * cols * 2 <= dsp.CONV_PLANE_BYTES or band == least)
    assert band * p["out_w"] >= min(dsp.CONV_PIXELS, p["out_h"] * p["out_w"])   # a pass fits a band
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(h, w, in_c)).astype(np.int64)
    z = -int(p["input_offset"])
    covered = set()
    for start in range(0, p["out_h"], band):
        top = start if start + band <= p["out_h"] else p["out_h"] - band
        plane = np.zeros((rows, cols), np.int64)
        for r in range(rows):
            in_y = top * sh - p["pad_h"] + r
            if 0 <= in_y < h:
                start_col = p["pad_w"] * in_c
                plane[r, start_col:start_col + copy] = x[in_y].reshape(-1)[:copy] - z
        for oy in range(top, top + band):
            covered.add(oy)
            for ox in range(p["out_w"]):
                r0, c0 = (oy - top) * sh, ox * sw * in_c
                assert r0 + kh <= rows and c0 + l2 <= cols                  # inside the plane
                column = np.concatenate([plane[r0 + fy, c0:c0 + l2] for fy in range(kh)] + [np.zeros(k4 - kh * l2)])
                want = np.zeros(weight.shape[0], np.int64)
                for fy in range(kh):
                    for fx in range(kw):
                        iy, ix = oy * sh - p["pad_h"] + fy, ox * sw - p["pad_w"] + fx
                        if 0 <= iy < h and 0 <= ix < w:
                            want += weight[:, fy, fx, :].astype(np.int64) @ (x[iy, ix] - z)
                np.testing.assert_array_equal(rows_w @ column, want)
    assert covered == set(range(p["out_h"]))


def test_small_in_c_scratch_and_flash():
    """The scratch is the 4 columns and the plane; the benchmark's first layers fit one band
    (28x28x1 3x3 'same': 30 rows of 32 values; 49x10x1 10x4 stride 2 'same': 58 rows of 12);
    a conv_plane on an image too wide for CONV_PLANE_BYTES takes bands of one output row;
    flash: K4 weights per output channel. Sizes worked out by hand."""
    cnn = small_conv(0, 28, 28, 1, (3, 3), (1, 1), "same", out_c=8).ops[0].params
    assert dsp.conv_plane(cnn) == (28, 30, 32, 28)
    assert dsp.scratch_bytes("conv_2d", cnn) == 4 * 12 * 2 + 30 * 32 * 2
    assert dsp.weight_bytes("conv_2d", cnn) == 8 * 12 and dsp.weight_bytes("conv_2d", cnn, "int16") == 8 * 24
    ds = small_conv(0, 49, 10, 1, (10, 4), (2, 2), "same", out_c=64).ops[0].params
    band, rows, cols, copy = dsp.conv_plane(ds)
    assert (band, rows, cols, copy) == (25, 58, 12, 10)             # out_w 5: (5 - 1) * 2 + 4 columns
    rgb = small_conv(0, 9, 9, 3, (5, 5), (1, 1), "same", out_c=4).ops[0].params   # L = 15 -> 16
    assert dsp.conv_k4(rgb) == 5 * 16 and dsp.weight_bytes("conv_2d", rgb) == 4 * 80
    gray = small_conv(0, 9, 9, 1, (5, 5), (1, 1), "same", out_c=4).ops[0].params  # 5 x 6 = 30 -> 32
    assert dsp.conv_k4(gray) == 32 and dsp.conv_plane(gray)[2] == 8 * 1 + 6 == 14
    wide = small_conv(0, 4, 2000, 1, (3, 3), (1, 1), "same", out_c=4).ops[0].params   # 3 rows > 2 KB
    assert dsp.conv_plane(wide)[:2] == (1, 3)


@requires_gcc
@settings(max_examples=20)
@given(st.sampled_from(SMALL_IN_C), st.sampled_from(SMALL_KERNELS), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(["same", "valid"]), st.integers(1, 12), st.integers(1, 12), st.booleans(),
       st.integers(1, 9), o.seeds)
def test_small_in_c_convs_on_the_host(shim_flags, in_c, kernel, sh, sw, padding, h, w, per_channel, out_c, seed):
    """Random shapes, both weight widths, per-tensor or per-channel, the doubled epilogue or
    (every fourth example, a multiplier >= 1/2) the general one; every third sanitized."""
    model = small_conv(seed, h, w, in_c, kernel, (sh, sw), padding, out_c=out_c, per_channel=per_channel,
                       activation=["none", "relu", "relu6"][seed % 3])
    if seed % 4 == 0:
        model = with_real_multiplier(model, 3.0)
        assert not conv_dsp_context(model)["doubled"]
    for width in ("int8", "int16"):
        host_dsp(model, inputs_for(model, seed % 1000, 4), shim_flags, sanitize=seed % 3 == 0, dsp_weights=width)


def small_in_c_models(seed):
    """Tiny images (fewer pixels than a pass), several bands, both epilogues."""
    models = []
    for i, in_c in enumerate(SMALL_IN_C):
        per_channel = i % 2 == 0
        models += [small_conv(seed + i, 1, 1, in_c, (3, 3), (1, 1), "same", out_c=3, per_channel=per_channel),
                   small_conv(seed + i, 2, 3, in_c, (2, 3), (1, 1), "valid", out_c=5, per_channel=per_channel),
                   small_conv(seed + i, 2, 3, in_c, (10, 4), (2, 1), "same", out_c=2, per_channel=not per_channel)]
    models += [small_conv(seed, 40, 30, 3, (3, 3), (1, 1), "same", out_c=4),                   # bands
               small_conv(seed, 99, 40, 1, (10, 4), (2, 2), "same", out_c=6, per_channel=False),
               small_conv(seed, 45, 37, 2, (5, 5), (2, 1), "valid", out_c=3),
               with_real_multiplier(small_conv(seed, 33, 17, 5, (4, 4), (1, 2), "same", out_c=5), 2.5),
               with_real_multiplier(small_conv(seed, 5, 4, 6, (3, 3), (1, 1), "same", out_c=3,
                                               per_channel=False), 0.8)]
    return models


def test_small_in_c_models_take_the_paths_they_name():
    models = small_in_c_models(0)
    ctxs = [conv_dsp_context(m) for m in models]
    assert all(m.ops[0].params["out_h"] * m.ops[0].params["out_w"] < dsp.CONV_PIXELS for m in models[:18])
    assert all(c["band"] < m.ops[0].params["out_h"] for c, m in zip(ctxs[18:22], models[18:22]))
    assert [c["doubled"] for c in ctxs[18:]] == [True, True, True, False, False]


@requires_gcc
@pytest.mark.parametrize("width", ["int8", "int16"])
def test_small_in_c_edge_models_on_the_host(shim_flags, width):
    for i, model in enumerate(small_in_c_models(1)):
        host_dsp(model, inputs_for(model, i, 3), shim_flags, sanitize=i % 2 == 0, dsp_weights=width)


@requires_qemu
def test_small_in_c_models_on_the_m4(tmp_path):
    """The real instructions: unaligned LDR/STR on the plane, the bands, tiny images."""
    models = small_in_c_models(2)
    for i, model in enumerate(models[::3] + models[18:]):
        run_on(model, "dsp", "cortex-m4", tmp_path, seed=i, n=2)


# ---------------------------------------------------------------------------------------
# ---- mean ----
# the global average pool, four channels per word (mean_dsp.c.j2, dsp.py's mean section)
# ---------------------------------------------------------------------------------------
# The effective multiplier e = s_in / (s_out * count) sets the requantization's shift (from
# kernels.py _prepare_mean, by count): 4 -> a left shift of 3; 0.7 and 0.3 -> 1, 0 or -1;
# 0.01 -> -5 or -6 (requantize_fast from -1 on); 1e-4 -> -12 or -13; 1e-9 -> -28 or -29;
# 1e-11 and 1e-12 -> -31 with a multiplier far below 2^30, or a multiplier of 0 (general).
MEAN_MULTIPLIERS = [4.0, 0.7, 0.3, 0.01, 1e-4, 1e-9, 1e-11, 1e-12]


def mean_model(seed, in_shape, z_in, z_out, e, keep_dims=False, single_rounding=False):
    """One mean over H, W with input zero point z_in, output zero point z_out, and the
    output scale that makes s_in / (s_out * count) = e."""
    from minitiny.quant.graph import QModel
    b = o.Builder(seed, in_shape, "mean", None, z_in)
    h, w, c = in_shape
    out = b._tensor((1, 1, c) if keep_dims else (c,), np.float32(b.t.scale / (e * h * w)), np.int32(z_out))
    m = b._op("mean", [b.cur], out, {"axes": (0, 1), "keep_dims": keep_dims}).model()
    return QModel(m.name, m.tensors, m.ops, m.inputs, m.outputs, single_rounding=single_rounding) \
        if single_rounding else m


def test_mean_layer_takes_the_dsp_kernel(tmp_path):
    """No weights, no scratch; with requantize_fast no fixed-point helper at all; "dsp" emits
    the SIMD kernel only, "auto" both under #if MINITINY_DSP; the shifts pick the epilogue."""
    model = mean_model(0, (25, 5, 10), -128, 3, 0.01)
    ctx = generator.build_context(model, "m", variant="dsp")
    layer = ctx["layers"][0]
    assert layer["p"]["output_shift"] == -5 and layer["p"]["output_multiplier"] < 1 << 30
    assert layer["dsp"] == dict(fast_requantize=True, groups=2, tail=2, block=125, blocks=1,
                                unroll=dsp.MEAN_UNROLL, sum_start=128 * 125)
    assert layer["weight_bytes"] == 0 and layer["scratch_bytes"] == 0 and not ctx["helpers"]
    assert {"read_s8x4", "sxtab16_ror8", "s16_lanes", "requantize_fast_to_int8"} <= ctx["dsp_helpers"]
    assert layer["code_bytes"] == dsp.CODE_BYTES["mean"]
    for variant in ("dsp", "auto"):
        src = open(codegen.generate(model, tmp_path / variant, name="m", variant=variant).source).read()
        body = src[src.index("static void mean_0"):]
        assert body.count("static void mean_0") == (2 if variant == "auto" else 1)
        assert "sxtab16_ror8(odd, x7)" in body
        assert ("MultiplyByQuantizedMultiplier(sum - input_zero_point * count" in body) == (variant == "auto")
    # blocks of 256 pixels; a left shift, a shift past -31 or single rounding: the general epilogue
    assert dsp.mean_context(mean_model(0, (16, 17, 4), 0, 0, 0.01).ops[0].params)["blocks"] == 2
    for e, single in ((4.0, False), (0.3, False), (1e-11, False), (0.01, True)):
        p = mean_model(0, (3, 5, 4), 0, 0, e, single_rounding=single).ops[0].params
        assert not dsp.mean_fast_requantize(p)
        assert dsp.mean_helpers(p)[-1] == "requantize_to_int8"
    assert dsp.mean_helpers(mean_model(0, (3, 5, 3), 0, 0, 0.01).ops[0].params) == ["requantize_fast_to_int8"]


@given(st.integers(-255 * 4096, 255 * 4096), st.integers(1, 4096), st.floats(1e-13, 0.49))
@settings(max_examples=400)
def test_requantize_fast_takes_the_means_multipliers(total, count, e):
    """kernels.py _prepare_mean divides the multiplier by count, often below 2^30 (far below
    when the shift reaches -31); requantize_fast (whose proof needs only 0 < m < 2^31) still
    gives fixedpoint.py's bits wherever mean_fast_requantize takes it. The multiplier is
    computed as _prepare_mean does; oracle: minitiny/quant/fixedpoint.py in Python integers."""
    mult, shift = fp.quantize_multiplier(np.float64(e) * count, False)
    s = min(count.bit_length() - 1, 32, 31 + shift)
    m, shift = (mult << s) // count, shift - s
    assert 0 <= m < 1 << 31
    p = dict(output_multiplier=m, output_shift=shift, count=count)
    acc = max(-255 * count, min(255 * count, total))      # |sum - Z_in count| <= 255 count
    if dsp.mean_fast_requantize(p):
        assert requantize_fast(acc, m, -shift) == fp.multiply_by_quantized_multiplier(acc, m, shift)
    else:
        assert not -31 <= shift <= -1 or m == 0


def test_requantize_fast_on_the_means_smallest_multipliers():
    for m in (1 << 29, (1 << 29) + 1, (1 << 30) - 1, 1, 3):
        for r in (1, 2, 7, 31):
            for acc in (0, 1, -1, (1 << r) + (1 << (r - 1)), -(1 << (r - 1)), (1 << 30) - 1, -(1 << 30) + 1):
                assert requantize_fast(acc, m, r) == fp.multiply_by_quantized_multiplier(acc, m, -r), (acc, m, r)


@requires_gcc
@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 9), st.integers(-128, 127), st.integers(-128, 127),
       st.sampled_from(MEAN_MULTIPLIERS), st.booleans(), o.seeds)
def test_mean_on_the_host_matches_numpy(shim_flags, h, w, c, z_in, z_out, e, keep_dims, seed):
    """1 to 400 pixels (one or two blocks of 256), channels 1..9 (words and the byte tail),
    every shift; ASan/UBSan on every fourth draw."""
    model = mean_model(seed, (h, w, c), z_in, z_out, e, keep_dims)
    host_dsp(model, inputs_for(model, seed % 1000, n=4), shim_flags, sanitize=seed % 4 == 0,
             variant=["dsp", "auto"][seed % 2])


def mean_edge_cases():
    """(model, inputs): every value -128 or 127 (the extreme 16-bit lane sums) at 255, 256,
    257 and 515 pixels, around the widening; channels 4, 7 and 9; all zero points at their
    ends; then random inputs on ds-cnn's shape and a 1x1 image."""
    cases = []
    for i, (shape, z_in, z_out, e) in enumerate([((15, 17, 4), -128, 127, 0.01), ((16, 16, 7), 127, -128, 0.3),
                                                  ((1, 257, 9), -128, -128, 1e-4), ((5, 103, 5), 127, 0, 0.7),
                                                  ((16, 16, 8), 0, 5, 4.0)]):
        model = mean_model(i, shape, z_in, z_out, e)
        x = np.stack([np.full(shape, -128, np.int8), np.full(shape, 127, np.int8),
                      np.broadcast_to(np.where(np.arange(shape[2]) % 2, 127, -128).astype(np.int8), shape)])
        cases.append((model, x))
    for i, (shape, e) in enumerate([((25, 5, 64), 0.01), ((1, 1, 6), 0.3), ((2, 3, 12), 1e-10)]):
        model = mean_model(10 + i, shape, -128, -3, e)
        cases.append((model, inputs_for(model, i, n=3)))
    return cases


@requires_gcc
def test_mean_edge_cases_on_the_host(shim_flags):
    for model, x in mean_edge_cases():
        host_dsp(model, x, shim_flags, sanitize=True)


@requires_gcc
@settings(max_examples=10)
@given(st.integers(0, 2 ** 16), st.lists(st.sampled_from(["conv_2d", "depthwise_conv_2d", "max_pool_2d"]),
                                          min_size=0, max_size=2))
def test_random_models_with_a_mean_on_the_host(shim_flags, seed, kinds):
    model = random_model(seed, kinds + ["mean", "fully_connected"], input_shape=(7, 6, 5))
    assert "mean" in [op.kind for op in model.ops]
    host_dsp(model, inputs_for(model, seed), shim_flags)


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
def test_mean_only_models_compile_clean(shim_flags, tmp_path):
    """Only the helpers the kernel calls are emitted (clang -Werror stops on an unused static
    function): no word helpers below 4 channels, no MultiplyByQuantizedMultiplier with
    requantize_fast, requantize_to_int8 and it with a left shift."""
    for i, (shape, e) in enumerate([((3, 5, 3), 0.01), ((2, 2, 8), 4.0), ((20, 20, 9), 0.01)]):
        g = codegen.generate(mean_model(i, shape, 5, -7, e), tmp_path / str(i), name="m", variant="dsp")
        assert ("read_s8x4" in open(g.source).read()) == (shape[2] >= 4)
        out = subprocess.run(["clang"] + STRICT + EXTRA_WARNINGS + shim_flags + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


@requires_qemu
def test_mean_edge_cases_on_the_m4(tmp_path):
    """The real SXTAB16 and SMMULR against NumPy (firmware.run compares), "dsp" and "auto"."""
    from minitiny import firmware
    for i, (model, x) in enumerate(mean_edge_cases()):
        d = tmp_path / f"m{i}"
        codegen.generate(model, d, name="m", variant=["dsp", "auto"][i % 2])
        r = firmware.run(d, board="cortex-m4", inputs=x, profile=False)
        assert r.status == "ok" and r.matches_reference is True, r.message


# ---------------------------------------------------------------------------------------
# ---- pooling ----
# max_pool_2d, four channels per word (max_pool_2d_dsp.c.j2, dsp.py's pooling section)
# ---------------------------------------------------------------------------------------
def pool_model(seed, in_shape, scale, zero_point, **cfg):
    """One max_pool_2d with a chosen input quantization: the fused activation's bounds are
    act_min = max(Z, -128) and, for relu6, act_max = min(Z + 6 / scale, 127), so the scale
    and zero point decide which clamps the kernel needs."""
    return o.Builder(seed, in_shape, "max_pool", scale, zero_point).pool("max_pool_2d", **cfg).model()


def test_byte_word_repeats_a_byte():
    """Oracle: the four bytes read back as a little-endian signed int32 (what a 32-bit load
    of an int8[4] holding the value four times gives)."""
    for v in (-128, -1, 0, 1, 37, 127):
        assert dsp.byte_word(v) == int.from_bytes(bytes([v & 0xFF] * 4), "little", signed=True)


def test_max_pool_layer_takes_the_dsp_kernel(tmp_path):
    """No weights, no scratch, no requantization; "dsp" emits the SIMD kernel only, "auto"
    both under #if MINITINY_DSP; the SSUB8/SEL helper only, and min_s8x4 only for an upper bound."""
    for act, scale, helpers in (("none", 0.5, {"max_s8x4"}), ("relu6", 0.05, {"max_s8x4", "min_s8x4"})):
        model = pool_model(0, (6, 5, 8), scale, -20, pool_size=(2, 2), stride=(2, 2), padding="same", activation=act)
        ctx = generator.build_context(model, "m", variant="dsp")
        layer = ctx["layers"][0]
        assert layer["dsp"] is not None and layer["dsp"]["groups"] == 2 and layer["dsp"]["tail"] == 0
        assert layer["weight_bytes"] == 0 and layer["scratch_bytes"] == 0 and not ctx["helpers"]
        assert ctx["dsp_helpers"] >= helpers and ctx["dsp_helpers"] & {"max_s8x4", "min_s8x4"} == helpers
        assert layer["code_bytes"] == dsp.CODE_BYTES["max_pool_2d"]
        for variant in ("dsp", "auto"):
            src = open(codegen.generate(model, tmp_path / f"{act}{variant}", name="m", variant=variant).source).read()
            body = src[src.index("static void max_pool_2d_0"):]
            assert body.count("static void max_pool_2d_0") == (2 if variant == "auto" else 1)
            assert ("max_s8x4(read_s8x4(" in body) and (("int32_t max = -128;" in body) == (variant == "auto"))
    p = pool_model(0, (6, 5, 8), 0.5, 0).ops[0].params
    with pytest.raises(ValueError, match="wholly in the padding"):
        dsp.pool_context(dict(p, pad_w=2))                  # a window of 2 with 2 padded columns


@requires_gcc
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.integers(1, 3), st.sampled_from(["same", "valid"]),
       st.sampled_from(["none", "relu", "relu6"]), st.sampled_from([0.5, 0.05, 0.004]),
       st.integers(-128, 127), o.seeds)
def test_max_pool_on_the_host_matches_numpy(shim_flags, h, w, c, kh, kw, sh, sw, padding, act, scale, z, seed):
    """Windows cut by 'same' padding on either side, strides past the window, channels
    1..9 (whole words and the byte tail), every clamp; ASan/UBSan on every fourth draw."""
    if padding == "valid":
        kh, kw = min(kh, h), min(kw, w)
    model = pool_model(seed, (h, w, c), scale, z, pool_size=(kh, kw), stride=(sh, sw), padding=padding,
                       activation=act)
    host_dsp(model, inputs_for(model, seed % 1000, n=4), shim_flags, sanitize=seed % 4 == 0,
             variant=["dsp", "auto"][seed % 2])


def pool_models():
    """Shapes for the emulated core: the cnn benchmark's pools, the byte tail alone and after
    words, 'same' windows cut on every side, relu and relu6 clamps, 1x1 images, a pool
    between convolutions."""
    return [pool_model(1, (8, 8, 8), 0.05, -128, pool_size=(2, 2), stride=(2, 2)),
            pool_model(2, (7, 7, 16), 0.5, 3, pool_size=(2, 2), stride=(2, 2), padding="same", activation="relu"),
            pool_model(3, (5, 6, 3), 0.05, -40, pool_size=(3, 3), stride=(1, 2), padding="same", activation="relu6"),
            pool_model(4, (6, 5, 9), 0.02, 10, pool_size=(4, 2), stride=(3, 1), padding="same", activation="relu6"),
            pool_model(5, (1, 1, 5), 0.5, 0, pool_size=(3, 3), stride=(2, 2), padding="same", activation="relu"),
            random_model(6, ["conv_2d", "max_pool_2d", "conv_2d", "max_pool_2d"], input_shape=(9, 8, 3))]


@requires_gcc
def test_pool_models_on_the_host(shim_flags):
    for i, model in enumerate(pool_models()):
        host_dsp(model, inputs_for(model, i, n=3), shim_flags, sanitize=True)


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
def test_a_model_whose_only_dsp_layer_is_a_pool_compiles_clean(shim_flags, tmp_path):
    """Only the helpers a model calls are emitted: a pool-only DSP model has no requantization,
    so no ssat8 either (clang -Werror stops on an unused static function)."""
    model = o.single_op_model(3, "max_pool_2d", (6, 6, 8), pool_size=(2, 2), stride=(2, 2))
    g = codegen.generate(model, tmp_path, name="m", variant="dsp")
    source = open(g.source).read()
    assert "max_s8x4" in source and "ssat8" not in source
    out = subprocess.run(["clang"] + STRICT + EXTRA_WARNINGS + shim_flags + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
@pytest.mark.parametrize("variant", ["auto", "dsp"])
def test_auto_and_dsp_compile_clean_with_clang_on_both_sides_of_the_switch(shim_flags, tmp_path, variant):
    """clang warns about an unused static function even when it is inline: a helper only the
    scalar kernels call must not be emitted where the DSP build compiles them out."""
    models = [every_kind_model(3), o.single_op_model(1, "fully_connected", (20,), units=7),
              o.single_op_model(2, "conv_2d", (6, 5, 3), out_c=5)]
    for i, model in enumerate(models):
        g = codegen.generate(model, tmp_path / f"{variant}{i}", name="m", variant=variant)
        for flags in ([], shim_flags) if variant == "auto" else (shim_flags,):
            out = subprocess.run(["clang"] + STRICT + EXTRA_WARNINGS + flags + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                                 capture_output=True, text=True)
            assert out.returncode == 0, f"model {i}, {'DSP' if flags else 'scalar'} build:\n{out.stderr}"


@requires_qemu
def test_pool_models_on_the_m4(tmp_path):
    """The real SSUB8/SEL against NumPy (run_on compares), "dsp" and "auto"."""
    for i, model in enumerate(pool_models()):
        run_on(model, ["dsp", "auto"][i % 2], "cortex-m4", tmp_path, seed=i, n=3)


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


def run_on(model, variant, board, tmp, seed=0, n=6):
    from minitiny import firmware
    d = tempfile.mkdtemp(dir=tmp)
    codegen.generate(model, d, name="m", variant=variant)
    r = firmware.run(d, board=board, inputs=inputs_for(model, seed, n), profile=False)
    assert r.status == "ok", f"{variant} on {board}: {r.message}"
    assert r.matches_reference is True                 # the NumPy int8 reference
    return r


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
    """The LDRD/SMLAD int16 path on the real instructions: the same outputs, more flash."""
    from minitiny import firmware
    model = seed_models[name]
    runs = {}
    for dsp_weights in ("int8", "int16"):
        d = tmp_path / dsp_weights
        g = codegen.generate(model, d, name="m", variant="dsp", dsp_weights=dsp_weights)
        assert g.manifest["dsp_weights"] == dsp_weights
        runs[dsp_weights] = r = firmware.run(d, board="cortex-m4", inputs=inputs_for(model, 5, 4), profile=False)
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
    models = [every_kind_model(1), o.single_op_model(1, "conv_2d", (6, 6, 8), out_c=3),
              o.single_op_model(2, "fully_connected", (8,), units=3),
              o.single_op_model(3, "depthwise_conv_2d", (6, 6, 8), depth_multiplier=2)]
    for i, model in enumerate(models):
        for variant in ("dsp", "auto"):
            g = codegen.generate(model, tmp_path / f"{variant}{i}", name="m", variant=variant)
            for cpu in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"):
                out = subprocess.run([ARM_GCC, f"-mcpu={cpu}", "-mthumb", "-O2", "-ffreestanding"] + STRICT
                                     + EXTRA_WARNINGS + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                                     capture_output=True, text=True)
                assert out.returncode == 0, f"{variant} {cpu}:\n{out.stderr}"
    # MINITINY_SCALAR keeps the scalar kernels on a DSP core; without it "auto" uses SMLAD
    g = codegen.generate(models[1], tmp_path / "scalar_forced", name="m", variant="auto")
    for defines, has_smlad in (([], True), (["-DMINITINY_SCALAR"], False)):
        subprocess.run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-O2", "-ffreestanding"] + STRICT + defines
                       + ["-S", g.source, "-o", str(tmp_path / "m.s")], check=True)
        assert ("smlad" in (tmp_path / "m.s").read_text()) == has_smlad


# ---------------------------------------------------------------------------------------
# depthwise_conv_2d: the plane kernel (depthwise_conv_2d_dsp.c.j2, dsp.py's depthwise section)
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
    ]


def test_depthwise_models_take_the_paths_they_name():
    ctx = [generator.build_context(m, "m", variant="dsp")["layers"][0]["dsp"] for m in depthwise_models(0)]
    assert [c["fast"] for c in ctx] == [True] * 6 + [False] * 4 + [True] * 3
    assert [c["along"] for c in ctx[:3]] == ["y", "x", "x"]
    assert ctx[5]["band"] < 40 and ctx[6]["band"] < 36             # several bands
    assert ctx[10]["fast_requantize"] is False and ctx[0]["fast_requantize"]
    # four outputs per pass, then two and/or one: rows of every length mod 4
    assert {c["along_axis"]["out"] % 4 for c in ctx if c["fast"]} == {0, 1, 2, 3}
    # the doubled sums (requantize_doubled_to_int8) exactly where the rounding folds
    assert [c["scale"] for c in ctx] == [1 if c["rounding"] is None else 2 for c in ctx]
    assert ctx[0]["scale"] == 2 and ctx[10]["scale"] == 1
    assert ctx[-1]["fast_requantize"] and ctx[-1]["rounding"] is None and ctx[-1]["along_axis"]["out"] % 4 == 2
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
