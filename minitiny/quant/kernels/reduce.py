"""MEAN, SUM, REDUCE_MAX and REDUCE_MIN over any axes of an activation (up to 4 dimensions besides the
batch), keep_dims or not. Each output value reduces `count` input values:

    mean         q_out = Z_out + s_in / (s_out * count) * (sum(q) - Z_in * count)
    sum          q_out = Z_out + s_in / s_out * (sum(q) - Z_in * count)
    reduce_max   q_out = max(q)          (input and output share scale and zero point)
    reduce_min   q_out = min(q)          (the same)

then clamped to int8 (int16 for a 16x8 mean). Global average pooling is the mean over H
and W of (H, W, C).

TFLM: micro/kernels/reduce_common.cc (PrepareMeanOrSumHelper, PrepareMaxHelper and the
Eval helpers), reference/reduce.h QuantizedMeanOrSum (mean and sum: the zero point taken
out of the int32 sum at once) and ReduceGeneric (max from the lowest int8, min from the
highest).
"""
import numpy as np

from .. import fixedpoint as fp
from .common import LIMITS, check_multiplier, fail, input_and_output, same_quantization, scale

KINDS = ("mean", "sum", "reduce_max", "reduce_min")
EXTREMES = {"reduce_max": np.max, "reduce_min": np.min}      # no arithmetic: a value of the input
INT16_KINDS = ("mean", "sum")        # 16x8: the same arithmetic, clamped to int16 (not reduce_max)
INPUTS = (1, 1)
MAX_RANK = 4                 # TFLM's temp_index holds 5 axes, the batch among them
MAX_SUMMED_AXES = 2          # reduce_common.cc: resolved_axis[kMaxNumberOfReducedAxis = 2]


def walk(shape, axes):
    """(extent, stride) of `axes` of a row-major `shape`, padded in front to 4 axes with
    extent 1 and stride 0: unravelling a flat index over them gives an input offset."""
    strides = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape))]
    pad = MAX_RANK - len(axes)
    return (1,) * pad + tuple(shape[a] for a in axes), (0,) * pad + tuple(strides[a] for a in axes)


def resolved_axes(op, shape):
    """The op's axes of a sample of `shape`, negative ones resolved, sorted, each once."""
    rank = len(shape)
    given = op.options.get("axes", (0, 1))
    if not given or any(not -rank <= int(a) < rank for a in given):
        fail(op, f"axes {given} are not axes of the input {shape} (0..{rank - 1}, or negative)")
    return tuple(sorted({int(a) % rank for a in given}))


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    rank = len(x.shape)
    if rank > MAX_RANK:
        fail(op, f"input {x.name!r} has {rank} dimensions besides the batch; TFLM reduces at most {MAX_RANK}")
    axes = resolved_axes(op, x.shape)
    kept = tuple(a for a in range(rank) if a not in axes)
    keep_dims = bool(op.options.get("keep_dims", False))
    want = tuple(1 if a in axes else d for a, d in enumerate(x.shape)) if keep_dims else \
        tuple(x.shape[a] for a in kept)
    if not want:
        fail(op, "every axis is reduced without keep_dims: the output would be a scalar; keep the dims")
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, expected {want}")
    count = int(np.prod([x.shape[a] for a in axes]))
    kept_extent, kept_stride = walk(x.shape, kept)
    reduced_extent, reduced_stride = walk(x.shape, axes)
    p = dict(axes=axes, count=count, output_size=int(np.prod(want)), kept_extent=kept_extent,
             kept_stride=kept_stride, reduced_extent=reduced_extent, reduced_stride=reduced_stride,
             macs=0)
    if op.kind == "mean" and rank == 3 and axes == (0, 1):   # global average pooling: the tuned kernels' case
        p.update(in_h=x.shape[0], in_w=x.shape[1], channels=x.shape[2])
    if op.kind in EXTREMES:                 # reduce_common.cc EvalMaxHelper: no requantization
        same_quantization(op, x, out)
        return p
    if len(axes) > MAX_SUMMED_AXES:
        fail(op, f"{op.kind} over {len(axes)} axes {axes}: TFLM's int8 {op.kind} resolves at most "
                 f"{MAX_SUMMED_AXES} (reduce_common.cc kMaxNumberOfReducedAxis; more overrun its buffer)")
    # reduce_common.cc PrepareMeanOrSumHelper: real = s_in / s_out, in double ...
    real = np.float64(scale(x)) / np.float64(scale(out))
    check_multiplier(op, real, "s_in / s_out")
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    if op.kind == "mean":
        # ... and reduce.h QuantizedMeanOrSum folds 1/count into it (at Eval, but it is a
        # constant): s = floor(log2(count)) more bits (at most 32 and 31 + shift), the
        # significand divided by count. TFLM uses this path whether or not input and output
        # share scale and zero point.
        s = min(count.bit_length() - 1, 32, 31 + shift)
        mult, shift = (mult << s) // count, shift - s                   # int64 in C; both >= 0
    # |sum - Z_in * count| <= (hi - lo) * count, shifted left by a positive shift, must stay int32
    lo, hi = LIMITS[x.dtype]
    if (hi - lo) * count * (1 << max(shift, 0)) > fp.INT32_MAX:
        fail(op, f"the int32 sum over {count} values (times 2^{max(shift, 0)} for s_in / s_out = "
                 f"{real:.6g}) could overflow")
    return dict(p, input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                output_multiplier=int(mult), output_shift=int(shift))


def run(op, p, x):
    axes = tuple(a + 1 for a in p["axes"])                           # past the batch
    if op.kind in EXTREMES:
        return EXTREMES[op.kind](x, axis=axes)
    # reduce.h QuantizedMeanOrSum: the zero point out of the sum, requantize, add Z_out
    shifted_sum = x.astype(np.int64).sum(axis=axes) - p["input_zero_point"] * p["count"]
    result = fp.multiply_by_quantized_multiplier(shifted_sum, p["output_multiplier"], p["output_shift"],
                                                 p["single_rounding"])
    return np.clip(result + p["output_zero_point"], *LIMITS[p["dtype"]]).astype(p["dtype"])
