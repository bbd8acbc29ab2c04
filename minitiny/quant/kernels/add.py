"""ADD of two int8 tensors, each with its own scale, requantized to the output's; shapes
broadcast as TFLite broadcasts them, and either input may be a constant.

Both inputs are brought to a common scale, 2 * max(s_1, s_2), with 20 bits of headroom,
summed, then rescaled to the output:
    real_i = s_i / (2 * max(s_1, s_2))        real_out = 2 * max(s_1, s_2) / (2^20 * s_out)
TFLM: micro/kernels/add_common.cc CalculateOpDataAdd (Prepare, in double),
reference/integer_ops/add.h AddFunc (Eval; BroadcastAdd6DSlow applies the same AddFunc).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import binary_operands, clamped, elementwise, rescaled_inputs, rescaling_params, scale

KINDS = ("add",)
INT16_KINDS = KINDS                   # 16x8: 15 bits of headroom instead of 20
INPUTS = (2, 2)


def prepare(op, tensors, single_rounding):
    a, b, out = binary_operands(op, tensors)
    left_shift = 15 if out.dtype == "int16" else 20           # TFLM: 15 for int16 outputs
    twice_max_input_scale = 2 * np.float64(max(scale(a), scale(b)))
    reals = (np.float64(scale(a)) / twice_max_input_scale, np.float64(scale(b)) / twice_max_input_scale,
             twice_max_input_scale / ((1 << left_shift) * np.float64(scale(out))))
    return rescaling_params(op, a, b, out, left_shift, reals, single_rounding)


def add_int8(p, a, b):
    """AddFunc (TFLM integer_ops/add.h) on int8 arrays a, b."""
    scaled_1, scaled_2 = rescaled_inputs(p, a, b)
    return clamped(fp.multiply_by_quantized_multiplier_smaller_than_one_exp(
        scaled_1 + scaled_2, p["output_multiplier"], p["output_shift"], p["single_rounding"]), p)


def run(op, p, a, b):
    return elementwise(p, a, b, add_int8)
