"""HARD_SWISH: x * relu6(x + 3) / 6 (MobileNetV3's activation), in TFLM's int16 fixed point.

The input, offset and shifted left 7 bits, is a 16-bit value on a "hires" scale s_in / 128.
Two int16 multipliers take it (a) to the output scale (before a final right shift) and
(b) to the "reluish" scale, where real 3.0 is 32768: saturated to [-1, 1), mapped to
[0, 1), that is relu6(x + 3) / 6. Their product, rounded towards zero, is the output.
TFLM: micro/kernels/hard_swish_common.cc HardSwishPrepare (scales in float32, multipliers
cut to 16 bits by DownScaleInt32ToInt16Multiplier), reference/hard_swish.h HardSwish (Eval).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, check_multiplier, fail, input_and_output, scale, size

KINDS = ("hard_swish",)
INPUTS = (1, 1)
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def int16_multiplier(real, op, formula):
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier: the Q31 significand
    rounded to Q15 (saturating at 2^15 - 1)."""
    check_multiplier(op, real, formula)
    m32, exponent = fp.quantize_multiplier(real)
    m16 = INT16_MAX if m32 >= fp.INT32_MAX - (1 << 15) else (m32 + (1 << 15)) >> 16
    return m16, exponent


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    hires_input_scale = np.float32(1.0 / 128.0) * scale(x)                  # float32, as in C
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m, out_exp = int16_multiplier(np.float64(hires_input_scale / scale(out)), op,
                                      "(s_in / 128) / s_out")
    if out_exp > 0:
        fail(op, f"output scale {float(scale(out))} is too small for input scale {float(scale(x))}: "
                 f"TFLM needs (s_in / 128) / s_out < 1")
    relu_m, relu_exp = int16_multiplier(np.float64(hires_input_scale / reluish_scale), op,
                                        "(s_in / 128) / (3 / 32768)")
    if relu_exp > 31:           # SaturatingLeftShift's 1 << (exponent - 1) would leave int
        fail(op, f"input scale {float(scale(x))} is too large: TFLM shifts left by {relu_exp - 1} "
                 f"bits in an int (undefined behaviour from 31 on)")
    return dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                output_multiplier_fixedpoint_int16=out_m, output_multiplier_exponent=out_exp,
                reluish_multiplier_fixedpoint_int16=relu_m, reluish_multiplier_exponent=relu_exp,
                size=size(x), macs=0)


def saturating_rounding_doubling_high_mul_16(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul for int16: round(a * b / 2^15), ties up."""
    ab = a * b
    t = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    high = np.where(t >= 0, t >> 15, -((-t) >> 15))                        # C division
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, high)


def saturating_doubling_high_mul_16(a, b):
    """SaturatingDoublingHighMul (hard_swish.h): a * b / 2^15 rounded towards zero (SQDMULH)."""
    ab = a * b
    high = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, high)


def rounding_divide_by_pot_16(x, exponent):
    """gemmlowp's RoundingDivideByPOT as hard_swish.h calls it, on int16 values: the
    formula of fixedpoint.rounding_divide_by_pot with the mask 2^exponent - 1 cut to int16.
    From exponent 16 on that mask is -1 (all 16 bits set), so x >= 0 gives 1 and x < 0
    gives -1, where a wider mask would give 0 (found against TFLM at input scales below
    about 2e-7 and output scales 500 times the input's). 0 <= exponent <= 31."""
    mask = ((1 << exponent) - 1) & 0xFFFF
    mask = mask - (1 << 16) if mask > INT16_MAX else mask                  # as an int16
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def saturating_left_shift_16(x, amount):
    return np.clip(x * (1 << amount), INT16_MIN, INT16_MAX)


def hard_swish_int8(p, x):
    """HardSwish (TFLM reference/hard_swish.h), every intermediate an int16."""
    hires = (x.astype(np.int64) - p["input_zero_point"]) * (1 << 7)
    preshift_output = saturating_rounding_doubling_high_mul_16(hires, p["output_multiplier_fixedpoint_int16"])
    exponent = p["reluish_multiplier_exponent"]
    reluish = hires
    if exponent > 0:
        reluish = saturating_left_shift_16(reluish, exponent - 1)
    reluish = saturating_rounding_doubling_high_mul_16(reluish, p["reluish_multiplier_fixedpoint_int16"])
    if exponent > 0:
        reluish = saturating_left_shift_16(reluish, 1)
    if exponent < 0:
        reluish = rounding_divide_by_pot_16(reluish, -exponent)
    reluish = (reluish + (1 << 15)) >> 1                                   # [-1, 1) -> [0, 1)
    out = saturating_doubling_high_mul_16(reluish, preshift_output)
    out = rounding_divide_by_pot_16(out, -p["output_multiplier_exponent"]) + p["output_zero_point"]
    out = (out - INT16_MIN) % (1 << 16) + INT16_MIN                        # the int16 += wraps
    return np.clip(out, INT8_MIN, INT8_MAX).astype(np.int8)


def run(op, p, x):
    return hard_swish_int8(p, x)
