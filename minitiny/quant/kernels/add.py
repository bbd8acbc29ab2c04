"""ADD of two int8 tensors of one shape, each with its own scale, requantized to the output's.

TFLM: micro/kernels/add_common.cc CalculateOpDataAdd (Prepare), reference/integer_ops/add.h
AddFunc (Eval).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import activation_range, activation_tensor, fail, scale, size

KINDS = ("add",)
INPUTS = (2, 2)


def prepare(op, tensors, single_rounding):
    a = activation_tensor(op, tensors, op.inputs[0], "input 1")
    b = activation_tensor(op, tensors, op.inputs[1], "input 2")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    if not a.shape == b.shape == out.shape:
        fail(op, f"inputs and output must have the same shape (no broadcasting), got "
                 f"{a.shape} + {b.shape} -> {out.shape}")
    # Both inputs are brought to a common scale, 2 * max(s_a, s_b), with 20 bits of
    # headroom, summed, then rescaled to the output.
    left_shift = 20
    s_a, s_b, s_out = np.float64(scale(a)), np.float64(scale(b)), np.float64(scale(out))
    twice_max_input_scale = 2 * np.float64(max(scale(a), scale(b)))
    real_1 = s_a / twice_max_input_scale
    real_2 = s_b / twice_max_input_scale
    real_out = twice_max_input_scale / ((1 << left_shift) * s_out)
    if not 0.0 < real_out < 1.0:
        fail(op, f"output scale {float(s_out)} is too small for the input scales "
                 f"{float(s_a)}, {float(s_b)} (TFLM needs 2 * max / (2^20 * s_out) < 1)")
    m1, sh1 = fp.quantize_multiplier_smaller_than_one_exp(real_1)
    m2, sh2 = fp.quantize_multiplier_smaller_than_one_exp(real_2)
    mo, sho = fp.quantize_multiplier_smaller_than_one_exp(real_out)
    act_min, act_max = activation_range(op.options.get("activation", "none"), s_out, out.zero_point)
    return dict(input1_offset=-int(a.zero_point), input2_offset=-int(b.zero_point),
                output_offset=int(out.zero_point), left_shift=left_shift,
                input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
                output_multiplier=mo, output_shift=sho, act_min=act_min, act_max=act_max,
                size=size(out), macs=0)


def add_int8(p, a, b):
    """AddFunc (TFLM integer_ops/add.h) on int8 arrays a, b."""
    sr = p["single_rounding"]

    def rescale(q, offset, multiplier, shift):     # (q - z) * 2^20 * s_q / (2 * max(s_a, s_b))
        shifted = (q.astype(np.int64) + offset) * (1 << p["left_shift"])
        return fp.multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift, sr)
    raw_sum = (rescale(a, p["input1_offset"], p["input1_multiplier"], p["input1_shift"])
               + rescale(b, p["input2_offset"], p["input2_multiplier"], p["input2_shift"]))
    raw_out = fp.multiply_by_quantized_multiplier_smaller_than_one_exp(
        raw_sum, p["output_multiplier"], p["output_shift"], sr) + p["output_offset"]
    return np.clip(raw_out, p["act_min"], p["act_max"]).astype(np.int8)


def run(op, p, a, b):
    # The output depends only on the pair (a, b): compute all 256 x 256 pairs once, then look
    # them up (the same integers as add_int8 on the whole batch, much faster on large ones).
    if a.size <= 1 << 16:
        return add_int8(p, a, b)
    q = np.arange(-128, 128, dtype=np.int8)
    table = add_int8(p, q[:, None], q[None, :])                       # (256, 256)
    return table[a.astype(np.int16) + 128, b.astype(np.int16) + 128]
