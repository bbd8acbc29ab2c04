"""LEAKY_RELU: x for x >= 0, alpha * x below, requantized to the output's scale.

    q_out = z_out + (s_in / s_out) * (q - z_in)              where q >= z_in
    q_out = z_out + (alpha * s_in / s_out) * (q - z_in)      below
TFLM: micro/kernels/leaky_relu_common.cc CalculateOpDataLeakyRelu (Prepare: alpha * s_in /
s_out in double), reference/leaky_relu.h QuantizeLeakyRelu (Eval). 16x8: the
same, clamped to int16 (QuantizeLeakyRelu<int16_t>).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import LIMITS, check_multiplier, fail, input_and_output, size

KINDS = ("leaky_relu",)
INT16_KINDS = KINDS
INPUTS = (1, 1)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    alpha = np.float32(op.options.get("alpha", 0.2))
    if not np.isfinite(alpha) or alpha <= 0:
        fail(op, f"alpha must be finite and > 0, got {float(alpha)} (TFLM's int8 multiplier has no sign)")
    # in double, from the float32 scales and alpha: the TFLM interpreter minitiny tests
    # against does so (older sources divide in float32 first; the two multipliers differ in
    # their last bits, which int16 inputs are large enough to show)
    s_in, s_out = np.float64(np.float32(x.scale)), np.float64(np.float32(out.scale))
    real_alpha = s_in * np.float64(alpha) / s_out
    real_identity = s_in / s_out
    check_multiplier(op, real_alpha, "alpha * s_in / s_out")
    check_multiplier(op, real_identity, "s_in / s_out")
    m_alpha, sh_alpha = fp.quantize_multiplier(real_alpha, single_rounding)
    m_identity, sh_identity = fp.quantize_multiplier(real_identity, single_rounding)
    return dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                output_multiplier_alpha=m_alpha, output_shift_alpha=sh_alpha,
                output_multiplier_identity=m_identity, output_shift_identity=sh_identity,
                size=size(x), macs=0)


def run(op, p, x):
    value = x.astype(np.int64) - p["input_zero_point"]
    sr = p["single_rounding"]
    identity = fp.multiply_by_quantized_multiplier(value, p["output_multiplier_identity"],
                                                   p["output_shift_identity"], sr)
    leaky = fp.multiply_by_quantized_multiplier(value, p["output_multiplier_alpha"],
                                                p["output_shift_alpha"], sr)
    out = np.where(value >= 0, identity, leaky) + p["output_zero_point"]
    return np.clip(out, *LIMITS[p["dtype"]]).astype(p["dtype"])
