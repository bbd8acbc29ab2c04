"""PRELU: x for x >= 0, alpha * x below, with alpha a constant tensor (one per channel, as
Keras' PReLU learns it) that broadcasts over the input.

    q_out = z_out + (s_in / s_out) * (q - z_in)                            where q >= z_in
    q_out = z_out + (s_in * s_alpha / s_out) * (q - z_in) * (a - z_alpha)  below
TFLM: micro/kernels/prelu_common.cc CalculatePreluParams (Prepare), reference/prelu.h
BroadcastPrelu4DSlow (Eval). 16x8: int16 input and output, alpha int8 (PreluPrepare demands
it), clamped to int16; |(q - z_in) * (a - z_alpha)| <= 32768 * 255 stays int32.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import (LIMITS, activation_tensor, broadcast_params, check_multiplier, elementwise,
                     fail, file_shape, operand, scale)

KINDS = ("prelu",)
INT16_KINDS = KINDS
INPUTS = (2, 2)                      # input, alpha


def prepare(op, tensors, single_rounding):
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    alpha = operand(op, tensors, op.inputs[1], "alpha")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    if not alpha.is_constant:
        fail(op, f"alpha {alpha.name!r} must be a constant")
    if alpha.dtype != "int8":
        fail(op, f"alpha {alpha.name!r} must be int8 (in the 16x8 scheme too: TFLM's PreluPrepare), "
                 f"got {alpha.dtype}")
    try:
        shape = np.broadcast_shapes(file_shape(x), file_shape(alpha))
    except ValueError:
        shape = None
    if shape != file_shape(out) or len(shape) > 4:
        fail(op, f"alpha {file_shape(alpha)} must broadcast over the input {file_shape(x)} to the "
                 f"output {file_shape(out)}, in at most 4 dimensions")
    real_1 = np.float64(scale(x)) / np.float64(scale(out))
    real_2 = np.float64(scale(x)) * np.float64(scale(alpha)) / np.float64(scale(out))
    check_multiplier(op, real_1, "s_in / s_out")
    check_multiplier(op, real_2, "s_in * s_alpha / s_out")
    m1, sh1 = fp.quantize_multiplier(real_1, single_rounding)
    m2, sh2 = fp.quantize_multiplier(real_2, single_rounding)
    return dict(broadcast_params(x, alpha, out), input_offset=-int(x.zero_point),
                alpha_offset=-int(alpha.zero_point), output_offset=int(out.zero_point),
                output_multiplier_1=m1, output_shift_1=sh1, output_multiplier_2=m2, output_shift_2=sh2)


def prelu_int8(p, x, a):
    """BroadcastPrelu4DSlow's body (TFLM reference/prelu.h) on int8 (int16) x, int8 alpha."""
    sr = p["single_rounding"]
    value = x.astype(np.int64) + p["input_offset"]
    positive = fp.multiply_by_quantized_multiplier(value, p["output_multiplier_1"], p["output_shift_1"], sr)
    negative = fp.multiply_by_quantized_multiplier(value * (a.astype(np.int64) + p["alpha_offset"]),
                                                   p["output_multiplier_2"], p["output_shift_2"], sr)
    out = np.where(value >= 0, positive, negative) + p["output_offset"]
    return np.clip(out, *LIMITS[p["dtype"]]).astype(p["dtype"])


def run(op, p, x, alpha):
    return elementwise(p, x, alpha, prelu_int8)
