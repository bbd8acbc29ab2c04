"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR of an (H, W, C) image to (H', W', C), with
TensorFlow's align_corners and half_pixel_centers. Neither requantizes: the output keeps
the input's scale and zero point, and an output value is an input value (nearest) or a
weighted average of four, rounded (bilinear).

Nearest: output row y reads input row in_y(y), computed as TFLM's GetNearestNeighbor does,
in float32 (reference/resize_nearest_neighbor.h); here once per row and column, as tables
the C indexes. Bilinear: TFLM's ResizeBilinearInteger (reference/resize_bilinear.h), all
integer: positions in 1/1024 of an input pixel,

    scale_10 = (1024 * in + out / 2) / out                  (align_corners: (in - 1) / (out - 1))
    pos = y * scale_10   (half_pixel_centers: + scale_10 / 2 - 512)
    y0 = max(pos / 1024, 0), y1 = min((pos + 1023) / 1024, in - 1)       (C division)
    out = round(sum of the four neighbours times their weights (1024 - (pos - 1024 y0)) or
          (pos - 1024 y0) per axis) / 2^20, half away from zero

TFLM: micro/kernels/resize_nearest_neighbor.cc, resize_bilinear.cc (Prepare checks, the
output size from the file's size input, which the output tensor's shape holds here).
"""
import numpy as np

from .common import fail, input_and_output, same_quantization

KINDS = ("resize_nearest_neighbor", "resize_bilinear")
# 16x8: nearest copies int16 values; TFLM's bilinear kernel takes float32 and int8 only
INT16_KINDS = ("resize_nearest_neighbor",)
INPUTS = (1, 1)
ONE = 1 << 10                        # ResizeBilinearInteger's fixed point: 1/1024 of a pixel


def nearest(out_size, in_size, align_corners, half_pixel_centers):
    """GetNearestNeighbor for every output index 0..out_size - 1, in float32 as TFLM."""
    f32 = np.float32
    scale = (f32(in_size - 1) / f32(out_size - 1) if align_corners and out_size > 1
             else f32(in_size) / f32(out_size))
    at = (np.arange(out_size, dtype=f32) + f32(0.5 if half_pixel_centers else 0.0)) * scale
    exact = at.astype(np.float64)                # TfLiteRound (half away from 0) / floor of the float32
    index = np.floor(exact + 0.5) if align_corners else np.floor(exact)      # values are >= 0
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return np.maximum(index, 0) if half_pixel_centers else index


def c_div(a, b):
    """C's integer division (toward zero), for int64 arrays."""
    return np.sign(a) * (np.abs(a) // b)


def scale_10(in_size, out_size, align_corners):
    if align_corners and out_size > 1:
        return (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return (ONE * in_size + out_size // 2) // out_size


def bilinear_positions(out_size, in_size, align_corners, half_pixel_centers):
    """ComputeInterpolationValuesInteger for every output index: (pos, lower, upper)."""
    s = scale_10(in_size, out_size, align_corners)
    pos = np.arange(out_size, dtype=np.int64) * s
    if half_pixel_centers:
        pos += s // 2 - ONE // 2
    return pos, np.maximum(c_div(pos, ONE), 0), np.minimum(c_div(pos + ONE - 1, ONE), in_size - 1)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    if len(x.shape) != 3 or len(out.shape) != 3 or x.shape[2] != out.shape[2]:
        fail(op, f"input {x.shape} and output {out.shape} must be (H, W, C) with the same C")
    same_quantization(op, x, out)
    align, half = bool(op.options.get("align_corners", False)), bool(op.options.get("half_pixel_centers", False))
    if align and half and op.kind == "resize_bilinear":
        fail(op, "align_corners and half_pixel_centers together: TFLM's resize_bilinear refuses them")
    (in_h, in_w, c), (out_h, out_w) = x.shape, out.shape[:2]
    p = dict(in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w, align_corners=align,
             half_pixel_centers=half, macs=0)
    if op.kind == "resize_nearest_neighbor":
        p.update(in_y=nearest(out_h, in_h, align, half), in_x=nearest(out_w, in_w, align, half))
    else:
        p.update(height_scale_10=scale_10(in_h, out_h, align), width_scale_10=scale_10(in_w, out_w, align))
    return p


def run(op, p, x):
    if op.kind == "resize_nearest_neighbor":
        return x[:, p["in_y"]][:, :, p["in_x"]]
    args = (p["align_corners"], p["half_pixel_centers"])
    y, y0, y1 = bilinear_positions(p["out_h"], p["in_h"], *args)
    xx, x0, x1 = bilinear_positions(p["out_w"], p["in_w"], *args)
    wy1, wx1 = (y - ONE * y0)[:, None, None], (xx - ONE * x0)[None, :, None]    # weights of y1, x1
    wy0, wx0 = ONE - wy1, ONE - wx1
    v = x.astype(np.int64)
    total = (v[:, y0][:, :, x0] * wy0 * wx0 + v[:, y1][:, :, x0] * wy1 * wx0
             + v[:, y0][:, :, x1] * wy0 * wx1 + v[:, y1][:, :, x1] * wy1 * wx1)
    if p["single_rounding"]:                                 # TFLITE_SINGLE_ROUNDING: floor
        return ((total + (1 << 19)) >> 20).astype(np.int8)
    return c_div(total + np.where(total > 0, 1 << 19, -(1 << 19)), 1 << 20).astype(np.int8)
