"""Which kernels may write their output over their own input, and how far before it.

A kernel walks its output in order, and by the time it writes an output byte it has read
some of its input for the last time. If the output starts `shift` bytes after the input
(shift <= 0: before it), output byte k lands on input byte k + shift, and the kernel may
run in place when every byte it writes lands on input it never reads again. That is how
TinyEngine (MCUNet, Lin et al. 2020) runs depthwise convolutions over their input; here
the rule is worked out from each kernel's own loop order, for every kernel whose order
allows it, and planner.py uses it when the input dies at that op.

The order, per kernel: a list of passes, each reading input bytes from `start` on and
writing output bytes below `end`.
  interleaved   the reference and scalar kernels: one output pixel per pass, all of its
                channels, each channel's window read again after the previous channel was
                written (conv_2d, depthwise_conv_2d, max_pool_2d, average_pool_2d)
  read first    dsp/conv_2d.c.j2: a pass copies the windows of four pixels (or a band's
                input rows, into its int16 plane) before it writes any of them; the last
                pass moves back to end at the last pixel (or row) and reads again windows
                of pixels an earlier pass wrote
Then the output may start `shift` bytes after the input when, for every pass j,
    shift <= (the lowest input byte read from pass j on, or after it)
             - (the highest output byte written up to pass j, + 1).

dsp/depthwise_conv_2d.c.j2 runs channel by channel instead (a channel's plane, then its
outputs), so its writes of channel c reach all rows before channel c + 1 is read: only
shift = 0 with one output channel per input channel (depth_multiplier 1) and the whole
channel in one plane (one band) keeps every write on bytes of channel c, already copied.

Elementwise ops (output[k] from input[k]) are planner.IN_PLACE_KINDS: shift 0.
"""
import numpy as np

from .planner import InPlace

WINDOWED = ("conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d")


def window_starts(p, in_shape):
    """(out_h * out_w,) the lowest input byte each output pixel's window reads (row-major)."""
    in_h, in_w, in_c = in_shape
    y = np.maximum(0, np.arange(p["out_h"]) * p["stride_h"] - p["pad_h"])       # first row read
    x = np.maximum(0, np.arange(p["out_w"]) * p["stride_w"] - p["pad_w"])       # first column
    rows = np.minimum(y, in_h)[:, None] * in_w
    return ((rows + np.minimum(x, in_w)[None, :]) * in_c).ravel()


def pixel_passes(p, in_shape, out_c):
    """Interleaved passes, one per output pixel: (starts, ends)."""
    n = p["out_h"] * p["out_w"]
    return window_starts(p, in_shape), (np.arange(n) + 1) * out_c


def dsp_conv_passes(p, in_shape, out_c):
    """Read-first passes of dsp/conv_2d.c.j2: (starts, ends)."""
    from . import dsp
    starts, h, w = window_starts(p, in_shape), p["out_h"], p["out_w"]
    if dsp.conv_uses_plane(p):                     # bands of output rows, the last moved up
        band = dsp.conv_plane(p)[0]
        tops = [min(b, h - band) for b in range(0, h, band)]
        row_start = np.maximum(0, np.array(tops) * p["stride_h"] - p["pad_h"]) * in_shape[1] * in_shape[2]
        return row_start, (np.array(tops) + band) * w * out_c
    n, k = h * w, dsp.CONV_PIXELS                  # passes of four pixels, the last moved back
    firsts = [min(f, n - k) for f in range(0, n, k)] if n >= k else [0]
    return (np.array([starts[f:f + k].min() for f in firsts]),
            np.array([min(f + k, n) * out_c for f in firsts]))


def max_shift(starts, ends, interleaved):
    """The largest shift (output start - input start) at which no pass overwrites input that
    it or a later pass still reads."""
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    read_later = np.minimum.accumulate(starts[::-1])[::-1]      # lowest start from pass j on
    if not interleaved:                                          # ... from pass j + 1 on
        read_later = np.append(read_later[1:], np.iinfo(np.int64).max // 4)
    written = np.maximum.accumulate(ends)
    return min(0, int((read_later - written).min()))          # 0: the output on the input


def kernel_shift(kind, p, in_shape, out_shape, kernel):
    """The largest safe shift for one kernel ('reference', 'scalar' or 'dsp'), or None when
    the kernel cannot run in place."""
    out_c = out_shape[-1]
    if kind not in WINDOWED or len(in_shape) != 3:
        return None
    if kernel == "dsp" and kind == "conv_2d":
        return max_shift(*dsp_conv_passes(p, in_shape, out_c), interleaved=False)
    if kernel == "dsp" and kind == "depthwise_conv_2d":
        from . import dsp
        _, across, _ = dsp.depthwise_axes(p)
        one_band = dsp.depthwise_plane(p)[0] == across["out"]
        return 0 if one_band and p["depth_multiplier"] == 1 else None
    if kernel == "dsp" and kind == "max_pool_2d" or kernel != "dsp":
        return max_shift(*pixel_passes(p, in_shape, out_c), interleaved=True)
    return None


def candidate(kind, p, in_name, in_shape, out_shape, kernels, align):
    """The InPlace the planner may use for an op computed by every kernel in `kernels` (the
    generated C may hold both the DSP and the scalar one), or None."""
    shifts = [kernel_shift(kind, p, in_shape, out_shape, k) for k in kernels]
    if not shifts or None in shifts:
        return None
    exact = "dsp" in kernels and kind == "depthwise_conv_2d"
    shift = min(shifts) // align * align                         # round down: further before
    if exact and shift < 0 or shift <= -int(np.prod(out_shape)):
        return None                                              # no bytes to share
    shift = 0 if exact else shift
    if exact:
        why = "writes each channel over that channel's input, already copied to its plane"
    elif shift == 0:
        why = "reads each input byte for the last time before it writes over it"
    else:
        why = (f"its output starts {-shift} B before its input: the windows it still reads "
               f"stay ahead of what it writes")
    return InPlace(in_name, shift, why)


def candidates(qmodel, kernels_of, align=4):
    """{op index: InPlace} for the ops of a prepared QModel whose kernels can run in place;
    kernels_of(op) -> the kernels the generated C computes that op with."""
    found = {}
    for i, op in enumerate(qmodel.ops):
        acts = qmodel.activations(op)
        out = qmodel.tensors[op.outputs[0]]
        if op.kind not in WINDOWED or op.params is None or not acts or \
                {acts[0].dtype, out.dtype} != {"int8"}:
            continue                                 # the byte arithmetic above is for int8
        option = candidate(op.kind, op.params, acts[0].name, acts[0].shape, out.shape,
                           kernels_of(op), align)
        if option is not None:
            found[i] = option
    return found
