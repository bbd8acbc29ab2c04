"""CONCATENATION and PACK: several int8 activations side by side along one axis.

Both are pure data movement. Around the axis, every tensor is `outer` blocks (the product
of the dimensions before the axis); block k of the output is block k of input 1, then of
input 2, ...: each input contributes copy_size = (its size along the axis) * inner values
per block, inner the product of the dimensions after the axis. PACK stacks inputs of one
shape along a new axis, which is the same copy with a size of 1 along it.

No requantization: TFLM's int8 kernel copies bytes (micro/kernels/concatenation.cc Prepare
stores the input scales but Eval calls reference_ops::Concatenation, a memcpy per block;
pack.cc the same), so an input with another scale or zero point than the output would be
copied as if it had the output's. TFLite's int8 spec requires one quantization for all of
them (the converter rescales before the op); a model without it is refused here.
TFLM: concatenation.cc (at most 10 inputs; the installed TFLM takes 6 dimensions), pack.cc.
"""
import numpy as np

from .common import activation_tensor, blocks, check_axis, check_rank, fail, same_quantization, size

KINDS = ("concatenation", "pack")
INT16_KINDS = KINDS                # 16x8: the same byte copies, two bytes a value
INPUTS = (1, 10)                      # TFLM's kMaxInputNum
MAX_DIMS = {"concatenation": 6, "pack": 6}     # counting the batch dimension (RuntimeShape: 6)


def prepare(op, tensors, single_rounding):
    xs = [activation_tensor(op, tensors, name, f"input {i + 1}") for i, name in enumerate(op.inputs)]
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    for t in xs + [out]:
        check_rank(op, t, MAX_DIMS[op.kind], "input" if t is not out else "output")
    for x in xs:
        same_quantization(op, x, out)
    axis = check_axis(op, op.options.get("axis", 0), len(out.shape))
    if op.kind == "pack":
        # every input the same shape; the output has len(xs) along the new axis
        want = xs[0].shape[:axis] + (len(xs),) + xs[0].shape[axis:]
        if any(x.shape != xs[0].shape for x in xs) or out.shape != want:
            fail(op, f"packs inputs {[x.shape for x in xs]} along axis {axis}: they must share "
                     f"one shape, and the output {out.shape} must be {want}")
        along = [1] * len(xs)
    else:
        rest = out.shape[:axis] + out.shape[axis + 1:]
        if any(len(x.shape) != len(out.shape) or x.shape[:axis] + x.shape[axis + 1:] != rest for x in xs) \
                or sum(x.shape[axis] for x in xs) != out.shape[axis]:
            fail(op, f"inputs {[x.shape for x in xs]} do not concatenate along axis {axis} "
                     f"to the output {out.shape}")
        along = [x.shape[axis] for x in xs]
    outer, inner = blocks(out.shape, axis)
    return dict(axis=axis, outer=outer, copy_sizes=tuple(a * inner for a in along),
                inputs_count=len(xs), size=size(out), macs=0)


def run(op, p, *xs):
    """Block k of the output: block k of every input, in order."""
    n = len(xs[0])
    return np.concatenate([x.reshape(n, p["outer"], c) for x, c in zip(xs, p["copy_sizes"])], axis=2)
