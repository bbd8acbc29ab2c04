"""SUB: input 1 - input 2, each with its own scale, requantized to the output's; shapes
broadcast, either input may be a constant.

ADD's arithmetic with a minus (see add.py), but Prepare computes the real multipliers in
float32 where ADD's uses double: kept, for the same bits. TFLM: micro/kernels/sub_common.cc
CalculateOpDataSub (Prepare), reference/sub.h SubElementwise, BroadcastQuantSubSlow (Eval).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import binary_operands, clamped, elementwise, rescaled_inputs, rescaling_params, scale

KINDS = ("sub",)
INPUTS = (2, 2)


def prepare(op, tensors, single_rounding):
    a, b, out = binary_operands(op, tensors)
    left_shift = 20
    twice_max_input_scale = np.float32(2) * max(scale(a), scale(b))          # float32, as in C
    reals = (np.float64(scale(a) / twice_max_input_scale), np.float64(scale(b) / twice_max_input_scale),
             np.float64(twice_max_input_scale / (np.float32(1 << left_shift) * scale(out))))
    return rescaling_params(op, a, b, out, left_shift, reals, single_rounding)


def sub_int8(p, a, b):
    """SubElementwise (TFLM reference/sub.h) on int8 arrays a, b."""
    scaled_1, scaled_2 = rescaled_inputs(p, a, b)
    return clamped(fp.multiply_by_quantized_multiplier_smaller_than_one_exp(
        scaled_1 - scaled_2, p["output_multiplier"], p["output_shift"], p["single_rounding"]), p)


def run(op, p, a, b):
    return elementwise(p, a, b, sub_int8)
