"""Neural-network ops on Tensors, NHWC (as TFLite): convolutions, pooling, dropout.

Each op computes its forward pass with NumPy and, right beside it, its backward pass.
Images are (N, H, W, C); kernels keep Keras' layouts: Conv2D (kh, kw, C_in, C_out),
DepthwiseConv2D (kh, kw, C_in, M).

Every op works on windows: output pixel (oh, ow) sees input rows oh*sh + i and columns
ow*sw + j for kernel offsets 0 <= i < kh, 0 <= j < kw (after padding). Two tricks keep
NumPy fast without any Python loop over pixels:
* im2col: a strided *view* (no copy) lists every window; one reshape (the only copy)
  turns the windows into rows of a matrix, and the convolution becomes one matmul.
* Forward of depthwise conv and pooling: a loop over the kh*kw kernel OFFSETS, each one
  a whole-image NumPy operation on the strided slice x[:, i::sh, j::sw].
* col2im / pooling backward: a loop over the kh*kw kernel OFFSETS (not over pixels);
  offset (i, j) touches the strided slice x[:, i::sh, j::sw] once, so gradients of
  overlapping windows add up with plain `+=` (no slow np.add.at).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import geometry
from . import random as _random
from .tensor import Tensor


# ---- geometry (the rules: minitiny/geometry.py) --------------------------------------
def _geometry(op, x_shape, k, strides, padding):
    """Output size and padding per spatial axis -> (Ho, Wo, ((top, bottom), (left, right)))."""
    padding = geometry.check_padding(padding, f"{op}: padding")
    out, pads = [], []
    for n, kk, s in zip(x_shape[1:3], k, strides):
        if padding == "same":
            o, before, after = geometry.same_padding(n, kk, s)
        else:
            o, before, after = geometry.out_size("valid", n, kk, s), 0, 0
            if n < kk:
                raise ValueError(f"{op}: window {k[0]}x{k[1]} is larger than the input "
                                 f"{x_shape[1]}x{x_shape[2]} (input shape {x_shape}) "
                                 "with padding 'valid'")
        out.append(o)
        pads.append((before, after))
    return out[0], out[1], tuple(pads)


def _check_image(op, x):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected an NHWC input (N, H, W, C), got shape {x.shape}")


def _pad(xd, pads, value=0.0):
    # (N, H, W, C) -> (N, H + top + bottom, W + left + right, C), border filled with value
    if pads == ((0, 0), (0, 0)):
        return xd
    (top, bottom), (left, right) = pads
    n, h, w, c = xd.shape
    xp = np.full((n, h + top + bottom, w + left + right, c), value, xd.dtype)
    xp[:, top:top + h, left:left + w, :] = xd
    return xp


def _offset(a, i, j, ho, wo, strides):
    """The strided slice that kernel offset (i, j) sees: a[:, i + sh*oh, j + sw*ow, :]."""
    sh, sw = strides
    return a[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]   # (N, Ho, Wo, C)


def _windows(xp, k, ho, wo, strides):
    """(N, Hp, Wp, C) -> view (N, Ho, Wo, kh, kw, C) of every window, no copy."""
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (xp.shape[0], ho, wo, k[0], k[1], xp.shape[3]),
                      (s0, s1 * strides[0], s2 * strides[1], s1, s2, s3), writeable=False)


def _im2col(xp, k, ho, wo, strides):
    """(N, Hp, Wp, C) -> (N*Ho*Wo, kh*kw*C): row (n, oh, ow) lists window (oh, ow)'s values
    in (i, j, c) order, the order of the kernel reshaped to (kh*kw*C, C_out)."""
    n, c = xp.shape[0], xp.shape[3]
    if c >= 4:      # one reshape of the strided view of all windows is the only copy
        return _windows(xp, k, ho, wo, strides).reshape(n * ho * wo, k[0] * k[1] * c)
    # With 1-3 channels a window holds only a few contiguous values, which NumPy copies a
    # few at a time. Instead copy channel planes, whole image rows at once: row (i, j, c) of
    # the transposed matrix is plane c of the image seen by kernel offset (i, j). Its
    # transpose (a view, Fortran order) is the same (N*Ho*Wo, kh*kw*C) matrix; BLAS
    # multiplies either order at the same speed.
    planes = np.ascontiguousarray(xp.transpose(3, 0, 1, 2)) \
        .reshape(c * n, *xp.shape[1:3], 1)                            # (C*N, Hp, Wp, 1)
    cols = np.empty((k[0], k[1], c * n, ho, wo, 1), xp.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            cols[i, j] = _offset(planes, i, j, ho, wo, strides)        # (C*N, Ho, Wo, 1)
    return cols.reshape(k[0] * k[1] * c, n * ho * wo).T


def _crop(gxp, pads, h, w):
    (top, _), (left, _) = pads
    return gxp[:, top:top + h, left:left + w, :]


# ---- convolution --------------------------------------------------------------------------
def conv2d(x, w, b=None, strides=(1, 1), padding="valid"):
    """out[n, oh, ow, co] = b[co] + sum_{i, j, ci} xp[n, oh*sh + i, ow*sw + j, ci] w[i, j, ci, co]

    x (N, H, W, C_in), w (kh, kw, C_in, C_out), b (C_out,) -> (N, Ho, Wo, C_out)
    """
    _check_image("conv2d", x)
    if w.ndim != 4 or w.shape[2] != x.shape[3]:
        raise ValueError(f"conv2d: input has {x.shape[3]} channels (shape {x.shape}) but the "
                         f"kernel (kh, kw, C_in, C_out) has shape {w.shape}")
    if b is not None and b.shape != (w.shape[3],):
        raise ValueError(f"conv2d: bias shape {b.shape} != ({w.shape[3]},) for kernel {w.shape}")
    strides = geometry.pair(strides, "conv2d strides")
    kh, kw, cin, cout = w.shape
    n, h, wd = x.shape[:3]
    ho, wo, pads = _geometry("conv2d", x.shape, (kh, kw), strides, padding)

    cols = _im2col(_pad(x.data, pads), (kh, kw), ho, wo, strides)   # (N*Ho*Wo, kh*kw*C_in)
    w2 = w.data.reshape(kh * kw * cin, cout)                      # (kh*kw*C_in, C_out)
    out = cols @ w2                                               # (N*Ho*Wo, C_out)
    if b is not None:
        out += b.data
    parents = (x, w) if b is None else (x, w, b)

    def backward(g):
        g2 = g.reshape(-1, cout)                                  # (N*Ho*Wo, C_out)
        gw = (cols.T @ g2).reshape(w.shape) if w.requires_grad else None   # dL/dw = cols^T g
        gx = None
        if x.requires_grad:
            # col2im, one kernel offset at a time: the input pixel that offset (i, j) saw
            # gets g @ w[i, j]^T. (One matmul per offset writes contiguous blocks; slicing
            # them out of one big (N*Ho*Wo, kh*kw*C_in) product is ~2x slower.)
            gxp = np.zeros((n, h + sum(pads[0]), wd + sum(pads[1]), cin), g.dtype)
            for i in range(kh):
                for j in range(kw):
                    _offset(gxp, i, j, ho, wo, strides)[...] += \
                        (g2 @ w.data[i, j].T).reshape(n, ho, wo, cin)
            gx = _crop(gxp, pads, h, wd)
        if b is None:
            return gx, gw
        # dL/db = sum of g over every pixel, as ones @ g: NumPy's g.sum(axis=0) over a tall,
        # narrow matrix is ~20x slower than this matrix-vector product.
        gb = np.ones(len(g2), g2.dtype) @ g2 if b.requires_grad else None
        return gx, gw, gb
    return Tensor.make(out.reshape(n, ho, wo, cout), parents, backward)


def depthwise_conv2d(x, w, b=None, strides=(1, 1), padding="valid"):
    """Each input channel c has its own M filters; output channel c*M + m (TensorFlow's order):

    out[n, oh, ow, c*M + m] = b[c*M + m] + sum_{i, j} xp[n, oh*sh + i, ow*sw + j, c] w[i, j, c, m]

    x (N, H, W, C), w (kh, kw, C, M), b (C*M,) -> (N, Ho, Wo, C*M)
    """
    _check_image("depthwise_conv2d", x)
    if w.ndim != 4 or w.shape[2] != x.shape[3]:
        raise ValueError(f"depthwise_conv2d: input has {x.shape[3]} channels (shape {x.shape}) "
                         f"but the kernel (kh, kw, C_in, M) has shape {w.shape}")
    kh, kw, c, m = w.shape
    if b is not None and b.shape != (c * m,):
        raise ValueError(f"depthwise_conv2d: bias shape {b.shape} != ({c * m},) "
                         f"for kernel {w.shape}")
    strides = geometry.pair(strides, "depthwise_conv2d strides")
    n, h, wd = x.shape[:3]
    ho, wo, pads = _geometry("depthwise_conv2d", x.shape, (kh, kw), strides, padding)
    xp = _pad(x.data, pads)
    offsets = [(i, j) for i in range(kh) for j in range(kw)]

    # One multiply-add per kernel offset and multiplier on whole (N, Ho, Wo, C) images, so
    # NumPy's inner loop runs along the C contiguous channels.
    acc = np.zeros((m, n, ho, wo, c), np.result_type(x.data, w.data))     # (M, N, Ho, Wo, C)
    for i, j in offsets:
        xs = _offset(xp, i, j, ho, wo, strides)                           # (N, Ho, Wo, C)
        for k in range(m):
            acc[k] += xs * w.data[i, j, :, k]
    out = acc.transpose(1, 2, 3, 4, 0).reshape(n, ho, wo, c * m)        # channel c*M + k
    if b is not None:
        out += b.data
    parents = (x, w) if b is None else (x, w, b)

    def backward(g):
        gm = np.ascontiguousarray(g.reshape(n, ho, wo, c, m).transpose(4, 0, 1, 2, 3))
        gw = np.empty_like(w.data) if w.requires_grad else None
        gxp = np.zeros(xp.shape, g.dtype) if x.requires_grad else None
        ones = np.ones(n * ho * wo, g.dtype)
        for i, j in offsets:
            xs = _offset(xp, i, j, ho, wo, strides)
            for k in range(m):
                if gw is not None:     # dL/dw[i, j, c, k] = sum over n, oh, ow of x_ij * g_k
                    gw[i, j, :, k] = ones @ (xs * gm[k]).reshape(-1, c)
                if gxp is not None:    # dL/dx_ij += g_k * w[i, j, :, k]
                    _offset(gxp, i, j, ho, wo, strides)[...] += gm[k] * w.data[i, j, :, k]
        gx = _crop(gxp, pads, h, wd) if gxp is not None else None
        if b is None:
            return gx, gw
        gb = ones @ g.reshape(-1, c * m) if b.requires_grad else None    # dL/db = sum g
        return gx, gw, gb
    return Tensor.make(out, parents, backward)


# ---- pooling ------------------------------------------------------------------------------
def _pool_window(name, x, pool_size, strides, padding):
    """The checked window of a pool: (kh, kw), strides (default: the window, as Keras) and
    (Ho, Wo, pads) of x (N, H, W, C)."""
    _check_image(name, x)
    k = geometry.pair(pool_size, f"{name} pool_size")
    strides = k if strides is None else geometry.pair(strides, f"{name} strides")
    return k, strides, _geometry(name, x.shape, k, strides, padding)


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """out[n, oh, ow, c] = max_{i, j} xp[n, oh*sh + i, ow*sw + j, c]   (xp padded with -inf)

    x (N, H, W, C) -> (N, Ho, Wo, C). strides default to pool_size (Keras).
    """
    k, strides, (ho, wo, pads) = _pool_window("max_pool2d", x, pool_size, strides, padding)
    h, wd = x.shape[1:3]
    xp = _pad(x.data, pads, value=-np.inf)
    offsets = [(i, j) for i in range(k[0]) for j in range(k[1])]

    out = _offset(xp, 0, 0, ho, wo, strides).copy()               # (N, Ho, Wo, C)
    for i, j in offsets[1:]:                                      # running max over offsets
        np.maximum(out, _offset(xp, i, j, ho, wo, strides), out=out)
    overlap = strides[0] < k[0] or strides[1] < k[1]
    tiled = strides == k and (ho * k[0], wo * k[1]) == xp.shape[1:3]   # each input: 1 window

    def backward(g):
        # d max/dx = 1 at the window's winner, 0 elsewhere. The winner is the first offset
        # whose value equals the max (found again here: cheaper than remembering argmax),
        # so a window of ties (zeros after relu) sends g to one place only.
        gxp = (np.empty if tiled else np.zeros)(xp.shape, g.dtype)
        taken = np.zeros(out.shape, bool)
        win = np.empty(out.shape, bool)
        for i, j in offsets:
            np.equal(_offset(xp, i, j, ho, wo, strides), out, out=win)
            win &= ~taken
            taken |= win
            if overlap:                                           # windows share inputs: add
                _offset(gxp, i, j, ho, wo, strides)[...] += g * win
            else:                                                 # each input in one window
                np.multiply(g, win, out=_offset(gxp, i, j, ho, wo, strides))
        return (_crop(gxp, pads, h, wd),)
    return Tensor.make(out, (x,), backward)


def _in_bounds_counts(size, k, stride, out, before):
    """How many of the k window positions of each output fall inside [0, size)."""
    start = np.arange(out) * stride - before
    return np.minimum(start + k, size) - np.maximum(start, 0)


def avg_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """out[n, oh, ow, c] = mean of the in-bounds x in the window (TF divides 'same' windows
    at the border by the number of in-bounds elements, not by kh*kw).

    x (N, H, W, C) -> (N, Ho, Wo, C). strides default to pool_size (Keras).
    """
    k, strides, (ho, wo, pads) = _pool_window("avg_pool2d", x, pool_size, strides, padding)
    h, wd = x.shape[1:3]
    counts = np.outer(_in_bounds_counts(h, k[0], strides[0], ho, pads[0][0]),
                      _in_bounds_counts(wd, k[1], strides[1], wo, pads[1][0]))   # (Ho, Wo)
    inv = (1.0 / counts).astype(x.dtype)[:, :, None]              # (Ho, Wo, 1)
    xp = _pad(x.data, pads)                                       # zeros add nothing
    offsets = [(i, j) for i in range(k[0]) for j in range(k[1])]

    out = _offset(xp, 0, 0, ho, wo, strides).copy()               # (N, Ho, Wo, C)
    for i, j in offsets[1:]:                                      # window sums
        out += _offset(xp, i, j, ho, wo, strides)
    out *= inv

    def backward(g):                          # d out/dx = 1/count for every x in the window
        gs = g * inv
        gxp = np.zeros(xp.shape, g.dtype)
        for i, j in offsets:
            _offset(gxp, i, j, ho, wo, strides)[...] += gs
        return (_crop(gxp, pads, h, wd),)
    return Tensor.make(out, (x,), backward)


def global_avg_pool2d(x):
    """(N, H, W, C) -> (N, C): the mean over every pixel of each channel."""
    _check_image("global_avg_pool2d", x)
    return x.mean(axis=(1, 2))


# ---- regularisation -----------------------------------------------------------------------
def dropout(x, rate, training=False, seed=None):
    """Inverted dropout: in training zero each value with probability `rate` and scale the
    survivors by 1/(1 - rate), so inference needs no change (identity)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate!r}")
    if not training or rate == 0.0:
        return x
    keep = _random.rng(seed).random(x.shape, dtype=np.float32) >= rate
    return x * (keep * np.asarray(1.0 / (1.0 - rate), x.dtype))   # d/dx = mask / (1 - rate)
