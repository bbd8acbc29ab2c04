"""PAD and PADV2: an int8 activation surrounded by a constant.

paddings[d] = (before, after): the output is the input with `before` entries in front of
it along dimension d and `after` behind, every new entry the pad value, every other one a
copy. PAD pads with the output zero point (the real number 0); PADV2 with its own constant,
an int8 value in the output's quantization (`constant` here; None for PAD).
TFLM: micro/kernels/pad.cc and pad_common.cc (PadPrepare: the pad value is the output zero
point, or constant_values which must share the output's scale and zero point), reference
pad.h (at most 5 dimensions). The kernel copies bytes, so the output keeps the input's
quantization (TFLite's int8 spec requires it; a model without it is refused). 16x8: the
same copies of int16 values, the pad value int16 (PadEval's kTfLiteInt16 case).
"""
import numpy as np

from .common import LIMITS, check_rank, fail, input_and_output, same_quantization, size

KINDS = ("pad",)
INT16_KINDS = KINDS
INPUTS = (1, 1)
MAX_DIMS = 5                          # counting the batch dimension (PadKernelMaxDimensionCount)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    check_rank(op, x, MAX_DIMS, "input")
    same_quantization(op, x, out)
    paddings = op.options.get("paddings", ())
    if len(paddings) != len(x.shape) or any(len(p) != 2 or min(p) < 0 for p in paddings):
        fail(op, f"paddings {paddings} must be one (before, after) pair of counts >= 0 per "
                 f"dimension of the sample {x.shape}")
    want = tuple(n + int(b) + int(a) for n, (b, a) in zip(x.shape, paddings))
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, padding {x.shape} by {paddings} gives {want}")
    constant = op.options.get("constant")
    lo, hi = LIMITS[x.dtype]
    if constant is not None and not (isinstance(constant, (int, np.integer)) and lo <= constant <= hi):
        fail(op, f"constant {constant!r} must be an {x.dtype} value (PADV2's constant_values)")
    value = int(out.zero_point) if constant is None else int(constant)
    return dict(in_shape=x.shape, out_shape=out.shape, before=tuple(int(b) for b, _ in paddings),
                pad_value=value, size=size(out), macs=0)


def run(op, p, x):
    widths = [(0, 0)] + [(b, o - n - b) for n, o, b in zip(p["in_shape"], p["out_shape"], p["before"])]
    return np.pad(x, widths, constant_values=np.array(p["pad_value"], p["dtype"]))
