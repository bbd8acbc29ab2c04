"""SOFTMAX over the last axis, int8 in, int8 out with the fixed output scale 1/256 and zero
point -128 (probabilities in [0, 1)).

TFLM: micro/kernels/softmax_common.cc CalculateSoftmaxParams (Prepare), reference/softmax.h
Softmax (Eval), with gemmlowp's exp_on_negative_values and TFLM's GetReciprocal.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, check_output_quantization, fail, input_and_output, scale, size

KINDS = ("softmax",)
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
    check_output_quantization(op, out, 1 / 256, -128)
    beta = float(op.options.get("beta", 1.0))
    if not np.isfinite(beta) or beta <= 0:
        fail(op, f"beta must be finite and > 0, got {beta}")
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
