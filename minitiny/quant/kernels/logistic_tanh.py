"""LOGISTIC (sigmoid) and TANH: x - z_in rescaled into Q4.27, gemmlowp's fixed-point
logistic / tanh, then the output in its fixed quantization (1/256, -128 and 1/128, 0).

TFLM: micro/kernels/logistic_common.cc and tanh_common.cc CalculateArithmeticOpData
(Prepare), reference/integer_ops/logistic.h and tanh.h (Eval). The two differ only in the
fixed-point function and the output's quantization.

16x8 (int16 in, int16 out with scale 1/32768 and zero point 0): TFLM interpolates one table
of sigmoid(i / 24) instead (tanh(x) = 2 sigmoid(2x) - 1), on the input rescaled so that
+-2^17 stands for +-10.7 (`prepare_int16`, `run_int16`).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, check_output_quantization, fail, input_and_output, scale, size

KINDS = ("logistic", "tanh")
INT16_KINDS = KINDS
INPUTS = (1, 1)
INPUT_INTEGER_BITS = 4                # kInputIntegerBits: the rescaled input is Q4.27
MIN_INPUT_SCALE, MAX_INPUT_SCALE = 2.0 ** -28, 2.0 ** 35    # input_left_shift in [0, 62]


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    if x.dtype == "int16":
        return prepare_int16(op, x, out)
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
    if p["dtype"] == "int16":
        return run_int16(op, p, x)
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


# -- 16x8 ----------------------------------------------------------------------------------
INT16_INPUT_INTEGER_BITS = 3
SIGMOID_TABLE = np.array(fp.SIGMOID_TABLE_UINT16, dtype=np.int64)


def prepare_int16(op, x, out):
    """logistic_common.cc / tanh.cc for int16 (CalculateArithmeticOpData): the input is
    multiplied by input_multiplier / 2^input_left_shift onto the table's scale 1/(3 * 4096).
    A power-of-two input scale with no shift left (LOGISTIC: shift 0; TANH: 0 or 1) is kept
    exact as multiplier 0 (Eval then multiplies by 3 << shift)."""
    pot, out_log2 = fp.checked_log2(scale(out))
    if not pot or out_log2 != -15 or int(out.zero_point) != 0:
        fail(op, f"output {out.name!r} must have scale 1/32768 and zero point 0 (TFLM's int16 "
                 f"kernel fixes them), got {float(out.scale)}, {int(out.zero_point)}")
    pot, log2 = fp.checked_log2(scale(x))
    left_shift = (15 - INT16_INPUT_INTEGER_BITS) + log2
    if pot and (left_shift == 0 or (op.kind == "tanh" and left_shift == 1)):
        return dict(input_multiplier=0, input_left_shift=left_shift, size=size(x), macs=0)
    multiplier = np.float64(scale(x)) * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    if multiplier > 32767:      # TFLM's DCHECK; the int32 product q * multiplier would overflow
        fail(op, f"input {x.name!r}: scale {float(scale(x)):.3g} is above 32767 / 12288, where "
                 f"TFLM's int16 {op.kind.upper()} stops (every input beyond 10.7 saturates anyway)")
    return dict(input_multiplier=int(multiplier), input_left_shift=left_shift, size=size(x), macs=0)


def run_int16(op, p, x):
    """reference_integer_ops::Logistic / Tanh for int16 (TFLM integer_ops/logistic.h, tanh.h)."""
    fn = logistic_int16 if op.kind == "logistic" else tanh_int16
    return fn(x, p["input_multiplier"], p["input_left_shift"])


def _scaled_input(x, multiplier, left_shift):
    """x * multiplier / 2^left_shift, rounded: the input in units of 1/(3 * 4096); a
    multiplier of 0 marks a power-of-two scale (then 3 << left_shift, exact)."""
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return (x.astype(np.int64) * multiplier + rounding) >> left_shift


def logistic_int16(x, multiplier, left_shift):
    """int16 in -> sigmoid as int16 Q0.15 (TFLM integer_ops/logistic.h, int16 Logistic);
    the LSTM's gates call it too (kernels/lstm.py)."""
    v = _scaled_input(x, multiplier, left_shift)
    a = np.abs(v)
    # the table's step is 2^9 units; the low 9 bits interpolate; result Q0.16 << 9
    uh = np.minimum(a >> 9, 254)
    ua, ub = SIGMOID_TABLE[uh], SIGMOID_TABLE[uh + 1]
    result = np.where(a >> 9 >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    result = np.where(v >= 0, result + (1 << 9), (1 << (16 + 9)) - result + (1 << 9) - 1)
    return (result >> 10).astype(np.int16)


def tanh_int16(x, multiplier, left_shift):
    """int16 in -> tanh as int16 Q0.15 (TFLM integer_ops/tanh.h, int16 Tanh): tanh(x) =
    2 sigmoid(2x) - 1, the same table at twice the input (steps of 2^8)."""
    v = _scaled_input(x, multiplier, left_shift)
    a = np.abs(v)
    uh = np.minimum(a >> 8, 254)
    ua, ub = SIGMOID_TABLE[uh], SIGMOID_TABLE[uh + 1]
    result = np.where(a >> 8 >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    result = np.where(v >= 0, result - (1 << (14 + 9)) + (1 << (9 - 2)),
                      -result + (1 << (14 + 9)) + (1 << (9 - 2)) - 1)
    return (result >> (9 - 1)).astype(np.int16)
