"""CONV_2D: out[y, x, oc] = requantize(sum over the window and in_channel of
w[oc, fy, fx, ic] * (in[y*sy + fy*dy - pad_h, x*sx + fx*dx - pad_w, ic] + input_offset) + bias[oc]),
with strides (sy, sx) and dilations (dy, dx): a dilated window's taps lie dy rows apart.

TFLM: micro/kernels/conv_common.cc (Prepare), reference/integer_ops/conv.h (Eval).
Weight (out_c, kh, kw, in_c) int8 with one scale per output channel, bias (out_c,) int32.
16x8 (TFLM's int16 ConvPerChannel): int16 input and output with zero point 0, bias int64,
an int64 accumulator and its own requantization (common.requantize).
"""
import numpy as np

from .common import (activation_tensor, batched, fail, padded, requantize, spatial, taps,
                     weighted_requantization, weights_and_bias)

KINDS = ("conv_2d",)
INT16_KINDS = KINDS                   # 16x8: int16 in and out, int64 bias and accumulator
INPUTS = (2, 3)                       # input, weight[, bias]


def window_input(op, tensors):
    """The (H, W, C) input and the output of a convolution, checked."""
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    wt = tensors[op.inputs[1]]
    if len(x.shape) != 3:
        fail(op, f"input {x.name!r} must be (H, W, C), got {x.shape}")
    if len(wt.shape) != 4:
        fail(op, f"weight {wt.name!r} must be 4-D, got {wt.shape}")
    return x, out, wt


def prepare(op, tensors, single_rounding):
    x, out, wt = window_input(op, tensors)
    in_c = x.shape[2]
    out_c, k_h, k_w = wt.shape[0], wt.shape[1], wt.shape[2]
    if wt.shape[3] != in_c:
        fail(op, f"weight {wt.name!r} has {wt.shape[3]} input channels, input {x.name!r} has {in_c}")
    fan_in = k_h * k_w * in_c
    w, w_scales, bias = weights_and_bias(op, tensors, out_c, 0)
    geometry = spatial(op, x, out, k_h, k_w, out_c, dilated=True)
    return dict(weighted_requantization(op, x, out, w, w_scales, bias, fan_in, single_rounding),
                in_c=in_c, out_c=out_c, kernel_h=k_h, kernel_w=k_w, has_bias=bias is not None,
                macs=geometry["out_h"] * geometry["out_w"] * out_c * fan_in, **geometry)


def run(op, p, x, w, b=None):
    k_h, k_w = p["kernel_h"], p["kernel_w"]
    w2 = w.reshape(p["out_c"], -1).astype(np.float64).T               # (kh*kw*in_c, out_c)

    def chunk(x):
        n = x.shape[0]
        # Padding with the input zero point makes padded taps contribute w * (z_in - z_in) = 0.
        xp = padded(x, p, k_h, k_w, -p["input_offset"]).astype(np.float64) + p["input_offset"]
        # im2col: (n, out_h, out_w, kh*kw, in_c) -> (n*out_h*out_w, kh*kw*in_c), then one
        # matrix product; exact in float64 since every partial sum is an integer < 2^31
        # (16x8: < 2^47, checked in prepare; float64 holds integers up to 2^53).
        cols = np.stack([t for _, _, t in taps(xp, p, k_h, k_w)], axis=3)
        acc = (cols.reshape(-1, w2.shape[0]) @ w2).astype(np.int64)    # (n*out_h*out_w, out_c)
        if b is not None:
            acc += b
        return requantize(acc.reshape(n, p["out_h"], p["out_w"], p["out_c"]), p)
    return batched(x, p["out_h"] * p["out_w"] * max(k_h * k_w * p["in_c"], p["out_c"]), chunk)
