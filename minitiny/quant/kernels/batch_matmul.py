"""BATCH_MATMUL: a matrix product of two int8 activations per batch entry (Keras' Attention,
MultiHeadAttention and Dot, tf.matmul of two tensors).

    out[..., i, j] = requantize(sum_k (lhs[..., i, k] + lhs_offset) * (rhs[..., k, j] + rhs_offset))
with adj_x / adj_y transposing the last two dimensions of lhs / rhs first, and the leading
("batch") dimensions broadcast (NumPy's rule: a dimension of 1 repeats). There is no bias
and no fused activation; the real multiplier is s_lhs * s_rhs / s_out, as a convolution's.
TFLM: micro/kernels/batch_matmul.cc (Prepare: rank 2..5, the broadcast, the multiplier in
double; Eval transposes into scratch buffers, which changes no sum), reference
batch_matmul.h BatchMatMul<int8_t, int32_t>. Both operands are activations here: TF's
converter turns a product with a constant into a FULLY_CONNECTED.
"""
import numpy as np

from .common import (INT8_MAX, INT8_MIN, activation_tensor, check_multiplier, fail, requantize, scale,
                     size)
from .. import fixedpoint as fp

KINDS = ("batch_matmul",)
INPUTS = (2, 2)
MAX_BATCH_DIMS = 2                    # TFLM: rank <= 5, less the file's batch and the matrix


def matrix_shapes(op, lhs, rhs):
    """(rows, depth, cols) of the product, after adj_x / adj_y, and the broadcast batch shape."""
    adj_x, adj_y = bool(op.options.get("adj_x", False)), bool(op.options.get("adj_y", False))
    for t in (lhs, rhs):
        if not 2 <= len(t.shape) <= 2 + MAX_BATCH_DIMS:
            fail(op, f"{t.name!r} has shape {t.shape}: a matrix of rank 2 to {2 + MAX_BATCH_DIMS} "
                     f"per sample (TFLM: rank 2 to 5 with the batch)")
    rows, depth = lhs.shape[-2:][::-1] if adj_x else lhs.shape[-2:]
    rhs_depth, cols = rhs.shape[-2:][::-1] if adj_y else rhs.shape[-2:]
    if depth != rhs_depth:
        fail(op, f"lhs {lhs.shape}{' (adj_x)' if adj_x else ''} and rhs {rhs.shape}"
                 f"{' (adj_y)' if adj_y else ''} do not multiply: {depth} != {rhs_depth}")
    try:
        batch = np.broadcast_shapes(lhs.shape[:-2], rhs.shape[:-2])
    except ValueError:
        fail(op, f"the batch dimensions of lhs {lhs.shape} and rhs {rhs.shape} do not broadcast")
    return rows, depth, cols, tuple(batch), adj_x, adj_y


def prepare(op, tensors, single_rounding):
    lhs = activation_tensor(op, tensors, op.inputs[0], "lhs")
    rhs = activation_tensor(op, tensors, op.inputs[1], "rhs")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    rows, depth, cols, batch, adj_x, adj_y = matrix_shapes(op, lhs, rhs)
    if out.shape != batch + (rows, cols):
        fail(op, f"output {out.name!r} has shape {out.shape}, lhs {lhs.shape} times rhs {rhs.shape} "
                 f"gives {batch + (rows, cols)}")
    # |(lhs + offset) (rhs + offset)| <= 255 * 255 per term, summed in int32 (TFLM's accumulator)
    if depth * 255 * 255 > fp.INT32_MAX:
        fail(op, f"the int32 accumulator could overflow: depth {depth} * 255 * 255 > 2^31 - 1")
    real = np.float64(scale(lhs)) * np.float64(scale(rhs)) / np.float64(scale(out))
    check_multiplier(op, real, "s_lhs * s_rhs / s_out")
    multiplier, shift = fp.quantize_multiplier(real, single_rounding)
    # each operand's step along the output's batch dimensions (0: broadcast), padded in front
    lead = (1,) * (MAX_BATCH_DIMS - len(batch)) + batch

    def batch_strides(t):
        dims = (1,) * (MAX_BATCH_DIMS + 2 - len(t.shape)) + t.shape
        matrix = dims[-1] * dims[-2]
        steps = [int(np.prod(dims[d + 1:-2], dtype=np.int64)) * matrix for d in range(MAX_BATCH_DIMS)]
        return tuple(0 if dims[d] == 1 and lead[d] != 1 else steps[d] for d in range(MAX_BATCH_DIMS))

    return dict(lhs_offset=-int(lhs.zero_point), rhs_offset=-int(rhs.zero_point),
                output_offset=int(out.zero_point), output_multiplier=multiplier, output_shift=shift,
                act_min=INT8_MIN, act_max=INT8_MAX, adj_x=adj_x, adj_y=adj_y,
                rows=rows, depth=depth, cols=cols, batch=lead,
                lhs_batch_stride=batch_strides(lhs), rhs_batch_stride=batch_strides(rhs),
                size=size(out), macs=int(np.prod(batch, dtype=np.int64)) * rows * depth * cols)


def run(op, p, lhs, rhs):
    # (N, ..., rows, depth) @ (N, ..., depth, cols): exact in float64 (|acc| < 2^31 < 2^53)
    a = lhs.astype(np.float64) + p["lhs_offset"]
    b = rhs.astype(np.float64) + p["rhs_offset"]
    if p["adj_x"]:
        a = np.swapaxes(a, -1, -2)
    if p["adj_y"]:
        b = np.swapaxes(b, -1, -2)
    # the sample ranks may differ: line the batch dimensions up behind the model's batch N
    rank = max(a.ndim, b.ndim)
    a = a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:])
    b = b.reshape(b.shape[:1] + (1,) * (rank - b.ndim) + b.shape[1:])
    acc = np.matmul(a, b).astype(np.int64)
    return requantize(acc, p)
