"""L2_NORMALIZATION: each row of the last axis divided by its L2 norm (tf.math.l2_normalize).

    acc = sum_c (q_c - z_in)^2                       (int32: at most 255^2 per term)
    m, shift = 1/sqrt(acc) as a multiplier and a shift (fixedpoint.inv_sqrt_quantized_multiplier_exp)
    q_out_c = clamp(MultiplyByQuantizedMultiplier(q_c - z_in, m, shift + 7), -128, 127)
The output is in 1/128 steps with zero point 0, so the real range [-1, 1] is nudged to
[-1, 127/128] (TF's converter fixes that quantization); the input scale cancels. A row of
zeros divides by 1 (the helper takes 0 as 1), so no epsilon is needed.
TFLM: micro/kernels/l2norm.cc (Prepare: rank <= 4, no fused activation), reference/
integer_ops/l2normalization.h (Eval).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, check_output_quantization, fail, input_and_output, size

KINDS = ("l2_normalization",)
INPUTS = (1, 1)
OUTPUT_SCALE_BITS = 7                 # kOutputScale: the output in 1/128 steps


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    if len(x.shape) + 1 > 4:
        fail(op, f"input {x.name!r} of shape {x.shape}: TFLM's kernel takes at most 4 dimensions with the batch")
    check_output_quantization(op, out, 1 / 128, 0)
    depth = x.shape[-1]
    if depth * 255 * 255 > fp.INT32_MAX:
        fail(op, f"the int32 sum of squares could overflow: depth {depth} * 255^2 > 2^31 - 1")
    return dict(input_zero_point=int(x.zero_point), depth=depth, outer=size(x) // depth,
                size=size(x), macs=size(x))


def run(op, p, x):
    v = x.reshape(-1, p["depth"]).astype(np.int64) - p["input_zero_point"]    # (rows, depth)
    acc = (v * v).sum(axis=1)
    pairs = [fp.inv_sqrt_quantized_multiplier_exp(a, -1) for a in acc]
    m = np.array([pair[0] for pair in pairs], dtype=np.int64)[:, None]
    shift = np.array([pair[1] for pair in pairs], dtype=np.int64)[:, None]
    out = fp.multiply_by_quantized_multiplier(v, m, shift + OUTPUT_SCALE_BITS, p["single_rounding"])
    return np.clip(out, INT8_MIN, INT8_MAX).astype(np.int8).reshape(x.shape)
