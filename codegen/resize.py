"""The tuned resize_bilinear kernel's constants: per output row and column, the two input
rows (columns) it lies between and their weights in 1/1024.

TFLM's ResizeBilinearInteger (minitiny/quant/kernels/resize.py, reference/resize_bilinear.c.j2)
computes, for every output pixel, each axis's position in 1/1024 of an input pixel and from it
the lower and upper input index and the weights 1024 - w and w. They depend on the output
row or column alone, so the tuned kernel (templates/scalar/resize_bilinear.c.j2) reads them
from two small tables computed here, by the kernel's own bilinear_positions.
"""
import numpy as np

from minitiny.quant.kernels.resize import ONE, bilinear_positions


def axis(out_size, in_size, align_corners, half_pixel_centers):
    """(out_size, 4) int: lower index, upper index, weight of the lower, weight of the upper."""
    pos, lower, upper = bilinear_positions(out_size, in_size, align_corners, half_pixel_centers)
    w_upper = pos - ONE * lower
    return np.stack([lower, upper, ONE - w_upper, w_upper], axis=1)


def layer_context(p):
    args = (p["align_corners"], p["half_pixel_centers"])
    return {"rows": axis(p["out_h"], p["in_h"], *args), "cols": axis(p["out_w"], p["in_w"], *args)}
