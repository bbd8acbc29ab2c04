"""TRANSPOSE_CONV (Keras' Conv2DTranspose): every input pixel scatters its weighted window
into the output,

    out[y * sy - pad_h + fy, x * sx - pad_w + fx, oc] += w[oc, fy, fx, ic] * (in[y, x, ic] + input_offset)

then each output gets its bias and the requantization epilogue conv_2d has. The output's
size is the file's (TFLite's output_shape input); the padding is TF's rule for a conv from
that output size back to the input (TFLM computes it so, with the output as the "input").

TFLM: micro/kernels/transpose_conv.cc (Prepare), reference/integer_ops/transpose_conv.h
(Eval). Weight (out_c, kh, kw, in_c) int8 with one scale per output channel, bias optional.
"""
import numpy as np

from minitiny import geometry

from .common import (activation_tensor, batched, fail, requantize, weighted_requantization,
                     weights_and_bias)

KINDS = ("transpose_conv",)
INT16_KINDS = KINDS                   # 16x8: int16 in and out, int64 bias and accumulator
INPUTS = (2, 3)                       # input, weight[, bias]


def prepare(op, tensors, single_rounding):
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    wt = tensors[op.inputs[1]]
    if len(x.shape) != 3 or len(out.shape) != 3 or len(wt.shape) != 4:
        fail(op, f"input {x.shape} and output {out.shape} must be (H, W, C), the weight 4-D, got {wt.shape}")
    out_c, k_h, k_w, in_c = wt.shape
    if in_c != x.shape[2] or out_c != out.shape[2]:
        fail(op, f"weight {wt.name!r} {wt.shape} does not map input {x.shape} to output {out.shape}")
    stride = op.options.get("stride", (1, 1))
    if len(stride) != 2 or min(stride) < 1:
        fail(op, f"stride must be two positive integers, got {stride}")
    padding = op.options.get("padding", "valid")
    (in_h, in_w), (out_h, out_w) = x.shape[:2], out.shape[:2]
    # transpose_conv.cc: ComputePaddingHeightWidth(stride, dilation 1, output size, filter)
    pad_h = geometry.pad_before(padding, out_h, k_h, stride[0])
    pad_w = geometry.pad_before(padding, out_w, k_w, stride[1])
    # taps that can meet one output: ceil(k / stride) per axis, times the input channels
    fan_in = -(-k_h // stride[0]) * -(-k_w // stride[1]) * in_c
    w, w_scales, bias = weights_and_bias(op, tensors, out_c, 0)
    return dict(weighted_requantization(op, x, out, w, w_scales, bias, fan_in, single_rounding),
                in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                kernel_h=k_h, kernel_w=k_w, stride_h=int(stride[0]), stride_w=int(stride[1]),
                pad_h=pad_h, pad_w=pad_w, has_bias=bias is not None,
                macs=in_h * in_w * in_c * k_h * k_w * out_c)


def run(op, p, x, w, b=None):
    k_h, k_w, sh, sw = p["kernel_h"], p["kernel_w"], p["stride_h"], p["stride_w"]
    # the scatter lands on rows -pad_h .. (in_h - 1) * sh - pad_h + kh - 1: a canvas that
    # holds them all and the output, cropped at the end
    rows = max((p["in_h"] - 1) * sh + k_h, p["pad_h"] + p["out_h"])
    cols = max((p["in_w"] - 1) * sw + k_w, p["pad_w"] + p["out_w"])
    wt = w.astype(np.float64)                                         # (out_c, kh, kw, in_c)

    def chunk(x):
        n = x.shape[0]
        xs = x.astype(np.float64) + p["input_offset"]                  # (n, in_h, in_w, in_c)
        canvas = np.zeros((n, rows, cols, p["out_c"]), np.float64)
        for fy in range(k_h):
            for fx in range(k_w):
                # every input pixel's contribution through tap (fy, fx); exact in float64
                canvas[:, fy:fy + (p["in_h"] - 1) * sh + 1:sh, fx:fx + (p["in_w"] - 1) * sw + 1:sw] += \
                    xs @ wt[:, fy, fx, :].T
        acc = canvas[:, p["pad_h"]:p["pad_h"] + p["out_h"], p["pad_w"]:p["pad_w"] + p["out_w"]]
        acc = acc.astype(np.int64)
        if b is not None:
            acc += b
        return requantize(acc, p)
    return batched(x, rows * cols * p["out_c"], chunk)
