"""The DSP-SIMD kernel variant: weight layouts and scratch memory, decided at generation time.

The kernels in templates/dsp/ run on cores with the Arm DSP extension (Cortex-M4, M7, M33,
M55). Their inner step loads one 32-bit word of four int8 weights and extends it into two
words of two int16 lanes each, which `__smlad` multiplies with two int16 pairs of inputs and
adds: four multiply-accumulates in a handful of instructions. How the weights sit in flash
decides how few instructions that takes, so this file reorders them once, in Python, into
the order the kernel reads (CMSIS-NN does the same: "reordered" weights).

    __sxtb16(word)         bytes 0 and 2 -> int16 lanes (b0, b2)
    sxtb16_ror8(word)      bytes 1 and 3 -> int16 lanes (b1, b3)

* conv_2d: im2col turns the window of each output pixel into a column of K int16 values
  (x - Z, in the order k = filter_y, filter_x, in_channel; zeros where the window lies in
  the padding), read as the pairs (k, k+1) and (k+2, k+3). A group of four weights stored
  as (w0, w2, w1, w3) extends to exactly (w0, w1) and (w2, w3): `conv_weight` applies that
  permutation to each group of four of every output channel's row, after padding the row
  with zeros to a multiple of 4 (the columns are padded with zeros too, so no tail code).
  The kernel computes CONV_PIXELS = 4 output pixels per pass, one output channel at a
  time: each weight word is extended once for four pixels, whose columns are interleaved
  in blocks of four (scratch: 4 columns of int16 in the arena while the layer runs), so
  that two LDMs of four words read a block of all four (read_4_words; 13 instructions for
  16 MACs: LDR, two SXTB16, two LDM, eight SMLAD); the k loop runs `conv_unroll` blocks per
  iteration. Where the output zero point is folded into the rounding (folded_rounding) with
  per-channel scales, each output channel's requantization constants and weights are one
  record, read by one pointer (the k loop needs every register). With dsp_weights="int16" (`conv_weight16`)
  the rows are stored already extended, in their natural order, and one LDRD replaces the
  LDR and the two SXTB16 of a block.
  When in_channel is not a multiple of 4 (first layers: grayscale, RGB, spectrograms) a tap
  does not start a block, and when the windows overlap (any kernel larger than 1x1) the
  columns would extend each input value once per window that holds it (9 times for 3x3).
  Then the kernel first converts the input, a band of output rows' input rows at a time, to
  an int16 "plane" of x - Z with the padding written out as 0 (`conv_plane`, at most
  CONV_PLANE_BYTES unless one pass's rows need more; `conv_uses_plane` keeps the columns
  alone for a multiple of 4 channels whose plane does not fit), and each filter row of the
  weights is padded with a zero to whole int16 pairs (`conv_rows`, L = kw * in_c -> L2,
  K4 = kh * L2 rounded up to 4): a filter row of a window is then L2 consecutive plane
  values, copied as they are (a value past the row meets a zero weight): one LDRD and one
  STRD a block where the windows are word-aligned (`conv_block_copies`), else pair by pair.
  The band size is the one that wastes the fewest passes (`conv_plane`'s cost).
  A conv on one input channel with a 3x3 kernel (stride 1 along the plane's rows) is not
  computed here at all: it equals a depthwise conv with depth_multiplier = out_c, whose
  kernel keeps a filter row in registers and slides it along the plane with no im2col
  (codegen/generator.py depthwise_form).
* fully_connected: the input word is extended the same way as the weight word, (x0, x2)
  and (x1, x3), so no permutation is needed; instead four units are interleaved
  (`dense_weight`) so that two LDRDs from one pointer read their four words, and each
  input word is extended once for all four; from DENSE_EXTEND_GROUPS groups of four units
  on, the whole input is extended once into the arena (dense_extends_input), and a block
  costs one LDRD of its pairs, one LDM of the four weight words, eight SXTB16 and eight
  SMLAD (18 instructions for 16 MACs, against 21). Rows padded to a multiple of 4 with zeros;
  the input's last word may read up to 3 bytes past the input tensor, which stay inside
  the arena (every buffer starts and ends 4-aligned) and meet those zero weights. Every
  weight byte is read once per inference, so its extension to int16 cannot be shared
  between outputs; dsp_weights="int16" stores the weights already extended
  (`dense_weight16`), for twice the flash of the layer's weights.
* depthwise_conv_2d: one input channel at a time, copied as int16 into a "plane" in the
  arena with its padding written out as the input zero point, so that neighbours along a
  plane row are the int16 pairs SMLAD takes; the weights keep TFLite's int8 layout and are
  paired per channel at run time; the input offset is folded into the bias (section
  "depthwise_conv_2d" at the end of this file). A 3x3 kernel with stride 1 or 2 along the
  plane's rows keeps its weights in registers and computes four outputs per pass
  (depthwise_fast, depthwise_fast_stride2); other kernels go through a table of pairs. Where folded_rounding allows, weights and
  bias are doubled so that the sum is 2 acc, and requantize_doubled_to_int8 ends each
  output in four instructions (SMMLAR, SUB, ASR, SSAT).

* transpose_conv: the gather of templates/scalar/transpose_conv.c.j2 (codegen/transpose_conv.py:
  per output pixel the taps that meet an input), its dot products over in_channel four
  channels a word: input and weight words extended alike, (0, 2) and (1, 3), no reordering.

Requantization. Each kernel ends every output with requantize_fast_to_int8
(templates/dsp/helpers.c.j2): TFLM's double rounding in a few instructions (SMMULR of
2 acc, then one rounding shift), exact when fast_requantize below proves it for the layer
(|acc| < 2^30 for every input, shifts right by 1..31; the proof is beside requantize_fast).
The conv kernel goes one step further where `folded_rounding` allows: the output zero point
joins the rounding constant, precomputed per channel, and its im2col columns hold 2 (x - Z),
so that the sums are 2 acc and requantize_doubled_to_int8 ends each output in SMMLAR, SUB,
ASR, SSAT (the depthwise kernel too, and the dense kernel where it extends its input once,
into 2 (x - Z)). Otherwise the layer keeps requantize_to_int8, the
scalar kernels' MultiplyByQuantizedMultiplier. The dense and conv kernels do not fold the
input offset into the bias: the DSP kernels add it while extending int8 to int16 (SXTAB16
costs what SXTB16 does), so folding would save nothing; the scalar kernels fold it
(generator.folded_bias).

Flash: the padding, out_c * (K4 - K) bytes for conv_2d (plus 4 bytes per channel of
folded rounding constants when the quantization is per channel) and
units * (in4 - in) for fully_connected (0 when the sizes are multiples of 4); both double
with dsp_weights="int16". What all this buys, in instructions per MAC and flash, is
measured by bench/cortexm_mac.py and bench/kernel_variants.py.
"""
import numpy as np

# op kind -> template of its DSP-SIMD kernel (generator.KERNEL_VARIANTS uses this)
TEMPLATES = {
    "fully_connected": "dsp/fully_connected.c.j2",
    "conv_2d": "dsp/conv_2d.c.j2",
    "depthwise_conv_2d": "dsp/depthwise_conv_2d.c.j2",
    "transpose_conv": "dsp/transpose_conv.c.j2",      # scalar/transpose_conv.c.j2 with SMLAD
    "max_pool_2d": "dsp/max_pool_2d.c.j2",
    "mean": "dsp/mean.c.j2",
}

# Flash bytes of code of each DSP kernel with the helpers it calls, the estimate in the
# manifest: Thumb-2 under arm-none-eabi-gcc -Os -mcpu=cortex-m4 -fno-inline, as `python -m
# minitiny.codegen.sizes DIR` reads it on single-layer models (as generator.CODE_BYTES; the
# conv and depthwise kernels vary with their shapes, as their loops are written out or not).
CODE_BYTES = {"fully_connected": 350, "conv_2d": 900, "depthwise_conv_2d": 820, "max_pool_2d": 200,
             "mean": 400, "transpose_conv": 460}


# The helpers of templates/dsp/helpers.c.j2 each kernel calls, and what they call in turn; only
# what a model uses is emitted (clang warns about unused static inline functions).
HELPER_DEPENDS = {
    "requantize_fast_to_int8": ["requantize_fast", "ssat8"],
    "requantize_to_int8": ["ssat8"],
    "requantize_doubled_to_int8": ["ssat8"],
    "smlad_s8x4": ["sxtb16_ror8"],
    "smlabt": ["smlatb"],
    "im2col_zero_blocks": ["write_s16x2"],
    "im2col_copy_blocks": ["read_s8x4", "sxtab16_ror8", "write_s16x2", "pack_lo_lo", "pack_hi_hi"],
    "plane_from_s8": ["read_s8x4", "sxtab16_ror8", "pack_lo_lo", "pack_hi_hi"],
    "im2col_copy_pairs": [],
}


def helpers(kind, p, fast, dsp_weights="int8", folded=False):
    """The dsp/helpers.c.j2 helpers the DSP kernel of one layer calls (without their dependencies);
    fast: the layer's requantization is requantize_fast's (fast_requantize); folded: its
    output zero point is folded into the rounding term (folded_rounding)."""
    if kind == "mean":
        return mean_helpers(p)
    if kind in POOL_KINDS:
        return pool_helpers(p)
    epilogue = ["requantize_fast_to_int8"] if fast else ["requantize_to_int8"]
    if folded:
        epilogue = ["requantize_doubled_to_int8"]
    extended = ["read_2_words"] if kind == "fully_connected" and dense_extends_input(p) else []
    if kind == "fully_connected" and dsp_weights == "int16":
        return ["read_s8x4", "sxtab16_ror8", "read_2_words"] + epilogue
    if kind == "fully_connected":
        words = (["read_4_words"] if dense_extends_input(p) else ["read_2_words"]) if p["out_features"] >= 4 else []
        return ["read_s8x4", "sxtab16_ror8", "smlad_s8x4"] + words + extended + epilogue
    if kind == "transpose_conv":         # a word of 4 channels: read, extended, SMLADs
        return (["read_s8x4", "smlad_s8x4"] if p["in_c"] >= 4 else []) + epilogue
    if kind == "conv_2d":
        if not conv_uses_plane(p):
            im2col = ["im2col_zero_blocks", "im2col_copy_blocks"]
        elif conv_block_copies(p):
            im2col = ["plane_from_s8", "read_2_words_at", "write_2_words_at"]
        else:
            im2col = ["plane_from_s8", "im2col_copy_pairs"]
        l2 = even(p["kernel_w"] * p["in_c"])
        if conv_uses_plane(p) and padded(p["kernel_h"] * l2) > p["kernel_h"] * l2:
            im2col.append("write_s16x2")        # the columns' last pair, zeroed once
        return ["read_4_words"] + (["read_2_words"] if dsp_weights == "int16" else ["read_s8x4", "sxtb16_ror8"]) \
            + im2col + epilogue
    return depthwise_helpers(p, folded) + epilogue


def helper_closure(names):
    todo, used = list(names), set()
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo.extend(HELPER_DEPENDS.get(name, []))
    return used


def padded(k):
    """k rounded up to a multiple of 4: the kernels read whole groups of four."""
    return (k + 3) // 4 * 4


def sxtb16_order(k):
    """Index permutation of a row of length k (a multiple of 4): each group of four
    (0, 1, 2, 3) is stored as (0, 2, 1, 3). reordered = row[sxtb16_order(k)]."""
    return np.arange(k).reshape(-1, 4)[:, [0, 2, 1, 3]].reshape(-1)


def even(n):
    """n rounded up to a multiple of 2: a filter row of conv_rows, in whole int16 pairs."""
    return n + n % 2


def conv_rows(weight):
    """(out_c, kh, kw, in_c) int8 -> (out_c, K4) natural order: each filter row's L = kw *
    in_c values padded with a zero to L2 = even(L), so that every filter row starts an
    int16 pair of the im2col column (dsp/conv_2d.c.j2 copies a row's pairs from its int16
    plane; the zero weight meets whatever value follows the row there), then zeros up to K4,
    kh * L2 rounded up to a multiple of 4. With in_c even the rows need no padding and K4 is
    K rounded up to 4; with in_c a multiple of 4, K4 = K."""
    w = np.asarray(weight)
    rows = w.reshape(w.shape[0], w.shape[1], -1)                 # (out_c, kh, L)
    rows = np.concatenate([rows, np.zeros(rows.shape[:2] + (even(rows.shape[2]) - rows.shape[2],), w.dtype)],
                          axis=2).reshape(w.shape[0], -1)        # (out_c, kh * L2)
    return np.concatenate([rows, np.zeros((w.shape[0], padded(rows.shape[1]) - rows.shape[1]), w.dtype)], axis=1)


def conv_weight(weight):
    """(out_c, kh, kw, in_c) int8 -> (out_c, K4): conv_rows (each filter row padded to whole
    pairs, the row to a multiple of 4), each row in sxtb16_order."""
    rows = conv_rows(weight)
    return rows[:, sxtb16_order(rows.shape[1])]


def conv_weight16(weight):
    """(out_c, kh, kw, in_c) int8 -> (out_c, K4) int16: conv_rows in the natural order, the
    words (w_k, w_k+1) and (w_k+2, w_k+3) already the lanes of the column pairs
    (dsp_weights="int16": no SXTB16 in the loop)."""
    return conv_rows(weight).astype(np.int16)


def dense_weight(weight):
    """(units, in_features) int8 -> the lines of dsp/fully_connected.c.j2's array.

    Each row padded with zeros to a multiple of 4 (the kernel reads the input four at a
    time; the last word's extra bytes meet zero weights). Units in groups of four, one
    line per group: for each block of four inputs, the four units' four weights (16 bytes,
    read with two LDRDs, or one LDM). After the groups, the last units mod 4 as whole rows, one line each."""
    w = np.asarray(weight)
    units, n = w.shape
    w = np.concatenate([w, np.zeros((units, padded(n) - n), w.dtype)], axis=1)
    groups = units // 4
    lines = [w[4 * g:4 * g + 4].reshape(4, -1, 4).transpose(1, 0, 2).reshape(-1) for g in range(groups)]
    return lines + [row for row in w[4 * groups:]]


def dense_weight16(weight):
    """dense_weight's lines widened to int16, each group of four in sxtb16_order: (w0, w2),
    (w1, w3), the lanes of the input's (x0, x2), (x1, x3). A block of four inputs then costs
    one unit two words and two SMLADs, no extension (dsp_weights="int16")."""
    return [line[sxtb16_order(len(line))].astype(np.int16) for line in dense_weight(weight)]


DENSE_UNROLL_MAX = 8     # at most this many blocks of 4 inputs per iteration of the dense loop


def dense_unroll(blocks):
    """How many blocks of 4 inputs dsp/fully_connected.c.j2's inner loop runs per iteration
    (`#pragma GCC unroll`): the largest divisor of the blocks up to DENSE_UNROLL_MAX, so
    that none is left over after the loop. The loop's counter and branch are then paid once
    per that many blocks; more blocks per iteration buy less and cost code
    (bench/cortexm_mac.py measures the layer)."""
    return max(d for d in range(1, DENSE_UNROLL_MAX + 1) if blocks % d == 0)


DENSE_EXTEND_GROUPS = 4   # from this many groups of four units on, the input is extended once


def dense_extends_input(p):
    """True when dsp/fully_connected.c.j2 first extends the whole input to int16 pairs in the
    arena, (x0, x2) - Z and (x1, x3) - Z per block of four (a few instructions a block, once),
    so that each group of four units reads a block's pairs with one LDRD instead of an LDR
    and two SXTAB16 (saved once per group)."""
    return p["out_features"] // 4 >= DENSE_EXTEND_GROUPS


def offset_pair(offset):
    """An int16 offset in both lanes of an int32: (offset, offset), as a signed int32."""
    lane = int(offset) & 0xFFFF
    word = lane | (lane << 16)
    return word - (1 << 32) if word >= 1 << 31 else word


CONV_PIXELS = 4      # output pixels dsp/conv_2d.c.j2 computes per pass (im2col columns)


CONV_WHOLE_BLOCKS = 32   # up to this many blocks (K4 <= 128) the compiler writes the k loop out whole
CONV_UNROLL_MAX = 16     # past that, it writes out at most this many blocks per iteration


def conv_unroll(k4):
    """How many blocks of 4 values of k the compiler writes out per iteration of
    dsp/conv_2d.c.j2's inner loop (`#pragma GCC unroll`, read by GCC and clang; the C keeps
    one readable block). Up to CONV_WHOLE_BLOCKS blocks, all of them: no counter and no
    branch are left, for more code per layer (bounded: at most 32 blocks). Past that, the largest divisor of the
    blocks up to CONV_UNROLL_MAX when it is at least 4, else 2 (blocks left over after the
    loop cost more than the loop's counter; 8 pixels per pass instead of 4 made GCC 12
    spill accumulators)."""
    blocks = k4 // 4
    if blocks <= CONV_WHOLE_BLOCKS:
        return blocks
    divisor = max(d for d in range(1, CONV_UNROLL_MAX + 1) if blocks % d == 0)
    return divisor if divisor >= 4 else 2


def conv_k4(p):
    """K4 of conv_rows: kh filter rows of kw * in_c values, each padded to whole pairs, all
    padded to a multiple of 4."""
    return padded(p["kernel_h"] * even(p["kernel_w"] * p["in_c"]))


CONV_PLANE_BYTES = 2048    # the plane holds a band of output rows within this


def conv_plane(p):
    """(band, rows, cols, copy) of the int16 plane of a conv (dsp/conv_2d.c.j2, where
    conv_uses_plane): output rows per band; plane rows of a band; plane
    columns (int16 values; even, so every row is word-aligned), plane column c being input
    column c / in_c - pad_w, channel c % in_c; the input values per row copied into it.
    The last window of a row starts at column (out_w - 1) * stride_w * in_c and reads L2
    values (whole pairs) of each of its rows. A band holds at least the CONV_PIXELS pixels
    of one pass (and one row): on an image so wide that kh rows do not fit, the plane is kh
    rows of the padded image width. Among the sizes that fit CONV_PLANE_BYTES, the one with
    the fewest instructions by a rough count: whole passes (a band of 70 pixels ends with a
    pass of 2 that costs a whole one) before fewer plane rows to convert."""
    c = p["in_c"]
    cols = even((p["out_w"] - 1) * p["stride_w"] * c + even(p["kernel_w"] * c))
    copy = max(0, min(p["in_w"] * c, cols - p["pad_w"] * c))
    least = min(p["out_h"], -(-CONV_PIXELS // p["out_w"]))

    def rows(band):
        return (band - 1) * p["stride_h"] + p["kernel_h"]

    def cost(band):
        # instructions, roughly: a pass of CONV_PIXELS pixels ~3 per weight (the k loop's
        # 12 per block of 4 values for 4 pixels), a plane row ~3 per value it converts
        bands = -(-p["out_h"] // band)
        passes = bands * -(-(band * p["out_w"]) // CONV_PIXELS)
        return passes * p["out_c"] * conv_k4(p) * 3 + bands * rows(band) * copy * 3

    fitting = [b for b in range(least, p["out_h"] + 1) if rows(b) * cols * 2 <= CONV_PLANE_BYTES] or [least]
    # the cheapest band size that fits; the last band is moved up to end at the last output
    # row, and recomputes the rows it shares with the band before
    band = min(fitting, key=lambda b: (cost(b), -b))
    return band, (band - 1) * p["stride_h"] + p["kernel_h"], cols, copy


def conv_uses_plane(p):
    """True when dsp/conv_2d.c.j2 fills its columns from the int16 plane: always when
    in_channel is not a multiple of 4; else when the windows overlap (a kernel larger than
    1x1) and the plane's rows fit CONV_PLANE_BYTES, so that each input value is extended
    to int16 once per band instead of once per window that holds it."""
    if p["in_c"] % 4:
        return True
    if p["kernel_h"] * p["kernel_w"] == 1:
        return False
    _, rows, cols, _ = conv_plane(p)
    return rows * cols * 2 <= CONV_PLANE_BYTES


def conv_block_copies(p):
    """True when dsp/conv_2d.c.j2 copies each window from the plane with one LDRD and one
    STRD per block of 4 values, at constant offsets written out (READ_2_WORDS_AT): a filter
    row is whole blocks (L2 a multiple of 4), every window starts on a 4-byte boundary
    (stride_w * in_c even, or one output column), and the offsets fit LDRD's (<= 1020 bytes)
    for at most 32 blocks a window. Else im2col_copy_pairs, two LDRs a block."""
    l2 = even(p["kernel_w"] * p["in_c"])
    if not conv_uses_plane(p) or l2 % 4 or p["kernel_h"] * l2 // 4 > 32:
        return False
    if p["out_w"] > 1 and (p["stride_w"] * p["in_c"]) % 2:
        return False
    _, _, cols, _ = conv_plane(p)
    last_read = 2 * ((p["kernel_h"] - 1) * cols + l2 - 4)
    last_write = 2 * 4 * CONV_PIXELS * (p["kernel_h"] * l2 // 4 - 1)
    return max(last_read, last_write) <= 1020


def scratch_bytes(kind, p):
    """Bytes of arena the DSP kernel of `kind` needs while it runs (0: none)."""
    if kind == "mean":
        return 0
    if kind in POOL_KINDS:
        return 0
    if kind == "conv_2d":   # CONV_PIXELS im2col columns of K4 int16, and the int16 plane
        _, rows, cols, _ = conv_plane(p)                        # where conv_uses_plane
        return CONV_PIXELS * conv_k4(p) * 2 + (rows * cols * 2 if conv_uses_plane(p) else 0)
    if kind == "depthwise_conv_2d":
        return depthwise_scratch_bytes(p)
    if kind == "fully_connected" and dense_extends_input(p):
        return 2 * padded(p["in_features"])          # the input as int16 pairs, x - Z
    return 0


def weight_bytes(kind, p, dsp_weights="int8"):
    """Flash bytes of the DSP kernel's weight array (rows padded to a multiple of 4; int16
    with dsp_weights="int16"), or None when it keeps the scalar kernel's."""
    if kind == "mean":
        return None
    if kind in POOL_KINDS:
        return None
    if kind == "conv_2d":
        return p["out_c"] * conv_k4(p) * (2 if dsp_weights == "int16" else 1)
    if kind == "fully_connected":
        return p["out_features"] * padded(p["in_features"]) * (2 if dsp_weights == "int16" else 1)
    if kind == "depthwise_conv_2d":
        return depthwise_weight_bytes(p)
    return None


# requantize_fast (templates/dsp/helpers.c.j2) needs |acc| < 2^30: it doubles acc in an int32.
FAST_ACC_LIMIT = 1 << 30


def accumulator_bound(kind, weight, bias):
    """The largest |acc| any input can give, per output channel: sum |w| * 255 + |bias|
    (|x - Z| <= 255 for int8 x and Z). The same argument as Prepare's overflow check
    (minitiny/quant/kernels/common.py check_accumulator), summed over the actual weights."""
    w = np.abs(np.asarray(weight, dtype=np.int64))
    if kind == "depthwise_conv_2d":            # (1, kh, kw, out_c): a channel per last index
        per_channel = w.reshape(-1, w.shape[-1]).sum(axis=0)
    else:                                      # (out_c, ...): a channel per first index
        per_channel = w.reshape(w.shape[0], -1).sum(axis=1)
    b = np.abs(np.asarray(bias, dtype=np.int64)) if bias is not None else 0
    return per_channel * 255 + b


def fast_requantize(kind, p, weight, bias):
    """True when requantize_fast (templates/dsp/helpers.c.j2) gives MultiplyByQuantizedMultiplier's
    bits for every accumulator this layer can produce: TFLM's double rounding (not the
    single-rounding build), every channel shifts right by 1..31 (a multiplier below 1/2; a
    larger one, or 0, keeps the general requantize_to_int8), and |acc| < 2^30 for every
    input (accumulator_bound). The proof is beside requantize_fast."""
    shifts = np.asarray(p["output_shift"]).ravel()
    multipliers = np.asarray(p["output_multiplier"]).ravel()
    return bool(not p.get("single_rounding", False)
                and np.all((shifts <= -1) & (shifts >= -31)) and np.all(multipliers >= 1 << 30)
                and accumulator_bound(kind, weight, bias).max(initial=0) < FAST_ACC_LIMIT)


def folded_rounding(kind, p, weight, bias):
    """The per-channel constants 2^(r-1) + Z_out 2^r of requantize_doubled_to_int8
    (templates/dsp/helpers.c.j2), or None when the layer cannot use it.

    requantize_fast ends with (h - sign + 2^(r-1)) >> r, and the kernel then adds the
    output zero point Z_out. Adding Z_out 2^r before the arithmetic shift adds exactly
    Z_out after it (floor((a + Z 2^r) / 2^r) = floor(a / 2^r) + Z), so one ADD of a
    precomputed constant does both, provided the sum stays an int32. It does when
    |h| + 1 + 2^(r-1) + |Z_out| 2^r < 2^31, with |h| <= |acc| (SMMULR of 2 acc by a
    multiplier below 2^31 never grows it) <= accumulator_bound: checked here per channel."""
    if not fast_requantize(kind, p, weight, bias):
        return None
    shifts = -np.asarray(p["output_shift"], dtype=np.int64).ravel()             # r >= 1
    channels = len(accumulator_bound(kind, weight, bias))
    r = np.broadcast_to(shifts, (channels,)) if shifts.size == 1 else shifts
    z = int(p["output_offset"])
    rounding = (1 << (r - 1)) + z * (1 << r)
    if np.any(accumulator_bound(kind, weight, bias) + 1 + (1 << (r - 1)) + abs(z) * (1 << r) >= 1 << 31):
        return None
    return rounding


DSP_WEIGHTS = ("int8", "int16")     # how dsp/fully_connected.c.j2 stores its weights


def layer_context(kind, p, weight, bias=None, scratch_offset=None, dsp_weights="int8"):
    """What the DSP template of one layer reads as `layer.dsp`."""
    if kind == "mean":
        return mean_context(p)
    if kind in POOL_KINDS:
        return pool_context(p)
    ctx = {"offset_pair": offset_pair(p["input_offset"]),
           "fast_requantize": fast_requantize(kind, p, weight, bias)}
    if kind == "conv_2d":
        k = p["kernel_h"] * p["kernel_w"] * p["in_c"]
        wide = dsp_weights == "int16"
        rounding = folded_rounding(kind, p, weight, bias)
        # with requantize_doubled_to_int8 the columns hold 2 (x - Z) (|2 (x - Z)| <= 510, an
        # int16) and the bias is doubled, so the sums are 2 acc: an int32 as |acc| < 2^30
        doubled = rounding is not None
        k4 = conv_k4(p)
        ctx.update(K=k, K4=k4, L=p["kernel_w"] * p["in_c"], L2=even(p["kernel_w"] * p["in_c"]),
                   pixels=CONV_PIXELS, unroll=conv_unroll(k4), int16=wide,
                   weight=conv_weight16(weight) if wide else conv_weight(weight),
                   rounding=rounding, doubled=doubled,
                   column_offset_pair=offset_pair(2 * p["input_offset"] if doubled else p["input_offset"]),
                   scratch=int(scratch_offset), scratch_bytes=scratch_bytes(kind, p))
        ctx["plane_path"] = conv_uses_plane(p)
        ctx["block_copies"] = conv_block_copies(p)
        if ctx["plane_path"]:
            band, rows, cols, copy = conv_plane(p)
            ctx.update(band=band, rows=rows, cols=cols, copy_width=copy,
                       plane=int(scratch_offset) + CONV_PIXELS * k4 * 2,
                       scratch_label=f"im2col columns, then the int16 plane [{rows}][{cols}]")
    elif kind == "fully_connected":
        units, n = weight.shape
        wide = dsp_weights == "int16"
        ctx.update(groups=units // 4, out_tail=units % 4, in_features=padded(n), in_blocks=padded(n) // 4,
                   unroll=dense_unroll(padded(n) // 4), extended=dense_extends_input(p),
                   # the extended input holds 2 (x - Z) where the output zero point folds into
                   # the rounding: requantize_doubled_to_int8, as the conv kernel's columns
                   rounding=folded_rounding(kind, p, weight, bias) if dense_extends_input(p) else None,
                   doubled_offset_pair=offset_pair(2 * p["input_offset"]),
                   scratch=int(scratch_offset or 0), scratch_bytes=scratch_bytes(kind, p),
                   # model.c.j2's banner prints the scratch as int16[pixels][K4]
                   pixels=padded(n) // 4, K4=4, scratch_label="the input extended, (x0, x2) and (x1, x3) - Z",
                   int16=wide, weight=dense_weight16(weight) if wide else dense_weight(weight))
    elif kind == "depthwise_conv_2d":
        ctx.update(depthwise_context(p, weight, bias, scratch_offset))
    return ctx


# ---- depthwise_conv_2d ----
# templates/dsp/depthwise_conv_2d.c.j2 runs one input channel at a time through a "plane":
# the channel's input values as int16 in a 2-D array with the padding written out (each
# padding cell holds the input zero point Z), so that neighbours along a plane row form the
# int16 pairs __smlad multiplies with pairs of weights of one filter row. The input offset
# is folded into the bias (depthwise_bias), which makes the padding's w * Z cancel exactly.
# The plane's rows run along the image's longer output axis ("along"; the other "across"),
# so that each row gives many outputs: on a 25x5 image the rows are its 25-long columns.
# The weights stay TFLite's int8 (kh, kw, channel) array in flash: the kernel packs one
# channel's pairs when it starts the channel, a few instructions for all its outputs.
DEPTHWISE_PLANE_BYTES = 2048     # the plane holds a band of output rows' input rows within this


def depthwise_axes(p):
    """The plane's geometry: which image axis its rows run along (y when there are more
    output rows than columns, else x), and per plane axis (across, along) the input size,
    padding before, stride, kernel size and output size; the input's and output's steps in
    bytes between neighbours on each axis (NHWC)."""
    h = dict(size=p["in_h"], pad=p["pad_h"], stride=p["stride_h"], kernel=p["kernel_h"], out=p["out_h"],
             in_step=p["in_w"] * p["in_c"], out_step=p["out_w"] * p["out_c"])
    w = dict(size=p["in_w"], pad=p["pad_w"], stride=p["stride_w"], kernel=p["kernel_w"], out=p["out_w"],
             in_step=p["in_c"], out_step=p["out_c"])
    along_y = p["out_h"] > p["out_w"]
    return ("y", w, h) if along_y else ("x", h, w)


def depthwise_fast(p):
    """The 3x3 kernel with stride 1 along the plane's rows: six weight words in registers,
    two outputs per pass."""
    _, _, along = depthwise_axes(p)
    return p["kernel_h"] == 3 and p["kernel_w"] == 3 and along["stride"] == 1


def depthwise_fast_stride2(p):
    """The 3x3 kernel with stride 2 along the plane's rows: every window starts at an even
    plane column, so each output reads two whole words of a filter row, (x0, x1) for one
    SMLAD and x2 for one SMLABB; neighbouring outputs share the word between them. Its
    weights in registers as the stride-1 path's."""
    _, _, along = depthwise_axes(p)
    return p["kernel_h"] == 3 and p["kernel_w"] == 3 and along["stride"] == 2


def depthwise_pairs(p):
    """Weight pairs per filter row: a window starting at an odd plane column reads from the
    column before, so kernel + 1 columns, rounded up to whole words."""
    _, _, along = depthwise_axes(p)
    return along["kernel"] // 2 + 1


def depthwise_plane(p):
    """(band, rows, cols, copy) of the plane: output rows (across) per band, plane rows for a
    whole band, plane columns (even: every row 4-byte aligned), input values per row that a
    window can reach."""
    _, across, along = depthwise_axes(p)
    last = (along["out"] - 1) * along["stride"]             # plane column of the last window
    cols = 2 * (last // 2 + depthwise_pairs(p))             # its words end here
    copy = max(0, min(along["size"], cols - along["pad"]))
    band = across["out"]                                    # as many output rows as fit
    while band > 1 and ((band - 1) * across["stride"] + across["kernel"]) * cols * 2 > DEPTHWISE_PLANE_BYTES:
        band -= 1
    return band, (band - 1) * across["stride"] + across["kernel"], cols, copy


def depthwise_scratch_bytes(p):
    """The plane, and for the general kernel each channel's weight pairs (even and odd)."""
    _, rows, cols, _ = depthwise_plane(p)
    _, across, _ = depthwise_axes(p)
    table = 0 if depthwise_fast(p) or depthwise_fast_stride2(p) else 2 * across["kernel"] * depthwise_pairs(p) * 4
    return rows * cols * 2 + table


def depthwise_weight_bytes(p):
    """The int8 weights as TFLite has them, and the folded bias, int32 per output channel
    (in place of the bias, or added when the layer has none)."""
    return p["kernel_h"] * p["kernel_w"] * p["out_c"] + (0 if p["has_bias"] else 4 * p["out_c"])


def depthwise_bias(p, weight, bias):
    """bias - Z * (sum of each output channel's weights), Z = -input_offset, the input zero
    point: sum_k w_k (x_k - Z) + bias = sum_k w_k x_k + (bias - Z sum_k w_k). Fits an int32:
    |Z| <= 128 and Prepare's bound (kernels/common.py check_accumulator) is larger."""
    w = np.asarray(weight, dtype=np.int64)
    w = w.reshape(-1, w.shape[-1])                          # (kh * kw, out_c)
    b = np.asarray(bias, dtype=np.int64) if bias is not None else np.zeros(w.shape[1], np.int64)
    folded = b + int(p["input_offset"]) * w.sum(axis=0)
    if np.abs(folded).max(initial=0) >= 1 << 31:            # cannot happen after Prepare
        raise ValueError(f"depthwise_conv_2d: the folded bias {int(np.abs(folded).max())} does not fit an int32")
    return folded


def depthwise_helpers(p, folded=False):
    registers = ["read_2_words_at", "in_register_words"] + (["in_registers"] if folded else [])
    if depthwise_fast(p):
        return ["pack_s16x2", "smlatb", "smlabt"] + registers
    if depthwise_fast_stride2(p):
        return ["pack_s16x2"] + registers
    return ["pack_s16x2"]


def depthwise_context(p, weight, bias, scratch_offset):
    band, rows, cols, copy = depthwise_plane(p)
    name, across, along = depthwise_axes(p)
    rounding = folded_rounding("depthwise_conv_2d", p, weight, bias)
    # with requantize_doubled_to_int8 the kernel sums 2 acc: weights (|2 w| <= 256, an int16)
    # and folded bias doubled; 2 acc fits an int32 as |acc| < 2^30 (fast_requantize), and the
    # folded bias is acc for the input x = 0, so it is bounded the same way.
    scale = 1 if rounding is None else 2
    return {"fast": depthwise_fast(p) or depthwise_fast_stride2(p), "stride2": depthwise_fast_stride2(p),
            "pairs": depthwise_pairs(p), "band": band, "rows": rows,
            "cols": cols, "copy_width": copy, "plane_bytes": rows * cols * 2, "along": name,
            "across_axis": across, "along_axis": along, "scale": scale,
            "bias": depthwise_bias(p, weight, bias) * scale, "rounding": rounding,
            "scratch": int(scratch_offset), "scratch_bytes": depthwise_scratch_bytes(p),
            # model.c.j2's banner prints the scratch as int16[pixels][K4]: the plane's shape
            "pixels": rows, "K4": cols, "scratch_label": "one channel's padded plane"}


# ---- pooling ----
# templates/dsp/max_pool_2d.c.j2 takes four channels at a time: NHWC keeps a pixel's
# channels side by side, so one 32-bit word holds four int8 channels of one tap, and SSUB8
# then SEL give their four maxima in two instructions (max_s8x4 in dsp/helpers.c.j2; CMSIS-NN's
# arm_max_pool_s8 does the same). The running maximum starts at the fused activation's
# lower bound in each byte (max(act_min, taps) is the clamp from below, for free); an upper
# bound below 127 costs one min_s8x4 per word. The last channels mod 4 go one byte at a time,
# as in the scalar kernel. Where no window is clipped by the image's edge, every channel is
# in a word and the lower bound is -128 ("whole_windows", the usual 2x2 pool of a CNN), the
# taps are written out and the first one starts the maximum. No weights, no scratch, no
# requantization.
POOL_KINDS = ("max_pool_2d",)


def byte_word(value):
    """An int8 value in each of the four bytes of a word, as a signed int32 (the C literal)."""
    byte = int(value) & 0xFF
    word = byte * 0x01010101
    return word - (1 << 32) if word >= 1 << 31 else word


def pool_helpers(p):
    """The word helpers of the four-channel loop; none when there is no whole group of four
    channels (the kernel then has only the channel-at-a-time tail)."""
    if p["channels"] < 4:
        return []
    return ["read_s8x4", "write_s8x4", "max_s8x4"] + (["min_s8x4"] if p["act_max"] < 127 else [])


def pool_context(p):
    """The kernel starts each window at its first tap inside the image, so it needs every
    window to have one. TensorFlow's padding guarantees it (pad_before < kernel and the last
    window starts inside the image; DESIGN.md), and Prepare computes it so: checked here."""
    for axis, size, out, stride, pad, kernel in (("y", p["in_h"], p["out_h"], p["stride_h"], p["pad_h"], p["pool_h"]),
                                                 ("x", p["in_w"], p["out_w"], p["stride_w"], p["pad_w"], p["pool_w"])):
        if not (pad < kernel and (out - 1) * stride - pad < size):    # the first and last windows
            raise ValueError(f"max_pool_2d: a window along {axis} lies wholly in the padding "
                             f"(size {size}, window {kernel}, stride {stride}, padding {pad}, {out} outputs)")
    # no window is clipped (valid padding, or none needed), and it has at most 9 taps
    whole = (p["pad_h"] == 0 and p["pad_w"] == 0 and p["pool_h"] * p["pool_w"] <= 9
             and (p["out_h"] - 1) * p["stride_h"] + p["pool_h"] <= p["in_h"]
             and (p["out_w"] - 1) * p["stride_w"] + p["pool_w"] <= p["in_w"])
    groups, tail = p["channels"] // 4, p["channels"] % 4
    return {"fast_requantize": False,          # nothing to requantize: pools keep the scale
            "groups": groups, "tail": tail, "whole_windows": whole,
            # the taps written out, the first starting the maximum: whole windows, every
            # channel in a word, and no lower bound above -128 to start from
            "taps_written_out": whole and groups > 0 and tail == 0 and p["act_min"] == -128,
            "act_min_word": byte_word(p["act_min"]), "act_max_word": byte_word(p["act_max"])}


# ---- mean ----
# templates/dsp/mean.c.j2: the global average pool (the mean over H and W of an (H, W, C)
# input; other means go to the reference kernel, generator.reference_only) four channels at a time. NHWC keeps a
# pixel's channels side by side, so one 32-bit load holds channels c..c+3 of one pixel, and
# two SXTAB16 add them into 16-bit lanes: (c, c+2) and (c+1, c+3). A 16-bit lane holds the
# exact sum of up to MEAN_BLOCK = 256 int8 values: 256 * -128 = -32768 and 256 * 127 = 32512
# are both int16 (the lanes add modulo 2^16, so a sum in the int16 range reads back exactly).
# Every MEAN_BLOCK pixels the lanes are added into four int32 sums, which start at -Z_in *
# count, the zero point's share of the scalar kernel's `sum - Z_in * count`. Then the same
# requantization as the scalar kernel, per channel. The last channels mod 4 one at a time.
MEAN_BLOCK = 256       # pixels summed in 16-bit lanes before they are widened to int32
MEAN_UNROLL = 8        # pixels per pass of the kernel's inner loop
# 8 pixels per pass: one loop counter and branch per 8 LDR and 16 SXTAB16.


def mean_fast_requantize(p):
    """True when requantize_fast (templates/dsp/helpers.c.j2) gives MultiplyByQuantizedMultiplier's
    bits for every sum: double rounding, a right shift of 1..31, 0 < multiplier < 2^31, and
    |sum - Z_in count| <= 255 count < 2^30. Its proof (beside requantize_fast) asks for a
    multiplier of at least 2^30, but uses only 0 < m < 2^31: that 2 acc is an int32 and
    that SaturatingRoundingDoublingHighMul cannot saturate (m != INT32_MIN). Dividing by
    count often takes the mean's multiplier below 2^30 (kernels/reduce.py prepare: (m 2^s) //
    count, down to m / 2 with 2^s <= count, far lower when the shift stops s at 31 + shift);
    tests/test_dsp_pool_mean.py checks such multipliers against fixedpoint.py."""
    return bool(not p.get("single_rounding", False) and -31 <= p["output_shift"] <= -1
                and 0 < p["output_multiplier"] < 1 << 31 and 255 * p["count"] < FAST_ACC_LIMIT)


def mean_helpers(p):
    words = ["read_s8x4", "sxtab16_ror8", "s16_lanes"] if p["channels"] >= 4 else []
    return words + (["requantize_fast_to_int8"] if mean_fast_requantize(p) else ["requantize_to_int8"])


def mean_context(p):
    count = p["count"]
    return {"fast_requantize": mean_fast_requantize(p),
            "groups": p["channels"] // 4, "tail": p["channels"] % 4,
            "block": min(count, MEAN_BLOCK), "blocks": -(-count // MEAN_BLOCK), "unroll": MEAN_UNROLL,
            "sum_start": -p["input_zero_point"] * count}
