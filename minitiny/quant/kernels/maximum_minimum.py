"""MAXIMUM and MINIMUM: the larger (smaller) of two int8 tensors, element by element; shapes
broadcast, either input may be a constant.

TFLM compares the stored integers without requantizing (micro/kernels/maximum_minimum.cc,
reference/maximum_minimum.h), which means max(r_1, r_2) only when both inputs and the output
share one scale and zero point, as TFLite's converter makes them: Prepare demands it.
"""
import numpy as np

from .common import binary_operands, broadcast_params, elementwise, same_quantization

KINDS = ("maximum", "minimum")
INT16_KINDS = KINDS                   # 16x8: the same comparisons of int16 values
INPUTS = (2, 2)


def prepare(op, tensors, single_rounding):
    a, b, out = binary_operands(op, tensors)
    same_quantization(op, a, out)
    same_quantization(op, b, out)
    return broadcast_params(a, b, out)


def run(op, p, a, b):
    fn = np.maximum if op.kind == "maximum" else np.minimum
    return elementwise(p, a, b, lambda _, x, y: fn(x, y))
