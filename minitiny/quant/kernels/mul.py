"""MUL: input 1 * input 2, requantized to the output's scale; shapes broadcast, either
input may be a constant (Keras' Rescaling multiplies by one).

    r_out = r_1 * r_2  ->  q_out = z_out + (s_1 * s_2 / s_out) * (q_1 - z_1) * (q_2 - z_2)

The product of the two offset inputs fits int32 (|.| <= 255 * 255); s_1 * s_2 / s_out is one
multiplier and shift (above or below one). TFLM: micro/kernels/mul_common.cc
CalculateOpDataMul (Prepare), reference/integer_ops/mul.h MulElementwise (Eval).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import (activation_range, binary_operands, broadcast_params, check_multiplier,
                     clamped, elementwise, scale)

KINDS = ("mul",)
INT16_KINDS = KINDS                   # 16x8: |q_1 * q_2| <= 2^30 still fits int32
INPUTS = (2, 2)


def prepare(op, tensors, single_rounding):
    a, b, out = binary_operands(op, tensors)
    real = np.float64(scale(a)) * np.float64(scale(b)) / np.float64(scale(out))
    check_multiplier(op, real, "s_1 * s_2 / s_out")
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    act_min, act_max = activation_range(op.options.get("activation", "none"), scale(out),
                                        out.zero_point, out.dtype)
    return dict(broadcast_params(a, b, out),
                input1_offset=-int(a.zero_point), input2_offset=-int(b.zero_point),
                output_offset=int(out.zero_point), output_multiplier=mult, output_shift=shift,
                act_min=act_min, act_max=act_max)


def mul_int8(p, a, b):
    """MulElementwise (TFLM integer_ops/mul.h) on int8 arrays a, b."""
    product = (a.astype(np.int64) + p["input1_offset"]) * (b.astype(np.int64) + p["input2_offset"])
    return clamped(fp.multiply_by_quantized_multiplier(product, p["output_multiplier"], p["output_shift"],
                                                       p["single_rounding"]), p)


def run(op, p, a, b):
    return elementwise(p, a, b, mul_int8)
