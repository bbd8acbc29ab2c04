"""Where the windows of a windowed op meet the image's edges: the clamps the C needs.

The int8 kernels of the tuned variants (templates/scalar/, templates/dsp/) and the float32
C clip each window to the image once per output pixel (templates/window.j2). `window_edges`
tells the templates, from the layer's constants, which of those clamps can ever change a
window, so that the C holds only those.
"""
def _how_often(flags):
    return "always" if all(flags) else "some" if any(flags) else "never"


def window_edges(p):
    """For each axis of a windowed op ("y", "x"), over every output position, how often the
    window (origin = out * stride - pad, kernel taps) is cut by the image's edges: "begin"
    (it starts in the padding before: origin < 0), "end" (it runs past the image:
    size - origin < kernel), "inside" (neither) each "never", "always" or "some"; and "empty"
    (some window has no tap inside the image). The templates clamp a window only where the
    clamp can change it, so the C holds no condition whose value the constants decide
    (a static analyser would rightly call it dead code) and no work the layer never needs."""
    edges = {}
    for axis, size, out, stride, pad, kernel in (
            ("y", p["in_h"], p["out_h"], p["stride_h"], p["pad_h"], p.get("kernel_h", p.get("pool_h"))),
            ("x", p["in_w"], p["out_w"], p["stride_w"], p["pad_w"], p.get("kernel_w", p.get("pool_w")))):
        origins = [int(o) * int(stride) - int(pad) for o in range(int(out))]
        begin = [o < 0 for o in origins]
        end = [int(size) - o < int(kernel) for o in origins]
        edges[axis] = {"begin": _how_often(begin), "end": _how_often(end),
                       "inside": _how_often([not b and not e for b, e in zip(begin, end)]),
                       "empty": any(min(int(size) - o, int(kernel)) <= max(-o, 0) for o in origins)}
    return edges


WINDOWED = ("conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d")
