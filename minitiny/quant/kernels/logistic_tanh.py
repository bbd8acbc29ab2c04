"""LOGISTIC (sigmoid) and TANH: x - z_in rescaled into Q4.27, gemmlowp's fixed-point
logistic / tanh, then the output in its fixed quantization (1/256, -128 and 1/128, 0).

TFLM: micro/kernels/logistic_common.cc and tanh_common.cc CalculateArithmeticOpData
(Prepare), reference/integer_ops/logistic.h and tanh.h (Eval). The two differ only in the
fixed-point function and the output's quantization.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, check_output_quantization, fail, input_and_output, scale, size

KINDS = ("logistic", "tanh")
INPUTS = (1, 1)
INPUT_INTEGER_BITS = 4                # kInputIntegerBits: the rescaled input is Q4.27
MIN_INPUT_SCALE, MAX_INPUT_SCALE = 2.0 ** -28, 2.0 ** 35    # input_left_shift in [0, 62]


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    if op.kind == "logistic":
        check_output_quantization(op, out, 1 / 256, -128)
    else:
        check_output_quantization(op, out, 1 / 128, 0)
    # The input is rescaled by frexp(s * 2^27) = q * 2^input_left_shift, and beyond
    # input_range_radius = floor(15 * 2^27 / 2^input_left_shift) the output saturates.
    # TFLM's CalculateInputRadius computes 2^input_left_shift as (1LL << input_left_shift),
    # undefined in C++ for a negative shift (s < 2^-28) and for shifts of 63 or more
    # (s >= 2^35), where TFLM's outputs are then garbage: refuse both. Neither loses
    # anything: below 2^-28 every output is the one at x = z (|x - z| * s < 2^-20), from
    # 2^35 on every output saturates (x <= z gives the lowest output, x > z the highest).
    s = float(scale(x))
    if not MIN_INPUT_SCALE <= s < MAX_INPUT_SCALE:
        fail(op, f"input {x.name!r}: scale {s:.3g} is {'below 2^-28' if s < 1 else '2^35 or more'}, where "
                 f"TFLM's {op.kind.upper()} shifts by a negative count or by 63 bits or more "
                 f"(undefined in C++); scale the data so that this tensor spans between about "
                 f"1e-6 and 8e12")
    mult, left_shift, radius = fp.input_scale_multiplier(scale(x), INPUT_INTEGER_BITS)
    # For input scales >= 4 the radius is <= 1: only x == z_in is multiplied (by 0), so the
    # large left shift never overflows.
    return dict(input_zero_point=int(x.zero_point), input_range_radius=radius,
                input_multiplier=mult, input_left_shift=left_shift, size=size(x), macs=0)


def run(op, p, x):
    xi = x.astype(np.int64) - p["input_zero_point"]
    radius = p["input_range_radius"]
    inside = np.where(np.abs(xi) < radius, xi, 0)
    q4 = fp.multiply_by_quantized_multiplier(inside, p["input_multiplier"], p["input_left_shift"],
                                             p["single_rounding"])        # Q4.27
    if op.kind == "logistic":
        q0 = fp.logistic(q4, INPUT_INTEGER_BITS)                         # Q0.31 in (0, 1)
        y = np.clip(fp.rounding_divide_by_pot(q0, 31 - 8) - 128, INT8_MIN, INT8_MAX)
    else:
        q0 = fp.tanh(q4, INPUT_INTEGER_BITS)                             # Q0.31 in (-1, 1)
        y = np.clip(fp.rounding_divide_by_pot(q0, 31 - 7), INT8_MIN, INT8_MAX)
    y = np.where(xi <= -radius, INT8_MIN, np.where(xi >= radius, INT8_MAX, y))
    return y.astype(np.int8)
