"""16x8's fast kernels: what templates/int16/{scalar,dsp}_*.c.j2 need, decided at generation time.

16x8 is TFLite's scheme with int16 activations (zero point 0), int8 weights (zero point 0)
and an int64 bias. TFLM's reference kernels (the "reference" variant, templates/reference/
rendered with int16 types) add every product into an int64 accumulator. The fast variants
compute the same bits with less work per product.

int32 partial sums (`acc32`). A product is w * x with |x| <= 32768, and every partial sum of
one output is a sum over a subset of its channel's taps (the taps inside the image, in any
order), so

    |partial sum| <= 32768 * sum_k |w_k|      (the channel's row of weights)

When that stays below 2^31 for every output channel, the products add in int32 exactly and
the int64 bias joins at the end; otherwise the kernel adds in int64. CMSIS-NN argues the same
with the worst weight (arm_convolve_fast_s16: "the filter's elements must be < 512", as
512 * 2^22 = 2^31); here the layer's own weights decide, so most layers pass with far larger
fan-ins. The scalar kernels use it (an int32 multiply-accumulate is one MLA on any core; an
int64 one needs SMLAL, or four instructions on a Cortex-M0).

The DSP kernels (Cortex-M4/M7/M33/M55), after CMSIS-NN's s16 kernels (arm_convolve_s16,
arm_nn_mat_mult_kernel_s16, arm_fully_connected_s16: int16 pairs read as words, int8 weights
extended with SXTB16):

* fully_connected and conv_2d: SMLALD, two int16 x int16 products added into a 64-bit
  accumulator in one instruction, so no bound is needed. Each weight row is padded with
  zeros to a multiple of 4 and each group of four stored as (w0, w2, w1, w3)
  (dsp.sxtb16_order): SXTB16 of the word gives (w0, w1), of the word rotated by 8 (w2, w3),
  the lanes of the input words (x0, x1) and (x2, x3) as they lie in memory. conv_2d first
  copies each output pixel's window into an im2col column of K4 int16 in the arena (zeros
  where the window lies in the padding, and after K); fully_connected reads its input as it
  is and adds the last in_features mod 4 products one at a time.
* depthwise_conv_2d with depth_multiplier 1 and acc32: channels c and c + 1 of a pixel are
  one int16 word of the input; the weights are stored as int16 pairs per tap, so SMLABB and
  SMLATT add two channels' products per input word. Otherwise the layer keeps the scalar kernel.
"""
import numpy as np

from . import dsp

INT32_LIMIT = 1 << 31
INT16_MAGNITUDE = 32768          # the largest |x| of an int16 input (zero point 0)

# op kind -> template, per kernel form
SCALAR_TEMPLATES = {kind: f"int16/scalar_{kind}.c.j2"
                    for kind in ("fully_connected", "conv_2d", "depthwise_conv_2d")}
DSP_TEMPLATES = {kind: f"int16/dsp_{kind}.c.j2"
                 for kind in ("fully_connected", "conv_2d", "depthwise_conv_2d")}
# Flash bytes of code of each kernel, the manifest's estimate (as generator.CODE_BYTES:
# arm-none-eabi-gcc -Os -mcpu=cortex-m4 on single-layer models, `python -m minitiny.codegen.sizes`)
CODE_BYTES = {"fully_connected": 110, "conv_2d": 450, "depthwise_conv_2d": 330}
DSP_CODE_BYTES = {"fully_connected": 150, "conv_2d": 550, "depthwise_conv_2d": 290}


def rows(kind, weight):
    """(channels, taps) int64: each output channel's weights (kind's TFLite layout)."""
    w = np.asarray(weight, dtype=np.int64)
    if kind == "depthwise_conv_2d":                 # (1, kh, kw, out_c): channels last
        return w.reshape(-1, w.shape[-1]).T
    return w.reshape(w.shape[0], -1)


def acc32(kind, weight):
    """True when every partial sum of every output fits an int32 (the bound above)."""
    return acc_bound(kind, weight) < INT32_LIMIT


def has_dsp(kind, p, weight):
    """Whether the DSP variant computes this layer with a DSP kernel (else the scalar one)."""
    if kind == "depthwise_conv_2d":
        return p["depth_multiplier"] == 1 and p["in_c"] >= 2 and acc32(kind, weight)
    return kind in DSP_TEMPLATES


def scratch_bytes(kind, p):
    """Arena bytes the DSP kernel needs while it runs: conv_2d's im2col column."""
    return 2 * dsp.padded(p["kernel_h"] * p["kernel_w"] * p["in_c"]) if kind == "conv_2d" else 0


def dsp_context(kind, p, weight, scratch_offset):
    """What a DSP template reads as `layer.dsp`."""
    ctx = {"fast_requantize": False, "int16": True}     # requantized by MultiplyByQuantizedMultiplier64
    if kind in ("fully_connected", "conv_2d"):
        r = rows(kind, weight)
        k4 = dsp.padded(r.shape[1])
        padded_rows = np.concatenate([r, np.zeros((r.shape[0], k4 - r.shape[1]), np.int64)], axis=1)
        # conv_2d's columns are padded with zeros too: whole blocks. fully_connected reads
        # its input as it is: whole blocks, then the last in_features mod 4 one at a time
        # (those weights in their own order).
        blocks = k4 // 4 if kind == "conv_2d" else r.shape[1] // 4
        order = np.concatenate([dsp.sxtb16_order(4 * blocks), np.arange(4 * blocks, k4)])
        ctx.update(K=r.shape[1], K4=k4, blocks=blocks, tail=r.shape[1] - 4 * blocks if kind == "fully_connected" else 0,
                   weight=padded_rows[:, order].astype(np.int8))
    if kind == "conv_2d":
        ctx.update(scratch=int(scratch_offset), scratch_bytes=scratch_bytes(kind, p),
                   pixels=1, scratch_label="im2col column")
    if kind == "depthwise_conv_2d":
        r = rows(kind, weight)                                   # (channels, taps)
        pairs = (r.shape[0] + 1) // 2
        wide = np.zeros((r.shape[1], 2 * pairs), np.int16)       # (taps, channels rounded up to even)
        wide[:, :r.shape[0]] = r.T
        ctx.update(pairs=r.shape[0] // 2, odd=r.shape[0] % 2, weight=wide)
    return ctx


def helpers(kind):
    """The dsp/helpers.c.j2 helpers a DSP kernel of 16x8 calls."""
    return ["sxtb16_ror8"] if kind in ("fully_connected", "conv_2d") else []


def weight_bytes(kind, p, weight):
    """Flash bytes of the DSP kernel's weight array."""
    r = rows(kind, weight)
    if kind == "depthwise_conv_2d":
        return 2 * r.shape[1] * (r.shape[0] + r.shape[0] % 2)
    return r.shape[0] * dsp.padded(r.shape[1])


def acc_bound(kind, weight):
    """32768 * the largest sum of a channel's |w|: the bound on every partial sum."""
    return int(np.abs(rows(kind, weight)).sum(axis=1).max(initial=0)) * INT16_MAGNITUDE


def folded_requantization(p, bias, bound):
    """The epilogue of an int32 sum in one multiply-add and one constant shift, or None.

    TFLM's requantization of the int64 sum acc + bias (MultiplyByQuantizedMultiplier for
    int64, minitiny.quant.fixedpoint.multiply_by_quantized_multiplier_int64) is, per channel c,

        floor(((acc + bias_c) * r_c + 2^(t_c - 1)) / 2^t_c)
            r_c = the multiplier cut to 15 bits, t_c = 15 - shift_c

    Multiplying the numerator and the denominator by 2^(N - t_c), N = max_c t_c, changes no
    floor, so the same integer is

        floor((acc * m_c + o_c) / 2^N)     m_c = r_c 2^(N - t_c),  o_c = (bias_c r_c + 2^(t_c - 1)) 2^(N - t_c)

    one SMLAL (int32 acc times int32 m_c plus the int64 o_c) and one shift by a constant,
    where TFLM's form adds the bias, multiplies 64 x 32 bits and shifts by a variable. It
    holds when acc is an int32 (|acc| <= bound < 2^31, acc32), every m_c fits an int32 and
    |acc m_c + o_c| stays below 2^63. Returns {"shift": N, "multiplier": [m_c],
    "offset": [o_c]}."""
    multipliers = [int(m) for m in np.asarray(p["output_multiplier"]).ravel()]
    shifts = [int(s) for s in np.asarray(p["output_shift"]).ravel()]
    biases = [int(b) for b in np.asarray(bias).ravel()] if bias is not None else [0] * len(multipliers)
    if bound >= INT32_LIMIT:
        return None
    reduced = [(m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF for m in multipliers]
    totals = [15 - s for s in shifts]
    n = max(totals)
    m = [r << (n - t) for r, t in zip(reduced, totals)]
    o = [(b * r + (1 << (t - 1))) << (n - t) for b, r, t in zip(biases, reduced, totals)]
    if max(m) >= INT32_LIMIT or max(bound * mc + abs(oc) for mc, oc in zip(m, o)) >= 1 << 63:
        return None
    return {"shift": n, "multiplier": m, "offset": o}
