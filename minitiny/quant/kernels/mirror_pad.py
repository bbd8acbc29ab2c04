"""MIRROR_PAD: an int8 activation extended by its own mirror image (tf.pad REFLECT or SYMMETRIC).

paddings[d] = (before, after) entries added along dimension d, each a copy of an input
entry read back from the edge: REFLECT mirrors about the edge entry (it is not repeated:
[a b c] -> b | a b c | b), SYMMETRIC about the edge itself (it is: a | a b c | c).
TensorFlow allows paddings up to the dimension's size less one (REFLECT) or the size
(SYMMETRIC), which the mirror image covers once. Bytes move, values do not change; the
output keeps the input's quantization.
TFLM: micro/kernels/mirror_pad.cc (GetInputDimension: an output index -> the input index it
copies; offset 1 for REFLECT, 0 for SYMMETRIC).
"""
import numpy as np

from .common import check_rank, fail, input_and_output, same_quantization, size

KINDS = ("mirror_pad",)
INPUTS = (1, 1)
MAX_DIMS = 5                          # counting the batch dimension, as pad.py
MODES = {"reflect": 1, "symmetric": 0}            # mode -> TFLM's offset


def input_index(out_index, before, in_size, offset):
    """GetInputDimension (mirror_pad.cc): the input entry output entry `out_index` copies."""
    if out_index < before:                                  # mirrored in front
        original = before + offset - 1
        return original - min(out_index, original - offset)
    out_index -= before
    if out_index >= in_size:                                # mirrored behind
        out_index -= in_size
        original = in_size - (1 + offset)
        return original - min(out_index, original)
    return out_index


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    check_rank(op, x, MAX_DIMS, "input")
    same_quantization(op, x, out)
    mode = op.options.get("mode")
    if mode not in MODES:
        fail(op, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    paddings = tuple(tuple(int(v) for v in pair) for pair in op.options.get("paddings", ()))
    if len(paddings) != len(x.shape) or any(len(p) != 2 or min(p) < 0 for p in paddings):
        fail(op, f"paddings {paddings} must be one (before, after) pair of counts >= 0 per "
                 f"dimension of the sample {x.shape}")
    most = {"reflect": "the size less one", "symmetric": "the size"}[mode]
    for d, (n, pair) in enumerate(zip(x.shape, paddings)):
        if max(pair) > n - MODES[mode]:
            fail(op, f"paddings {pair} of dimension {d} (size {n}): {mode} mode pads at most {most}")
    want = tuple(n + b + a for n, (b, a) in zip(x.shape, paddings))
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, padding {x.shape} by {paddings} gives {want}")
    # each output index along each dimension -> the input index it copies
    index = [[input_index(i, b, n, MODES[mode]) for i in range(o)] for n, (b, _), o in zip(x.shape, paddings, want)]
    return dict(in_shape=x.shape, out_shape=out.shape, before=tuple(b for b, _ in paddings),
                offset=MODES[mode], input_index=index, size=size(out), macs=0)


def run(op, p, x):
    for d, index in enumerate(p["input_index"]):
        x = np.take(x, index, axis=d + 1)
    return x
