"""The DSP-SIMD kernel variant: weight layouts and scratch memory, decided at generation time.

The kernels in templates/*_dsp.c.j2 run on cores with the Arm DSP extension (Cortex-M4,
M7, M33, M55). Their inner step loads one 32-bit word of four int8 weights and extends it
into two words of two int16 lanes each, which `__smlad` multiplies with two int16 pairs of
inputs and adds: four multiply-accumulates in a handful of instructions. How the weights
sit in flash decides how few instructions that takes, so this file reorders them once, in
Python, into the order the kernel reads (CMSIS-NN does the same: "reordered" weights).

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
  in blocks of four (scratch: 4 columns of int16 in the arena while the layer runs). The
  k loop runs two blocks per iteration (33 instructions per 32 MACs on a Cortex-M4).
* fully_connected: the input word is extended the same way as the weight word, (x0, x2)
  and (x1, x3), so no permutation is needed; instead four units are interleaved
  (`dense_weight`) so that two LDRDs from one pointer read their four words, and each
  input word is extended once for all four. Rows padded to a multiple of 4 with zeros;
  the input's last word may read up to 3 bytes past the input tensor, which stay inside
  the arena (every buffer starts and ends 4-aligned) and meet those zero weights.
* depthwise_conv_2d: TFLite's (kh, kw, channel) layout already puts four channels of one
  tap in one word; it stays.

Requantization. Each kernel ends every output with requantize_fast_to_int8 (dsp.c.j2):
TFLM's double rounding in ~6 instructions (SMMULR of 2 acc, then one rounding shift), exact
when fast_requantize below proves it for the layer (|acc| < 2^30 for every input, shifts
right by 1..31; the proof is beside requantize_fast in dsp.c.j2). Otherwise the layer keeps
requantize_to_int8, the scalar kernels' MultiplyByQuantizedMultiplier. The input offset is
not folded into the bias here: the DSP kernels add it while extending int8 to int16
(SXTAB16 costs what SXTB16 does), so folding would save nothing; the scalar kernels fold it
(generator.folded_bias).

The padding is the only change in flash: out_c * (K4 - K) bytes for conv_2d and
units * (in4 - in) for fully_connected (0 when the sizes are multiples of 4).
"""
import numpy as np

# op kind -> template of its DSP-SIMD kernel (generator.KERNEL_VARIANTS uses this)
TEMPLATES = {
    "fully_connected": "fully_connected_dsp.c.j2",
    "conv_2d": "conv_2d_dsp.c.j2",
    "depthwise_conv_2d": "depthwise_conv_2d_dsp.c.j2",
}

# Flash bytes of code of each DSP kernel with the dsp.c.j2 helpers it calls, Thumb-2,
# arm-none-eabi-gcc -Os -mcpu=cortex-m4 -fno-inline (measured with `python -m
# minitiny.codegen.sizes DIR` on single-layer models, as generator.CODE_BYTES). The
# depthwise kernel with depth multiplier 1 writes its 3x3 window out: ~820 bytes, else ~520.
CODE_BYTES = {"fully_connected": 350, "conv_2d": 570, "depthwise_conv_2d": 770}


# The helpers of templates/dsp.c.j2 each kernel calls, and what they call in turn; only
# what a model uses is emitted (clang warns about unused static inline functions).
HELPER_DEPENDS = {
    "requantize_fast_to_int8": ["requantize_fast"],
    "smlad_s8x4": ["sxtb16_ror8"],
    "depthwise_tap4": ["sxtab16_ror8", "sxtb16_ror8"],
    "im2col_zero_blocks": ["write_s16x2"],
    "im2col_copy_blocks": ["read_s8x4", "sxtab16_ror8", "write_s16x2", "pack_lo_lo", "pack_hi_hi"],
}


def helpers(kind, p, fast):
    """The dsp.c.j2 helpers the DSP kernel of one layer calls (without their dependencies);
    fast: the layer's requantization is requantize_fast's (fast_requantize)."""
    epilogue = ["requantize_fast_to_int8"] if fast else ["requantize_to_int8"]
    if kind == "fully_connected":
        return ["read_s8x4", "sxtab16_ror8", "smlad_s8x4"] + (["read_2_words"] if p["out_features"] >= 4 else []) + epilogue
    if kind == "conv_2d":
        im2col = ["im2col_zero_blocks", "im2col_copy_blocks"] if p["in_c"] % 4 == 0 else \
                 ["im2col_zeros", "im2col_copy"]
        return ["read_s8x4", "read_2_words", "sxtb16_ror8"] + im2col + epilogue
    return ["read_s8x4"] + (["depthwise_tap4"] if p["out_c"] >= 4 else []) + epilogue


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


def conv_weight(weight):
    """(out_c, kh, kw, in_c) int8 -> (out_c, K4) with K4 = K = kh * kw * in_c rounded up to a
    multiple of 4 (zeros appended: they meet the zeros im2col appends to each column), each
    row in sxtb16_order."""
    rows = np.asarray(weight).reshape(weight.shape[0], -1)    # (out_c, K)
    k = padded(rows.shape[1])
    rows = np.concatenate([rows, np.zeros((rows.shape[0], k - rows.shape[1]), rows.dtype)], axis=1)
    return rows[:, sxtb16_order(k)]


def dense_weight(weight):
    """(units, in_features) int8 -> the lines of fully_connected_dsp.c.j2's array.

    Each row padded with zeros to a multiple of 4 (the kernel reads the input four at a
    time; the last word's extra bytes meet zero weights). Units in groups of four, one
    line per group: for each block of four inputs, the four units' four weights (16 bytes,
    read with two LDRDs). After the groups, the last units mod 4 as whole rows, one line each."""
    w = np.asarray(weight)
    units, n = w.shape
    w = np.concatenate([w, np.zeros((units, padded(n) - n), w.dtype)], axis=1)
    groups = units // 4
    lines = [w[4 * g:4 * g + 4].reshape(4, -1, 4).transpose(1, 0, 2).reshape(-1) for g in range(groups)]
    return lines + [row for row in w[4 * groups:]]


def offset_pair(offset):
    """An int16 offset in both lanes of an int32: (offset, offset), as a signed int32."""
    lane = int(offset) & 0xFFFF
    word = lane | (lane << 16)
    return word - (1 << 32) if word >= 1 << 31 else word


CONV_PIXELS = 4      # output pixels conv_2d_dsp.c.j2 computes per pass (im2col columns)


def scratch_bytes(kind, p):
    """Bytes of arena the DSP kernel of `kind` needs while it runs (0: none)."""
    if kind == "conv_2d":   # CONV_PIXELS im2col columns of K rounded up to 4, int16
        return CONV_PIXELS * padded(p["kernel_h"] * p["kernel_w"] * p["in_c"]) * 2
    return 0


def weight_bytes(kind, p):
    """Flash bytes of the DSP kernel's weight array (rows padded to a multiple of 4), or
    None when it keeps the scalar kernel's."""
    if kind == "conv_2d":
        return p["out_c"] * padded(p["kernel_h"] * p["kernel_w"] * p["in_c"])
    if kind == "fully_connected":
        return p["out_features"] * padded(p["in_features"])
    return None


# requantize_fast (templates/dsp.c.j2) needs |acc| < 2^30: it doubles acc in an int32.
FAST_ACC_LIMIT = 1 << 30


def accumulator_bound(kind, weight, bias):
    """The largest |acc| any input can give, per output channel: sum |w| * 255 + |bias|
    (|x - Z| <= 255 for int8 x and Z). The same argument as Prepare's overflow check
    (minitiny/quant/kernels.py _check_accumulator), summed over the actual weights."""
    w = np.abs(np.asarray(weight, dtype=np.int64))
    if kind == "depthwise_conv_2d":            # (1, kh, kw, out_c): a channel per last index
        per_channel = w.reshape(-1, w.shape[-1]).sum(axis=0)
    else:                                      # (out_c, ...): a channel per first index
        per_channel = w.reshape(w.shape[0], -1).sum(axis=1)
    b = np.abs(np.asarray(bias, dtype=np.int64)) if bias is not None else 0
    return per_channel * 255 + b


def fast_requantize(kind, p, weight, bias):
    """True when requantize_fast (templates/dsp.c.j2) gives MultiplyByQuantizedMultiplier's
    bits for every accumulator this layer can produce: TFLM's double rounding (not the
    single-rounding build), every channel shifts right by 1..31 (a multiplier below 1/2; a
    larger one, or 0, keeps the general requantize_to_int8), and |acc| < 2^30 for every
    input (accumulator_bound). The proof is beside requantize_fast."""
    shifts = np.asarray(p["output_shift"]).ravel()
    multipliers = np.asarray(p["output_multiplier"]).ravel()
    return bool(not p.get("single_rounding", False)
                and np.all((shifts <= -1) & (shifts >= -31)) and np.all(multipliers >= 1 << 30)
                and accumulator_bound(kind, weight, bias).max(initial=0) < FAST_ACC_LIMIT)


def layer_context(kind, p, weight, bias=None, scratch_offset=None):
    """What the DSP template of one layer reads as `layer.dsp`."""
    ctx = {"offset_pair": offset_pair(p["input_offset"]),
           "fast_requantize": fast_requantize(kind, p, weight, bias)}
    if kind == "conv_2d":
        k = p["kernel_h"] * p["kernel_w"] * p["in_c"]
        ctx.update(K=k, K4=padded(k), pixels=CONV_PIXELS, weight=conv_weight(weight),
                   scratch=int(scratch_offset), scratch_bytes=scratch_bytes(kind, p))
    elif kind == "fully_connected":
        units, n = weight.shape
        ctx.update(groups=units // 4, out_tail=units % 4, in_features=padded(n), in_blocks=padded(n) // 4,
                   weight=dense_weight(weight))
    elif kind == "depthwise_conv_2d":
        ctx.update(groups=p["out_c"] // 4, out_tail=p["out_c"] % 4)
    return ctx
