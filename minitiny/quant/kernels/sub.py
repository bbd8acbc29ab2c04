"""SUB: input 1 - input 2, each with its own scale, requantized to the output's; shapes
broadcast, either input may be a constant.

ADD's arithmetic with a minus (see add.py), the real multipliers in double as ADD's (some
TFLM sources compute SUB's in float32; the TFLM interpreter minitiny tests against uses
double: drawn scales where the two differ give its bits only this way). TFLM:
micro/kernels/sub_common.cc CalculateOpDataSub (Prepare), reference/sub.h SubElementwise,
BroadcastQuantSubSlow (Eval).
"""
from .. import fixedpoint as fp
from .add import prepare  # noqa: F401  (ADD's Prepare: the same multipliers, in double)
from .common import clamped, elementwise, rescaled_inputs

KINDS = ("sub",)
INT16_KINDS = KINDS                   # 16x8: 15 bits of headroom instead of 20
INPUTS = (2, 2)


def sub_int8(p, a, b):
    """SubElementwise (TFLM reference/sub.h) on int8 arrays a, b."""
    scaled_1, scaled_2 = rescaled_inputs(p, a, b)
    return clamped(fp.multiply_by_quantized_multiplier_smaller_than_one_exp(
        scaled_1 - scaled_2, p["output_multiplier"], p["output_shift"], p["single_rounding"]), p)


def run(op, p, a, b):
    return elementwise(p, a, b, sub_int8)
