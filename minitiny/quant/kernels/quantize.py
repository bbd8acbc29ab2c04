"""QUANTIZE from int8 to int8 inside a graph: a requantization to another scale and zero point.

    q_out = clamp(z_out + MultiplyByQuantizedMultiplier(q_in - z_in, M, shift), -128, 127)
with M * 2^(shift - 31) = s_in / s_out computed in double (QuantizeMultiplier).
TFLM: micro/kernels/quantize_common.cc (PrepareQuantizeReference, EvalQuantizeReference),
reference requantize.h Requantize. (Its fast path for a shift of 128 applies to int8 <->
uint8 only.) QUANTIZE from float32 or uint8 at a model's edges is folded by the importer.
16x8: int16 -> int16 the same way, clamped to int16 (Requantize<int16_t, int16_t>), and
between the schemes, int8 -> int16 and int16 -> int8 (a 16x8 part of a model), clamped to
the output's type; `params["dtype"]` is the output's.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import LIMITS, check_multiplier, input_and_output, scale, size

KINDS = ("quantize",)
INT16_KINDS = KINDS
INPUTS = (1, 1)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    real = np.float64(scale(x)) / np.float64(scale(out))
    check_multiplier(op, real, "s_in / s_out")
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    return dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                output_multiplier=mult, output_shift=shift, size=size(x), macs=0)


def run(op, p, x):
    acc = fp.multiply_by_quantized_multiplier(x.astype(np.int64) - p["input_zero_point"],
                                              p["output_multiplier"], p["output_shift"],
                                              p["single_rounding"])
    return np.clip(acc + p["output_zero_point"], *LIMITS[p["dtype"]]).astype(p["dtype"])
