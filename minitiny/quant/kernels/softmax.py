"""SOFTMAX over the last axis, int8 in, int8 out with the fixed output scale 1/256 and zero
point -128 (probabilities in [0, 1)).

TFLM: micro/kernels/softmax_common.cc CalculateSoftmaxParams (Prepare), reference/softmax.h
Softmax (Eval), with gemmlowp's exp_on_negative_values and TFLM's GetReciprocal.

16x8 (int16 in, int16 out with scale 1/32768 and zero point 0): TFLM's SoftmaxInt16 reads
two 513-entry tables instead: exp on [-10, 0] (x - max rescaled so that [-65535, 0] spans
[-10, 0]) and 1 / (1 + x) on [0, 1] for the reciprocal of the sum (`prepare_int16`, `run_int16`).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, check_output_quantization, fail, input_and_output, scale, size

KINDS = ("softmax",)
INT16_KINDS = KINDS
INPUTS = (1, 1)
SCALED_DIFF_INTEGER_BITS = 5          # kScaledDiffIntegerBits: x - max is rescaled into Q5.26
ACCUMULATION_INTEGER_BITS = 12        # kAccumulationIntegerBits: the sum of exps is Q12.19
# The largest depth TFLM runs on every input. Each exp() adds at most 1.0 (2^19 in Q12.19)
# to the sum, so `depth` equal inputs sum to depth. From a sum of 512 on, GetReciprocal's
# num_bits_over_unit reaches 9 and the output's RoundingDivideByPOT shifts by
# num_bits_over_unit + 31 - 8 >= 32 bits: gemmlowp's assert(exponent <= 31) aborts TFLM
# (a shift of an int32 by 32 is undefined in C without the assert). Any depth of 512 or
# more has such inputs (all equal), so TFLM cannot run it on every input.
MAX_DEPTH = 511


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    beta = float(op.options.get("beta", 1.0))
    if not np.isfinite(beta) or beta <= 0:
        fail(op, f"beta must be finite and > 0, got {beta}")
    if x.dtype == "int16":
        return prepare_int16(op, x, out, beta, single_rounding)
    check_output_quantization(op, out, 1 / 256, -128)
    depth = x.shape[-1]
    if depth > MAX_DEPTH:
        fail(op, f"softmax over {depth} values: TFLite Micro's int8 softmax runs at most "
                 f"{MAX_DEPTH} (from 512 equal inputs on, its output shift reaches 32 bits and "
                 f"TFLM aborts); end the model at the logits (their argmax is the softmax's) "
                 f"or use fewer classes")
    # Input differences x - max scaled into Q5.26; differences below diff_min give exp() == 0.
    # QuantizeMultiplierGreaterThanOne needs a real multiplier > 1 (TFLM checks it).
    if float(beta) * float(scale(x)) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) <= 1.0:
        fail(op, f"beta * input scale = {beta * float(scale(x))} is too small")
    mult, left_shift = fp.preprocess_softmax_scaling(beta, scale(x), SCALED_DIFF_INTEGER_BITS,
                                                     single_rounding)
    diff_min = -fp.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    return dict(input_multiplier=mult, input_left_shift=left_shift, diff_min=diff_min,
                depth=depth, outer=size(x) // depth, macs=0)


def run(op, p, x):
    if p["dtype"] == "int16":
        return run_int16(p, x)
    shape = x.shape
    x = x.reshape(-1, p["depth"]).astype(np.int64)                      # (rows, depth)
    diff = x - x.max(axis=1, keepdims=True)                             # <= 0
    used = diff >= p["diff_min"]
    scaled = fp.multiply_by_quantized_multiplier_greater_than_one(
        np.where(used, diff, 0), p["input_multiplier"], p["input_left_shift"],
        p["single_rounding"])                                           # Q5.26
    exp = fp.exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)   # Q0.31
    sum_of_exps = np.where(used, fp.rounding_divide_by_pot(exp, ACCUMULATION_INTEGER_BITS),
                           0).sum(axis=1)                               # Q12.19, < 512
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    prob = fp.saturating_rounding_doubling_high_mul(shifted_scale[:, None], exp)  # Q0.31
    unsat = fp.rounding_divide_by_pot(prob, num_bits_over_unit[:, None] + 31 - 8)
    out = np.where(used, np.clip(unsat - 128, INT8_MIN, INT8_MAX), INT8_MIN)
    return out.astype(np.int8).reshape(shape)


# -- 16x8 ----------------------------------------------------------------------------------
EXP_LUT_RANGE = (-10.0, 0.0)          # exp(-10) is negligible next to the row's exp(0) = 1
INT16_MAX_DEPTH = 65536               # the int32 sum of up to 65536 exps of <= 32767 each


def prepare_int16(op, x, out, beta, single_rounding):
    """softmax_common.cc for int16: the tables, and the multiplier that maps the input
    difference x - max onto [-65535, 0] for [-10, 0]: s_in * beta / (10 / 65535), in double."""
    if abs(float(out.scale) - 1 / 32768) > 0.001 / 32768 or int(out.zero_point) != 0:
        fail(op, f"output {out.name!r} must have scale 1/32768 and zero point 0 (TFLM's int16 "
                 f"kernel fixes them), got {float(out.scale)}, {int(out.zero_point)}")
    depth = x.shape[-1]
    if depth > INT16_MAX_DEPTH:
        fail(op, f"softmax over {depth} values: the int32 sum of exps holds at most {INT16_MAX_DEPTH}")
    real = np.float64(scale(x)) * np.float64(np.float32(beta)) / (10.0 / 65535.0)
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    if shift > 15:
        # input_diff (down to -65535) * 2^shift must fit the int32 left shift of
        # MultiplyByQuantizedMultiplier; far beyond it every exp but the max's is 0 anyway
        fail(op, f"beta * input scale = {beta * float(scale(x)):.3g} is too large for TFLM's int16 "
                 f"softmax (its int32 rescale of x - max would overflow); use a smaller input scale")
    exp_lut = fp.gen_lut(fp.exp_f32, *EXP_LUT_RANGE)
    one_over_one_plus_x_lut = fp.gen_lut(lambda v: np.float32(1.0) / (np.float32(1.0) + v), 0.0, 1.0)
    return dict(input_multiplier=mult, input_left_shift=shift, exp_lut=exp_lut,
                one_over_one_plus_x_lut=one_over_one_plus_x_lut, depth=depth,
                outer=size(x) // depth, macs=0)


def run_int16(p, x):
    """SoftmaxInt16 (TFLM reference/softmax.h), row by row."""
    shape = x.shape
    x = x.reshape(-1, p["depth"]).astype(np.int64)                      # (rows, depth)
    diff = x - x.max(axis=1, keepdims=True)                             # in [-65535, 0]
    scaled_diff = fp.multiply_by_quantized_multiplier(diff, p["input_multiplier"],
                                                      p["input_left_shift"], p["single_rounding"])
    # recentre [-65535, 0] onto the table's [-32768, 32767]
    exps = fp.lut_lookup(np.clip(scaled_diff + 32767, -32768, 32767), p["exp_lut"])   # Q0.15
    sum_of_exps = exps.sum(axis=1)                                      # Q16.15, >= the max's exp
    headroom_plus_one = fp.count_leading_zeros(sum_of_exps)
    # the sum normalised to [1, 2) in Q1.15 (rounded), minus 1 and recentred for the table
    shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym_shifted_sum = np.clip(shifted_sum - ((1 << 15) + (1 << 16)), -32768, 32767)
    reciprocal = fp.lut_lookup(sym_shifted_sum, p["one_over_one_plus_x_lut"])        # Q0.15
    right_shift = (31 - headroom_plus_one)[:, None]
    result = (exps * reciprocal[:, None] + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(result, 0, 32767).astype(np.int16).reshape(shape)
