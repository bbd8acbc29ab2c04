"""SQUARED_DIFFERENCE: (input 1 - input 2)^2, requantized to the output's scale; shapes
broadcast, either input may be a constant.

As SUB, both inputs are brought to the common scale 2 * max(s_1, s_2), here with 7 bits of
headroom (255^2 * 2^14 still fits int32); the square then has that scale squared, and one
multiplier (above or below one) takes it to the output:
    real_out = (2 * max(s_1, s_2))^2 / (2^14 * s_out)
16x8: no headroom (left_shift 0: the rescaled int16 values, at most 2^14 in magnitude,
square to at most 2^30), real_out = (2 * max(s_1, s_2))^2 / s_out, clamped to int16.
TFLM: micro/kernels/squared_difference.cc PrepareQuantized and SquaredDifference.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import (binary_operands, check_multiplier, clamped, elementwise, rescaled_inputs,
                     rescaling_params, scale)

KINDS = ("squared_difference",)
INT16_KINDS = KINDS
INPUTS = (2, 2)


def prepare(op, tensors, single_rounding):
    a, b, out = binary_operands(op, tensors)
    left_shift = 0 if out.dtype == "int16" else 7
    twice_max_input_scale = 2.0 * np.float64(max(scale(a), scale(b)))
    # (1 << 2 * left_shift) * s_out is a float32 product in C (exact: a power of two)
    real_out = twice_max_input_scale ** 2 / np.float64(np.float32(1 << 2 * left_shift) * scale(out))
    check_multiplier(op, real_out, f"(2 * max(s_1, s_2))^2 / (2^{2 * left_shift} * s_out)")
    reals = (np.float64(scale(a)) / twice_max_input_scale, np.float64(scale(b)) / twice_max_input_scale,
             real_out)
    return rescaling_params(op, a, b, out, left_shift, reals, single_rounding, output_below_one=False)


def squared_difference_int8(p, a, b):
    """SquaredDifference (TFLM squared_difference.cc) on int8 arrays a, b."""
    scaled_1, scaled_2 = rescaled_inputs(p, a, b)
    raw_diff = scaled_1 - scaled_2
    return clamped(fp.multiply_by_quantized_multiplier(raw_diff * raw_diff, p["output_multiplier"],
                                                       p["output_shift"], p["single_rounding"]), p)


def run(op, p, a, b):
    return elementwise(p, a, b, squared_difference_int8)
