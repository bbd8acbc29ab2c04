"""FULLY_CONNECTED (Dense): out[unit] = requantize(sum_i w[unit, i] * (x[i] + input_offset) + bias[unit]).

The input is flattened into one row, or with keep_num_dims (Keras' Dense on an (..., C)
input) each of its rows (..., C) is one: out (..., units), TFLM's batches.

TFLM: micro/kernels/fully_connected_common.cc (Prepare), reference/integer_ops/
fully_connected.h (Eval). Weight (units, in_features) int8, bias (units,) int32.
"""
import numpy as np

from .common import activation_tensor, fail, requantize, scale, weighted_requantization, weights_and_bias

KINDS = ("fully_connected",)
INT16_KINDS = KINDS                   # 16x8: int16 in and out, int64 bias and accumulator
INPUTS = (2, 3)                       # input, weight[, bias]


def prepare(op, tensors, single_rounding):
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    wt = tensors[op.inputs[1]]
    if len(wt.shape) != 2:
        fail(op, f"weight {wt.name!r} must have shape (units, in_features), got {wt.shape}")
    units, in_features = wt.shape
    w, w_scales, bias = weights_and_bias(op, tensors, units, 0)
    if op.options.get("keep_num_dims", False):          # a row per (..., C) position
        if x.shape[-1] != in_features:
            fail(op, f"input {x.name!r} of shape {x.shape} has rows of {x.shape[-1]} values, the "
                     f"weight {w.name!r} expects {in_features}")
        want = x.shape[:-1] + (units,)
    else:                                                # the input flattened into one row
        if int(np.prod(x.shape)) != in_features:
            fail(op, f"input {x.name!r} of shape {x.shape} has {int(np.prod(x.shape))} values, the "
                     f"weight {w.name!r} expects {in_features}")
        want = (units,)
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, expected {want}")
    rows = int(np.prod(x.shape)) // in_features
    check_bias_against_output(op, x, w_scales, bias, out)
    return dict(weighted_requantization(op, x, out, w, w_scales, bias, in_features, single_rounding),
                in_features=in_features, out_features=units, rows=rows, has_bias=bias is not None,
                macs=rows * in_features * units)


def check_bias_against_output(op, x, w_scales, bias, out):
    """TFLM's fully_connected Prepare also runs GetQuantizedConvolutionMultipler (kernel_util.cc),
    which refuses |s_in * s_w - bias scale| / s_out > 0.02 (in double, the bias scale a
    float32): at extreme scales the float32 rounding of a bias scale can exceed 2% of s_out."""
    if bias is None:
        return
    product = np.float64(scale(x)) * w_scales.astype(np.float64)
    diff = np.abs(product - bias.scale.astype(np.float64)) / np.float64(scale(out))
    if np.any(diff > 0.02):
        fail(op, f"bias {bias.name!r}: |s_in * s_w - bias scale| / s_out = {float(diff.max()):.3g} "
                 f"> 0.02, which TFLM's fully_connected refuses (GetQuantizedConvolutionMultipler)")


def run(op, p, x, w, b=None):
    # (N * rows, in) + input_offset, times (in, units): exact in float64 (|acc| < 2^31, or
    # 2^47 in 16x8, < 2^53)
    xs = x.reshape(-1, p["in_features"]).astype(np.float64) + p["input_offset"]
    acc = (xs @ w.astype(np.float64).T).astype(np.int64)           # (N * rows, units)
    if b is not None:
        acc += b
    return requantize(acc, p)
