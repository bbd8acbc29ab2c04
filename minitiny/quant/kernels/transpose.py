"""TRANSPOSE: the dimensions of an int8 activation in another order.

output[i_0, ..., i_{r-1}] = input[j] with j[perm[d]] = i_d: output dimension d is input
dimension perm[d]. Bytes move, values do not change; the output keeps the input's
quantization. TFLM: micro/kernels/transpose.cc, reference transpose.h (at most 5
dimensions with the batch one, which must stay first here: a sample is transposed alone).
"""
import numpy as np

from .common import check_rank, fail, input_and_output, same_quantization, size

KINDS = ("transpose",)
INT16_KINDS = KINDS                   # 16x8: the same copies, two bytes a value
INPUTS = (1, 1)
MAX_DIMS = 5                          # counting the batch dimension (transpose_common.cc)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    check_rank(op, x, MAX_DIMS, "input")
    same_quantization(op, x, out)
    perm = tuple(op.options.get("perm", ()))
    if sorted(perm) != list(range(len(x.shape))):
        fail(op, f"perm {perm} is not an order of the {len(x.shape)} dimensions of the sample {x.shape}")
    want = tuple(x.shape[d] for d in perm)
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, transposing {x.shape} by {perm} gives {want}")
    return dict(in_shape=x.shape, perm=tuple(int(d) for d in perm), size=size(out), macs=0)


def run(op, p, x):
    return np.transpose(x, (0,) + tuple(d + 1 for d in p["perm"]))
