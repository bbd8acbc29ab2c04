"""DEPTHWISE_CONV_2D: each input channel ic gets its own depth_multiplier filters m;
out[y, x, ic * depth_multiplier + m] = requantize(sum over the window of
w[0, fy, fx, ic * depth_multiplier + m] * (in[y*sy + fy*dy - pad_h, x*sx + fx*dx - pad_w, ic] + input_offset) + bias),
with strides (sy, sx) and dilations (dy, dx), as conv_2d.

TFLM: micro/kernels/depthwise_conv_common.cc (Prepare), reference/integer_ops/
depthwise_conv.h (Eval). Weight (1, kh, kw, in_c * depth_multiplier) int8, bias int32.
"""
import numpy as np

from .common import (batched, fail, padded, requantize, spatial, taps, weighted_requantization,
                     weights_and_bias)
from .conv_2d import window_input

KINDS = ("depthwise_conv_2d",)
INT16_KINDS = KINDS                   # 16x8: int16 in and out, int64 bias and accumulator
INPUTS = (2, 3)                       # input, weight[, bias]


def prepare(op, tensors, single_rounding):
    x, out, wt = window_input(op, tensors)
    in_c = x.shape[2]
    m = op.options.get("depth_multiplier", 1)
    if wt.shape[0] != 1 or wt.shape[3] != in_c * m:
        fail(op, f"weight {wt.name!r} has shape {wt.shape}, expected (1, kh, kw, {in_c * m}) "
                 f"for {in_c} input channels and depth_multiplier {m}")
    out_c, k_h, k_w = wt.shape[3], wt.shape[1], wt.shape[2]
    fan_in = k_h * k_w
    w, w_scales, bias = weights_and_bias(op, tensors, out_c, 3)
    geometry = spatial(op, x, out, k_h, k_w, out_c, dilated=True)
    return dict(weighted_requantization(op, x, out, w, w_scales, bias, fan_in, single_rounding),
                in_c=in_c, out_c=out_c, kernel_h=k_h, kernel_w=k_w, has_bias=bias is not None,
                macs=geometry["out_h"] * geometry["out_w"] * out_c * fan_in,
                depth_multiplier=int(m), **geometry)


def run(op, p, x, w, b=None):
    k_h, k_w, m = p["kernel_h"], p["kernel_w"], p["depth_multiplier"]
    acc_type = np.int64 if p["dtype"] == "int16" else np.int32         # 16x8: an int64 acc
    wk = w.reshape(k_h, k_w, p["in_c"], m).astype(acc_type)            # (kh, kw, in_c, m)

    def chunk(x):
        n = x.shape[0]
        xp = padded(x, p, k_h, k_w, -p["input_offset"]).astype(acc_type) + p["input_offset"]
        acc = np.zeros((n, p["out_h"], p["out_w"], p["in_c"], m), dtype=acc_type)
        for fy, fx, tap in taps(xp, p, k_h, k_w):                       # cannot overflow:
            acc += tap[..., None] * wk[fy, fx]                          # checked in prepare
        acc = acc.reshape(n, p["out_h"], p["out_w"], p["out_c"]).astype(np.int64)
        if b is not None:
            acc += b
        return requantize(acc, p)
    return batched(x, p["out_h"] * p["out_w"] * p["out_c"], chunk)
