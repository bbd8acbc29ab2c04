"""Preprocessing and augmentation layers (Keras' names, arguments and meanings), NHWC.

    Rescaling(scale, offset=0)   x * scale + offset, always (training and inference)
    Resizing(height, width)      bilinear or nearest resize, always (tf.image.resize's rule)
    RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast
                                 random per image while training, the identity otherwise

Deployment (quant/lower.py): the random layers vanish from the int8 model, Rescaling folds
into the weights of the layer that reads it (so the int8 model takes the raw pixels, with no
extra op), Resizing is refused (resize the images before they reach the model).

Geometry. Every random transform is an affine map from an output pixel to the input point
it samples, about the image centre c = ((H-1)/2, (W-1)/2):

    (y_in, x_in) = c + A (y_out - c_y, x_out - c_x) - shift

and `sample` reads that point bilinearly (or the nearest pixel). A point outside the image
reads, per neighbouring pixel, what `fill_mode` says (the neighbour's index is mapped, as
scipy.ndimage maps it for order=1):
    reflect  d c b a | a b c d | d c b a     wrap     a b c d | a b c d | a b c d
    nearest  a a a a | a b c d | d d d d     constant k k k k | a b c d | k k k k
The output is linear in the image, so the gradient is the same weights read backwards.

Randomness: a layer with `seed=` has its own generator (the same augmentations on every
run); without one it draws from minitiny.random, like dropout.
"""
import math

import numpy as np

from minitiny import random as mt_random
from minitiny.layers import Layer
from minitiny.tensor import Tensor

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


# ---- resizing: a fixed linear map per axis --------------------------------------------------
def resize_matrix(n_in, n_out, interpolation="bilinear"):
    """(n_out, n_in) weights of a 1-D resize with half-pixel centres, as tf.image.resize
    (antialias off) and torch's interpolate(align_corners=False) compute it:
        bilinear  src = (i + 0.5) n_in / n_out - 0.5 (below 0: 0); blend floor(src) and the
                  next pixel (the last one at the edge) by the fraction of src
        nearest   src = min(floor((i + 0.5) n_in / n_out), n_in - 1)
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    m = np.zeros((n_out, n_in))
    i = np.arange(n_out)
    if interpolation == "nearest":
        m[i, np.minimum(np.floor((i + 0.5) * n_in / n_out).astype(int), n_in - 1)] = 1.0
        return m
    src = np.maximum((i + 0.5) * n_in / n_out - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    np.add.at(m, (i, lo), 1.0 - frac)
    np.add.at(m, (i, hi), frac)
    return m


def resize(x, size, interpolation="bilinear"):
    """(N, H, W, C) -> (N, size[0], size[1], C), a Tensor or an ndarray.
    out = Ry x Rx^T per image and channel;  dL/dx = Ry^T g Rx."""
    ry = resize_matrix(x.shape[1], size[0], interpolation)       # (Ho, H)
    rx = resize_matrix(x.shape[2], size[1], interpolation)       # (Wo, W)
    if not isinstance(x, Tensor):
        return np.einsum("ih,nhwc,jw->nijc", ry, x, rx, optimize=True).astype(x.dtype)
    out = np.einsum("ih,nhwc,jw->nijc", ry, x.data, rx, optimize=True).astype(x.dtype)

    def backward(g):
        return (np.einsum("ih,nijc,jw->nhwc", ry, g, rx, optimize=True).astype(x.dtype),)
    return Tensor.make(out, (x,), backward)


# ---- sampling an image at arbitrary points ---------------------------------------------------
def _fill_index(i, n, fill_mode):
    """Integer pixel indices (any range) -> (indices in [0, n), inside mask) by fill_mode."""
    inside = (i >= 0) & (i < n)
    if fill_mode == "reflect":
        period = 2 * n
        i = np.mod(i, period)
        i = np.where(i >= n, period - 1 - i, i)
    elif fill_mode == "wrap":
        i = np.mod(i, n)
    else:                                        # nearest; constant reads are masked below
        i = np.clip(i, 0, n - 1)
    return i, inside


def sample(x, ys, xs, fill_mode="reflect", fill_value=0.0, interpolation="bilinear"):
    """Read images x (N, H, W, C) at points ys, xs (N, Ho, Wo) -> (N, Ho, Wo, C).

    Bilinear: out = sum over the 4 neighbours of  weight * pixel  (weights (1-fy)(1-fx),
    (1-fy)fx, fy(1-fx), fy fx). A Tensor x gets a gradient: dL/dpixel = sum weight * g.
    """
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    n, h, w, _ = data.shape
    if interpolation == "nearest":
        corners = [(np.floor(ys + 0.5).astype(int), np.floor(xs + 0.5).astype(int),
                    np.ones(ys.shape))]
    else:
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        fy, fx = ys - y0, xs - x0
        corners = [(y0, x0, (1 - fy) * (1 - fx)), (y0, x0 + 1, (1 - fy) * fx),
                   (y0 + 1, x0, fy * (1 - fx)), (y0 + 1, x0 + 1, fy * fx)]
    batch = np.arange(n)[:, None, None]
    reads, out, constant = [], 0.0, np.zeros(ys.shape)
    for cy, cx, weight in corners:
        iy, in_y = _fill_index(cy, h, fill_mode)
        ix, in_x = _fill_index(cx, w, fill_mode)
        if fill_mode == "constant":
            constant += weight * ~(in_y & in_x)
            weight = weight * (in_y & in_x)
        reads.append((iy, ix, weight))
        out = out + weight[..., None] * data[batch, iy, ix]       # (N, Ho, Wo, C)
    out = (out + fill_value * constant[..., None]).astype(data.dtype)
    if not isinstance(x, Tensor):
        return out

    def backward(g):
        gx = np.zeros_like(data)
        for iy, ix, weight in reads:
            np.add.at(gx, (np.broadcast_to(batch, iy.shape), iy, ix), weight[..., None] * g)
        return (gx,)
    return Tensor.make(out, (x,), backward)


def affine_sample(x, matrices, shifts, fill_mode, fill_value=0.0, interpolation="bilinear"):
    """Per image a 2x2 matrix A (N, 2, 2) and a shift (N, 2) in pixels (y, x): the output
    pixel p reads the input at  c + A (p - c) - shift  (see the module docstring)."""
    h, w = x.shape[1], x.shape[2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    py, px = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")   # (H, W)
    a = np.asarray(matrices, dtype=np.float64)
    s = np.asarray(shifts, dtype=np.float64)
    ys = cy + a[:, 0, 0, None, None] * py + a[:, 0, 1, None, None] * px - s[:, 0, None, None]
    xs = cx + a[:, 1, 0, None, None] * py + a[:, 1, 1, None, None] * px - s[:, 1, None, None]
    return sample(x, ys, xs, fill_mode, fill_value, interpolation)


def rotation_matrices(angles):
    """Angles in radians (N,) -> (N, 2, 2) maps for a counter-clockwise rotation as the image
    is displayed (row 0 on top): the output pixel reads the input rotated back."""
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)


# ---- argument checks, named by layer ---------------------------------------------------------
def _factor_range(value, what, layer, low=-1.0, high=1.0, symmetric=True):
    """Keras' factor: a number f means (-f, f) (or (1-f, 1+f) style, by the caller); a pair
    (lower, upper) is taken as it is. Both ends must lie in [low, high]."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        pair = (-abs(float(value)), abs(float(value))) if symmetric else (float(value),) * 2
    else:
        try:
            pair = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            pair = ()
        if len(pair) != 2 or pair[0] > pair[1]:
            raise ValueError(f"layer {layer!r}: {what} must be a number or a pair (lower, "
                             f"upper) with lower <= upper, got {value!r}")
    if not (low <= pair[0] and pair[1] <= high):
        raise ValueError(f"layer {layer!r}: {what} must lie in [{low}, {high}], got {value!r}")
    return pair


def _choice(value, options, what, layer):
    if value not in options:
        raise ValueError(f"layer {layer!r}: {what} must be one of {options}, got {value!r}")
    return value


class _ImageLayer(Layer):
    """Shape check shared by the layers below: an (N, H, W, C) image batch."""

    def compute_output_shape(self, s):
        if len(s) != 3:
            self._expect("(N, H, W, C) images", s)
        return tuple(s)


class _RandomLayer(_ImageLayer):
    """Training: a random change per image; inference: the identity (Keras' rule)."""

    def __init__(self, seed=None, **kw):
        super().__init__(**kw)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"layer {self.name!r}: seed must be a non-negative integer, "
                             f"got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)

    def rng(self):
        return self._rng if self._rng is not None else mt_random.rng()

    def call(self, x, training=False):
        return self.augment(x) if training else x

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class _AffineLayer(_RandomLayer):
    def __init__(self, fill_mode="reflect", interpolation="bilinear", fill_value=0.0, **kw):
        super().__init__(**kw)
        self.fill_mode = _choice(fill_mode, FILL_MODES, "fill_mode", self.name)
        self.interpolation = _choice(interpolation, INTERPOLATIONS, "interpolation", self.name)
        self.fill_value = float(fill_value)

    def augment(self, x):
        a, shift = self.transforms(len(x), x.shape[1], x.shape[2])
        return affine_sample(x, a, shift, self.fill_mode, self.fill_value, self.interpolation)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


# ---- the layers ------------------------------------------------------------------------------
class Rescaling(Layer):
    """x * scale + offset, e.g. Rescaling(1/255) for pixels, Rescaling(1/127.5, offset=-1).
    d(out)/dx = scale."""

    def __init__(self, scale, offset=0.0, **kw):
        super().__init__(**kw)
        for what, v in (("scale", scale), ("offset", offset)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) \
                    or not math.isfinite(v):
                raise ValueError(f"layer {self.name!r}: {what} must be a finite number "
                                 f"(minitiny has no per-channel {what}), got {v!r}")
        self.scale, self.offset = float(scale), float(offset)

    def call(self, x, training=False):
        y = x * self.scale
        return y + self.offset if self.offset else y

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Resizing(_ImageLayer):
    """Resize every image to (height, width), in training and inference alike."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 **kw):
        super().__init__(**kw)
        for what, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"layer {self.name!r}: {what} must be a positive integer, "
                                 f"got {v!r}")
        if crop_to_aspect_ratio:
            raise ValueError(f"layer {self.name!r}: crop_to_aspect_ratio=True is not "
                             "implemented in minitiny; crop the images before they reach "
                             "the model")
        self.height, self.width = int(height), int(width)
        self.interpolation = _choice(interpolation, INTERPOLATIONS, "interpolation", self.name)

    def compute_output_shape(self, s):
        return (self.height, self.width, super().compute_output_shape(s)[2])

    def call(self, x, training=False):
        return resize(x, (self.height, self.width), self.interpolation)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation}


class RandomFlip(_RandomLayer):
    """Flips each image left-right and/or upside down, each with probability 1/2."""
    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", **kw):
        super().__init__(**kw)
        self.mode = _choice(mode, self.MODES, "mode", self.name)

    def augment(self, x):
        n, h, w, _ = x.shape
        flip_x = self.rng().random(n) < 0.5 if "horizontal" in self.mode else np.zeros(n, bool)
        flip_y = self.rng().random(n) < 0.5 if "vertical" in self.mode else np.zeros(n, bool)
        rows = np.where(flip_y[:, None], np.arange(h)[::-1], np.arange(h))    # (N, H)
        cols = np.where(flip_x[:, None], np.arange(w)[::-1], np.arange(w))    # (N, W)
        ys = np.broadcast_to(rows[:, :, None], (n, h, w)).astype(float)
        xs = np.broadcast_to(cols[:, None, :], (n, h, w)).astype(float)
        return sample(x, ys, xs, "nearest", 0.0, "nearest")      # exact pixel moves

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomRotation(_AffineLayer):
    """Rotates each image by a random angle in [lower, upper] * 2 pi, counter-clockwise for
    positive angles; factor=0.1 is (-0.1, 0.1), i.e. up to 36 degrees either way."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kw):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, **kw)
        self.factor = _factor_range(factor, "factor", self.name, -1e9, 1e9)

    def transforms(self, n, h, w):
        angles = self.rng().uniform(*self.factor, size=n) * 2 * math.pi
        return rotation_matrices(angles), np.zeros((n, 2))

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_AffineLayer):
    """Zooms each image by 1 + a random factor in [lower, upper] per axis: a positive
    factor zooms out (the content shrinks), a negative one zooms in. width_factor=None
    keeps the aspect ratio (the height's factor for both)."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kw):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, **kw)
        self.height_factor = _factor_range(height_factor, "height_factor", self.name)
        self.width_factor = None if width_factor is None else \
            _factor_range(width_factor, "width_factor", self.name)

    def transforms(self, n, h, w):
        zy = 1.0 + self.rng().uniform(*self.height_factor, size=n)
        zx = zy if self.width_factor is None else \
            1.0 + self.rng().uniform(*self.width_factor, size=n)
        a = np.zeros((n, 2, 2))
        a[:, 0, 0], a[:, 1, 1] = zy, zx
        return a, np.zeros((n, 2))

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": None if self.width_factor is None else list(self.width_factor)}


class RandomTranslation(_AffineLayer):
    """Shifts each image by a random fraction of its height (positive: down) and width
    (positive: right)."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kw):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, **kw)
        self.height_factor = _factor_range(height_factor, "height_factor", self.name)
        self.width_factor = _factor_range(width_factor, "width_factor", self.name)

    def transforms(self, n, h, w):
        shift = np.stack([self.rng().uniform(*self.height_factor, size=n) * h,
                          self.rng().uniform(*self.width_factor, size=n) * w], -1)
        return np.tile(np.eye(2), (n, 1, 1)), shift

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}


class RandomContrast(_RandomLayer):
    """Per image, a contrast factor k in [1 - lower, 1 + upper]; per channel
        out = clip((x - mean) k + mean, value_range)     (mean over the image's pixels)
    factor=0.2 is (0.2, 0.2): k in [0.8, 1.2]."""

    def __init__(self, factor, value_range=(0, 255), **kw):
        super().__init__(**kw)
        self.factor = _factor_range(factor, "factor", self.name, 0.0, 1.0, symmetric=False)
        self.value_range = tuple(float(v) for v in value_range)

    def augment(self, x):
        k = 1.0 + self.rng().uniform(-self.factor[0], self.factor[1], size=len(x))
        k = k.astype(x.dtype)[:, None, None, None]                   # (N, 1, 1, 1)
        mean = x.mean(axis=(1, 2), keepdims=True)                   # (N, 1, 1, C)
        return ((x - mean) * k + mean).clip(*self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


LAYERS = ("Rescaling", "Resizing", "RandomFlip", "RandomRotation", "RandomZoom",
          "RandomTranslation", "RandomContrast")
