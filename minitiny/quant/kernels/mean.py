"""MEAN over H and W of an (H, W, C) input (global average pooling), requantized.

TFLM: micro/kernels/reduce_common.cc PrepareMeanOrSumHelper (Prepare), reference/reduce.h
QuantizedMeanOrSum (Eval).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import LIMITS, check_multiplier, fail, input_and_output, scale

KINDS = ("mean",)
INT16_KINDS = KINDS                   # 16x8: the same arithmetic, clamped to int16
INPUTS = (1, 1)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    axes = tuple(op.options.get("axes", (0, 1)))
    if len(x.shape) != 3 or axes != (0, 1):
        fail(op, f"only the mean over H, W of an (H, W, C) input is supported (axes (0, 1)); "
                 f"got input {x.shape}, axes {axes}")
    h, w, c = x.shape
    want = (1, 1, c) if op.options.get("keep_dims", False) else (c,)
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, expected {want}")
    lo, hi = LIMITS[x.dtype]
    if h * w * (hi - lo) > fp.INT32_MAX:
        fail(op, f"the int32 sum over {h}x{w} values could overflow")
    # reduce_common.cc PrepareMeanOrSumHelper (TFLM): real = s_in / s_out, in double ...
    real = np.float64(scale(x)) / np.float64(scale(out))
    check_multiplier(op, real, "s_in / s_out")
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    # ... and reduce.h QuantizedMeanOrSum folds 1/count into the multiplier (at Eval, but it
    # is a constant): take s = floor(log2(count)) more bits, divide the significand by count.
    # TFLM uses this path whether or not input and output share scale and zero point.
    count = h * w
    s = min(count.bit_length() - 1, 32, 31 + shift)
    mean_mult = (mult << s) // count                 # int64 in C; both operands >= 0
    return dict(in_h=h, in_w=w, channels=c, count=count, input_zero_point=int(x.zero_point),
                output_zero_point=int(out.zero_point), output_multiplier=int(mean_mult),
                output_shift=shift - s, macs=0)


def run(op, p, x):
    # reduce.h QuantizedMeanOrSum (TFLM): requantize the sum with the zero point taken out,
    # by s_in / (s_out * count) (folded in prepare), then add the output zero point.
    n = x.shape[0]
    total = x.reshape(n, p["count"], p["channels"]).astype(np.int64).sum(axis=1)   # (N, C)
    shifted_sum = total - p["input_zero_point"] * p["count"]
    result = fp.multiply_by_quantized_multiplier(shifted_sum, p["output_multiplier"], p["output_shift"],
                                                 p["single_rounding"]) + p["output_zero_point"]
    return np.clip(result, *LIMITS[p["dtype"]]).astype(p["dtype"])
