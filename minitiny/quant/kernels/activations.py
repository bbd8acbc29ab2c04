"""RELU and RELU6 as operators of their own (a ReLU not fused into the op before it).

TFLM: micro/kernels/activations_common.cc (ReluPrepare / CalculateReluOpData, Relu6Prepare),
reference ReluQuantized (Eval). In the 16x8 scheme the same arithmetic on int16, the clamp
at int16's limits (CalculateReluOpData<int16_t>; Relu6Prepare's six clamped to int16).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import activation_range, check_multiplier, input_and_output, scale, size

KINDS = ("relu", "relu6")
INT16_KINDS = KINDS
INPUTS = (1, 1)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    if op.kind == "relu6":
        # Relu6Prepare: a clamp in the input's quantization, with no requantization. TFLM
        # ignores the output's quantization, and TensorFlow 2.21's converter does write a
        # standalone RELU6 whose output is quantized differently (tests/data/ops/sum_relu6):
        # its integers are then TFLM's, the input's bytes clamped, read in the output's scale.
        # FloatToQuantizedType (TFLM micro_utils.h): z + round(6.0f / scale) in float32, then
        # clamped to int8 (int16): the fused ReLU6's range. Where 6.0f / scale leaves int32 TFLM's cast
        # is undefined (found at extreme scales: it gave -128 where this gave 85): refused.
        lower, upper = activation_range("relu6", scale(x), x.zero_point, x.dtype)
        return dict(lower=lower, upper=upper, size=size(x), macs=0)
    # CalculateReluOpData: requantize s_in / s_out, clamp at real 0.
    real = np.float64(scale(x)) / np.float64(scale(out))
    check_multiplier(op, real, "s_in / s_out")
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    act_min, act_max = activation_range("relu", scale(out), out.zero_point, out.dtype)
    return dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                output_multiplier=mult, output_shift=shift, act_min=act_min, act_max=act_max,
                size=size(x), macs=0)


def run(op, p, x):
    if op.kind == "relu6":
        return np.clip(x, p["lower"], p["upper"]).astype(p["dtype"])
    acc = fp.multiply_by_quantized_multiplier(x.astype(np.int64) - p["input_zero_point"],
                                              p["output_multiplier"], p["output_shift"],
                                              p["single_rounding"])
    return np.clip(acc + p["output_zero_point"], p["act_min"], p["act_max"]).astype(p["dtype"])
