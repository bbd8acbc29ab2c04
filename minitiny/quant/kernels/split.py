"""SPLIT, SPLIT_V and UNPACK: one int8 activation cut into several along one axis.

The inverse of CONCATENATION and PACK (concatenation.py): around the axis the input is
`outer` blocks, and output j takes copy_size_j = (its size along the axis) * inner values
of every block, in turn. SPLIT cuts the axis into equal parts, SPLIT_V into the given sizes,
UNPACK into slices of 1 and drops the axis (the same bytes as SPLIT into slices of 1).
The outputs keep the input's quantization (TFLM copies bytes: micro/kernels/split.cc,
split_v.cc, unpack.cc).
"""
import numpy as np

from .common import activation_tensor, blocks, check_axis, check_rank, fail, same_quantization, size

KINDS = ("split", "split_v", "unpack")
INT16_KINDS = KINDS                   # 16x8: the same copies, two bytes a value
INPUTS = (1, 1)
OUTPUTS = (1, 10 ** 4)
MAX_DIMS = {"split": 6, "split_v": 6, "unpack": 6}       # counting the batch dimension


def prepare(op, tensors, single_rounding):
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    outs = [activation_tensor(op, tensors, name, f"output {j + 1}") for j, name in enumerate(op.outputs)]
    check_rank(op, x, MAX_DIMS[op.kind], "input")
    for out in outs:
        same_quantization(op, x, out)
    axis = check_axis(op, op.options.get("axis", 0), len(x.shape))
    n = len(outs)
    if op.kind == "split":
        if x.shape[axis] % n:
            fail(op, f"cannot split the {x.shape[axis]} entries of axis {axis} into {n} equal parts")
        sizes = (x.shape[axis] // n,) * n
    elif op.kind == "split_v":
        sizes = tuple(int(s) for s in op.options.get("sizes", ()))
        if len(sizes) != n or min(sizes) < 1 or sum(sizes) != x.shape[axis]:
            fail(op, f"sizes {sizes} must be {n} positive numbers summing to {x.shape[axis]} "
                     f"(axis {axis} of {x.shape})")
    else:
        if x.shape[axis] != n:
            fail(op, f"unpacks axis {axis} of {x.shape} ({x.shape[axis]} entries) into {n} outputs")
        sizes = (1,) * n
    for j, (out, s) in enumerate(zip(outs, sizes)):
        want = x.shape[:axis] + ((s,) if op.kind != "unpack" else ()) + x.shape[axis + 1:]
        if out.shape != want:
            fail(op, f"output {j + 1} {out.name!r} has shape {out.shape}, expected {want}")
    outer, inner = blocks(x.shape, axis)
    return dict(axis=axis, outer=outer, copy_sizes=tuple(s * inner for s in sizes),
                outputs_count=n, size=size(x), macs=0)


def run(op, p, x):
    """Output j: its run of every block of the input, in turn (a list, one array per output)."""
    cuts = np.cumsum(p["copy_sizes"])[:-1]
    return np.split(x.reshape(len(x), p["outer"], -1), cuts, axis=2)
