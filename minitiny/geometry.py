"""Window geometry, written once: output sizes and padding of convolutions and pools.

Every part of minitiny that slides a window over an image (the float ops, the layers, the
int8 reference kernels, the code generator, the .tflite reader) asks this module, so the
rules below have exactly one home. They are TensorFlow's, as TFLite Micro computes them in
tensorflow/lite/kernels/padding.h (ComputeOutSize, ComputePaddingWithOffset):

    effective kernel  k_eff = (k - 1) * dilation + 1
    'valid'           out = ceil((in - k_eff + 1) / stride)      (0 when the window does not fit)
    'same'            out = ceil(in / stride)
                      pad_total = max((out - 1) * stride + k_eff - in, 0)
                      pad_before = pad_total // 2                (the odd row goes after)

and, for messages, how a batch of a shape is shown: shape_str((28, 28, 1)) = '(N, 28, 28, 1)'.
"""
import numpy as np

PADDINGS = ("valid", "same")


def effective_kernel(k, dilation=1):
    """The span of a dilated window: k taps, dilation - 1 holes between neighbours."""
    return (k - 1) * dilation + 1


def out_size(padding, size, k, stride, dilation=1):
    """Output length along one axis (TFLM ComputeOutSize, C integer division)."""
    k_eff = effective_kernel(k, dilation)
    if padding == "same":
        return (size + stride - 1) // stride
    return (size + stride - k_eff) // stride if size >= k_eff else 0


def same_padding(size, k, stride, dilation=1):
    """TensorFlow's 'same' rule along one axis -> (out, pad_before, pad_after)."""
    out = out_size("same", size, k, stride)
    total = max((out - 1) * stride + effective_kernel(k, dilation) - size, 0)
    return out, total // 2, total - total // 2


def pad_before(padding, size, k, stride, dilation=1):
    """Rows (or columns) of padding before the first one: 0 for 'valid'."""
    return same_padding(size, k, stride, dilation)[1] if padding == "same" else 0


def pair(v, what="value"):
    """An int or a pair of positive ints -> (a, b); `what` names it in the error."""
    v = (v, v) if isinstance(v, (int, np.integer)) else \
        tuple(v) if isinstance(v, (tuple, list, np.ndarray)) else (v,)
    if len(v) != 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                              and n >= 1 for n in v):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {v!r}")
    return int(v[0]), int(v[1])


def check_padding(padding, what="padding"):
    """'VALID', 'same', ... -> 'valid' or 'same'; anything else is an error naming `what`."""
    p = str(padding).lower()
    if p not in PADDINGS:
        raise ValueError(f"{what} must be 'valid' or 'same', got {padding!r}")
    return p


def shape_str(shape):
    """(28, 28, 1) -> '(N, 28, 28, 1)': how errors and summaries show a batch of a shape."""
    return "(N" + "".join(f", {d}" for d in shape) + ("," if not shape else "") + ")"
