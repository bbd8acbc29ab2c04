"""STRIDED_SLICE and SLICE: a regular sub-grid of an int8 activation.

Along each dimension d the output takes the entries start_d, start_d + stride_d, ... up to
(not including) stop_d; STRIDED_SLICE may drop a dimension of size 1 (shrink_axis_mask).
start and stop come from begin and end as TFLM resolves them (strided_slice_logic.h
StartForAxis / StopForAxis): a negative index counts from the end, a begin_mask /
end_mask bit takes the whole range in the stride's direction, then start is clamped to
[0, n] (stride > 0) or [-1, n - 1] (stride < 0), and so is stop; a shrunk axis takes one
entry, start. The count is ceil((stop - start) / stride), at least 0. SLICE is the same
with stride 1 and stop = begin + size (size -1: to the end). A shrunk axis with a negative
stride is refused: TFLM's loop stops before its first entry and leaves the output unwritten.
TFLM: micro/kernels/strided_slice.cc and strided_slice_common.cc (at most 4 dimensions, no
ellipsis or new axis: it sets those masks to 0), slice.cc (at most 5 dimensions). Bytes
are copied; the output keeps the input's quantization.
"""
import math

import numpy as np

from .common import check_rank, fail, input_and_output, same_quantization, size

KINDS = ("strided_slice", "slice")
INT16_KINDS = KINDS                   # 16x8: the same copies, two bytes a value
INPUTS = (1, 1)
MAX_DIMS = {"strided_slice": 4, "slice": 5}        # counting the batch dimension
INT_MIN, INT_MAX = -2 ** 31, 2 ** 31 - 1


def start_for_axis(begin, stride, masked, n):
    """TFLM's StartForAxis for one axis of size n."""
    start = (INT_MIN if stride > 0 else INT_MAX) if masked else begin
    if start < 0:
        start += n
    return min(max(start, 0), n) if stride > 0 else min(max(start, -1), n - 1)


def stop_for_axis(end, stride, masked, shrink, n, start):
    """TFLM's StopForAxis for one axis of size n."""
    if shrink:
        return start + 1
    stop = (INT_MAX if stride > 0 else INT_MIN) if masked else end
    if stop < 0:
        stop += n
    return min(max(stop, 0), n) if stride > 0 else min(max(stop, -1), n - 1)


def resolve(op, shape):
    """(start, stride, count, shrink) per dimension of a sample of `shape`."""
    rank, o = len(shape), op.options
    if op.kind == "slice":
        begin, sizes = tuple(o.get("begin", ())), tuple(o.get("size", ()))
        if len(begin) != rank or len(sizes) != rank:
            fail(op, f"begin {begin} and size {sizes} need one entry per dimension of {shape}")
        rows = []
        for b, s, n in zip(begin, sizes, shape):
            s = n - b if s == -1 else s
            if not 0 <= b <= n or s < 0 or b + s > n:
                fail(op, f"begin {begin} and size {sizes} leave the sample {shape}")
            rows.append((int(b), 1, int(s), False))
        return rows
    begin, end, strides = (tuple(o.get(k, ())) for k in ("begin", "end", "strides"))
    if not len(begin) == len(end) == len(strides) == rank:
        fail(op, f"begin {begin}, end {end} and strides {strides} need one entry per dimension of {shape}")
    masks = [int(o.get(k, 0)) for k in ("begin_mask", "end_mask", "shrink_axis_mask")]
    if any(m < 0 or m >> rank for m in masks):
        fail(op, f"masks {masks} have bits beyond the {rank} dimensions of the sample")
    rows = []
    for d, (b, e, stride, n) in enumerate(zip(begin, end, strides, shape)):
        if stride == 0:
            fail(op, f"stride 0 along dimension {d}")
        shrink = bool(masks[2] >> d & 1)
        if shrink and stride < 0:        # TFLM's loop then ends before it starts: no output
            fail(op, f"shrinks dimension {d} with stride {stride}: TFLM's kernel copies nothing "
                     f"then (it leaves the output unwritten); use stride 1")
        start = start_for_axis(int(b), int(stride), masks[0] >> d & 1, n)
        stop = stop_for_axis(int(e), int(stride), masks[1] >> d & 1, shrink, n, start)
        count = max(math.ceil((stop - start) / stride), 0)
        if shrink and not 0 <= start < n:
            fail(op, f"shrinks dimension {d} at index {b}, outside its {n} entries")
        rows.append((start, int(stride), count, shrink))
    return rows


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    check_rank(op, x, MAX_DIMS[op.kind], "input")
    same_quantization(op, x, out)
    rows = resolve(op, x.shape)
    want = tuple(count for _, _, count, shrink in rows if not shrink)
    if out.shape != want or 0 in want:
        fail(op, f"output {out.name!r} has shape {out.shape}; the slice of {x.shape} has {want}")
    return dict(in_shape=x.shape, start=tuple(r[0] for r in rows), stride=tuple(r[1] for r in rows),
                count=tuple(r[2] for r in rows), size=size(out), macs=0)


def run(op, p, x):
    """The entries start + i * stride along every dimension, i < count."""
    for d, (start, stride, count) in enumerate(zip(p["start"], p["stride"], p["count"])):
        x = np.take(x, start + stride * np.arange(count), axis=d + 1)
    return x
