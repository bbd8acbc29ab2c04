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


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    check_output_quantization(op, out, 1 / 256, -128)
    beta = float(op.options.get("beta", 1.0))
    if not np.isfinite(beta) or beta <= 0:
        fail(op, f"beta must be finite and > 0, got {beta}")
    # Input differences x - max scaled into Q5.26 (kScaledDiffIntegerBits = 5); differences
    # below diff_min give exp() == 0.
    scaled_diff_integer_bits = 5
    if float(beta) * float(scale(x)) * (1 << (31 - scaled_diff_integer_bits)) <= 1.0:
        fail(op, f"beta * input scale = {beta * float(scale(x))} is too small")
    mult, left_shift = fp.preprocess_softmax_scaling(beta, scale(x), scaled_diff_integer_bits,
                                                     single_rounding)
    diff_min = -fp.calculate_input_radius(scaled_diff_integer_bits, left_shift)
    depth = x.shape[-1]
    if depth >= 4096:     # each exp() adds up to 2^19 to TFLM's int32 sum in Q12.19
        fail(op, f"softmax over {depth} values would overflow TFLM's Q12.19 sum (at most 4095)")
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
    exp = fp.exp_on_negative_values(scaled, 5)                          # Q0.31
    sum_of_exps = np.where(used, fp.rounding_divide_by_pot(exp, 12), 0).sum(axis=1)   # Q12.19
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, 12)
    prob = fp.saturating_rounding_doubling_high_mul(shifted_scale[:, None], exp)  # Q0.31
    unsat = fp.rounding_divide_by_pot(prob, num_bits_over_unit[:, None] + 31 - 8)
    out = np.where(used, np.clip(unsat - 128, INT8_MIN, INT8_MAX), INT8_MIN)
    return out.astype(np.int8).reshape(shape)
