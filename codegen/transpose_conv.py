"""The tuned transpose_conv kernels' constants: which taps reach each output row and column,
and each tap's weight sum for the input offset.

TRANSPOSE_CONV scatters input pixel (in_y, in_x) into output rows in_y * stride_h - pad_h +
filter_y (minitiny/quant/kernels/transpose_conv.py). Read the other way round, output row
out_y gathers the filter rows filter_y = out_y + pad_h - in_y * stride_h: those of one residue
modulo stride_h, from the first whose input row is inside the image (in_y <= in_h - 1) to the
last (in_y >= 0, filter_y <= kernel_h - 1). `taps` gives that range per output row (and per
output column), so the tuned kernels (templates/scalar/transpose_conv.c.j2,
dsp/transpose_conv.c.j2) loop over exactly the taps that meet an input, with no test per tap.

The input offset: a tap adds sum_ic w[ic] (x[ic] + input_offset) = sum_ic w[ic] x[ic] +
input_offset * sum_ic w[ic]. The second term is one product per tap with the tap's weight sum
(`weight_sums`, a constant), so the inner loop is a plain dot product of the int8 values.
"""
import numpy as np


def taps(out_size, in_size, kernel, stride, pad):
    """(out_size, 2) int: [first, end) of the filter indices that put an input row (column)
    on each output row (column), stepping by stride; first >= end when none does."""
    rows = []
    for out in range(out_size):
        lowest = max(0, out + pad - stride * (in_size - 1))           # in <= in_size - 1
        residue = (out + pad) % stride
        first = lowest + (residue - lowest) % stride                 # the first of the residue
        end = min(kernel - 1, out + pad) + 1                           # in >= 0
        rows.append((first, max(first, end)))
    return np.array(rows, dtype=np.int64)


def weight_sums(weight):
    """(out_c, kh, kw, in_c) int8 -> (out_c, kh, kw) int32: each tap's sum over in_channel."""
    return np.asarray(weight, dtype=np.int64).sum(axis=3).astype(np.int32)


def tap_counts(ranges, stride):
    """(n,) how many filter indices each [first, end) range with this stride holds."""
    return np.maximum(0, -(-(ranges[:, 1] - ranges[:, 0]) // stride))


def layer_context(p, weight):
    """The constants of the tuned kernels' taps, for the templates; max_taps: the most taps
    one output pixel meets (the length of the kernels' tap list, at least 1)."""
    rows = taps(p["out_h"], p["in_h"], p["kernel_h"], p["stride_h"], p["pad_h"])
    cols = taps(p["out_w"], p["in_w"], p["kernel_w"], p["stride_w"], p["pad_w"])
    most = int(tap_counts(rows, p["stride_h"]).max(initial=0) * tap_counts(cols, p["stride_w"]).max(initial=0))
    return {"rows": rows, "cols": cols, "weight_sums": weight_sums(weight), "max_taps": max(1, most)}
