"""ARG_MAX and ARG_MIN: the index of the largest (smallest) int8 value along one axis, as int32.

    out[..., ...] = the first index i along `axis` with x[..., i, ...] maximal (minimal)
Ties go to the first index: TFLM walks the axis and replaces its candidate only on a strictly
greater (smaller) value. Comparing the int8 values compares the reals, so the quantization
plays no part; the output is an int32 index with no quantization (the `QTensor` holds scale
1, zero point 0, so dequantizing it gives the index).
TFLM: micro/kernels/arg_min_max.cc (Eval: the axis a constant, output int32 or int64; minitiny
takes int32, the type a .tflite needs to run on TFLM), reference arg_min_max.h ArgMinMax.
"""
import numpy as np

from .common import activation_tensor, check_axis, fail, size

KINDS = ("arg_max", "arg_min")
INPUTS = (1, 1)


def prepare(op, tensors, single_rounding):
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    out = tensors[op.outputs[0]]
    if x.dtype != "int8":
        fail(op, f"input {x.name!r} must be int8, got {x.dtype}")
    if out.dtype != "int32" or out.is_constant or float(out.scale) != 1.0 or int(out.zero_point) != 0:
        fail(op, f"output {out.name!r} must be an int32 activation holding indices (scale 1, zero "
                 f"point 0), got {out.dtype} with scale {out.scale} and zero point {out.zero_point}")
    axis = op.options.get("axis")
    check_axis(op, axis, len(x.shape))
    want = x.shape[:axis] + x.shape[axis + 1:]
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, reducing axis {axis} of {x.shape} gives {want}")
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return dict(axis=axis, outer=outer, axis_size=x.shape[axis], inner=size(x) // (outer * x.shape[axis]),
                size=size(x), macs=0)


def run(op, p, x):
    pick = np.argmax if op.kind == "arg_max" else np.argmin      # both: the first of equals
    return pick(x, axis=p["axis"] + 1).astype(np.int32)
