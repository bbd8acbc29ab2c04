"""Data helpers for the TinyML workflow's step 2: split, normalise, window, encode.

    train_val_test_split   60/20/20 by default, optionally stratified (class balance kept)
    Normalizer             statistics from the TRAINING split only, then applied to all;
                           get_config() gives the offset and scale the device must apply
    sliding_windows        (T, channels) sensor streams -> (n, window, channels) examples
    one_hot                class indices -> one-hot rows (to_categorical: Keras' name)
    check_finite           NaN / inf refused with the array's name and the first bad index
"""
import numpy as np

from minitiny import random as mt_random


def check_finite(a, name, dtype=None):
    """Raise a clear error if `a` holds NaN or +-inf: which array, where, which value.

    With `dtype` (the float type the model computes in), a value beyond its range is
    refused too: float64 data above float32's 3.4e38 would turn into inf on conversion."""
    a = np.asarray(a)
    if a.dtype.kind not in "fc":
        return
    limit = np.inf
    if dtype is not None and a.dtype.kind == "f" and np.dtype(dtype).kind == "f" \
            and np.finfo(dtype).max < np.finfo(a.dtype).max:
        limit = float(np.finfo(dtype).max)
    # Fast path without a boolean temporary: a NaN or inf anywhere makes the sum non-finite
    # (inf - inf = NaN). A finite-but-huge array may overflow the sum; then look closely.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(a.sum(dtype=np.complex128 if a.dtype.kind == "c" else np.float64)) \
                and (limit == np.inf or a.size == 0 or -limit <= a.min() <= a.max() <= limit):
            return
        bad = ~np.isfinite(a) if limit == np.inf else ~(np.abs(a) <= limit)
    if not bad.any():
        return
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    where = idx[0] if len(idx) == 1 else idx
    if np.isfinite(a[idx]):
        raise ValueError(f"{name} holds {a[idx]!r} at index {where} (of shape {a.shape}), "
                         f"beyond the range of {np.dtype(dtype).name} (|value| <= {limit:.4g}), "
                         "the type the model computes in; rescale the data")
    raise ValueError(f"{name} contains {a[idx]} at index {where} (of shape {a.shape}); "
                     "remove or impute non-finite values before training")


def _as_array(a, name):
    try:
        return np.asarray(a)
    except Exception as e:          # ragged lists and the like
        raise ValueError(f"{name} cannot be turned into an array: {e}") from None


# ---- splits ------------------------------------------------------------------------------
def train_val_test_split(x, y, fractions=(0.6, 0.2, 0.2), shuffle=True, seed=None,
                         stratify=False):
    """Split (x, y) into ((x_train, y_train), (x_val, y_val), (x_test, y_test)).

    fractions: three numbers >= 0 summing to 1 (a 0 gives an empty split). The sizes are
    round(n * f_train), round(n * f_val) and the rest. shuffle draws from minitiny.random
    (or a generator of its own with `seed=`); stratify=True splits every class separately
    so each split keeps the class proportions of y (y must hold class indices).
    """
    x, y = _as_array(x, "x"), _as_array(y, "y")
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("x and y must be arrays with one row per sample")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}; they must match")
    try:
        fractions = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be three numbers, got {fractions!r}") from None
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three numbers >= 0 that sum to 1 "
                         f"(train, val, test), got {fractions}")
    if stratify and y.ndim != 1:
        raise ValueError(f"stratify=True needs y of class indices (shape (N,)), got shape "
                         f"{y.shape}")
    gen = mt_random.rng(seed)

    def cut(idx):                          # indices -> three index arrays by the fractions
        n = len(idx)
        n_train = int(round(n * fractions[0]))
        n_val = min(int(round(n * fractions[1])), n - n_train)
        return idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]

    if stratify:
        parts = ([], [], [])
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            if shuffle:
                idx = gen.permutation(idx)
            for p, s in zip(parts, cut(idx)):
                p.append(s)
        parts = [np.concatenate(p) for p in parts]
        # classes were appended one after the other: mix them (or restore the order)
        parts = [gen.permutation(p) if shuffle else np.sort(p) for p in parts]
    else:
        idx = gen.permutation(len(x)) if shuffle else np.arange(len(x))
        parts = cut(idx)
    return tuple((x[p], y[p]) for p in parts)


# ---- normalisation -----------------------------------------------------------------------
class Normalizer:
    """x_norm = (x - offset) / scale, per feature (the last axis), statistics from fit().

    method='standard': offset = mean, scale = std       (zero mean, unit variance)
    method='minmax':   offset = min,  scale = max - min (values in [0, 1])
    A feature that never varies gets scale 1 (no division by 0). Fit on the training
    split only: the validation and test data must look like unseen data would.
    """

    def __init__(self, method="standard"):
        if method not in ("standard", "minmax"):
            raise ValueError(f"method must be 'standard' or 'minmax', got {method!r}")
        self.method, self.offset, self.scale = method, None, None

    def fit(self, x):
        x = _as_array(x, "x").astype(np.float64)
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"Normalizer.fit needs at least one sample, got shape {x.shape}")
        check_finite(x, "x")
        axes = tuple(range(x.ndim - 1))     # all but the feature axis
        if self.method == "standard":
            offset, scale = x.mean(axis=axes), x.std(axis=axes)
        else:
            offset = x.min(axis=axes)
            scale = x.max(axis=axes) - offset
        scale = np.where(scale > 0, scale, 1.0)
        self.offset, self.scale = offset.astype(np.float32), scale.astype(np.float32)
        return self

    def _check(self, x):
        if self.offset is None:
            raise ValueError("Normalizer is not fitted yet: call fit(x_train) first")
        x = _as_array(x, "x")
        if x.shape[-1:] != self.offset.shape:
            raise ValueError(f"Normalizer was fitted on {self.offset.shape[0]} features "
                             f"(last axis), got data of shape {x.shape}")
        return x

    def transform(self, x):
        x = self._check(x)
        return ((x - self.offset) / self.scale).astype(np.float32)

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def inverse_transform(self, x_norm):
        x_norm = self._check(x_norm)
        return (x_norm * self.scale + self.offset).astype(np.float32)

    def get_config(self):
        """What deployment needs (e.g. in C): x_norm[i] = (x[i] - offset[i]) / scale[i]."""
        return {"method": self.method,
                "offset": None if self.offset is None else self.offset.tolist(),
                "scale": None if self.scale is None else self.scale.tolist()}

    @classmethod
    def from_config(cls, cfg):
        n = cls(cfg["method"])
        if cfg.get("offset") is not None:
            n.offset = np.asarray(cfg["offset"], dtype=np.float32)
            n.scale = np.asarray(cfg["scale"], dtype=np.float32)
        return n


# ---- time series -------------------------------------------------------------------------
def sliding_windows(series, window, step=1, labels=None, label_mode="last"):
    """Cut a (T, channels) or (T,) series into overlapping windows.

    Window i covers series[i*step : i*step + window]; there are (T - window) // step + 1.
    Returns windows (n, window, channels) — (n, window) for a 1-D series — or, with
    per-timestep `labels` (T,), (windows, window_labels (n,)) where a window's label is
    the label of its last step ('last') or its most frequent one ('majority'; ties go to
    the smaller label).
    """
    series = _as_array(series, "series")
    if series.ndim not in (1, 2):
        raise ValueError(f"series must be (T,) or (T, channels), got shape {series.shape}")
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    if isinstance(step, bool) or int(step) != step or step < 1:
        raise ValueError(f"step must be a positive integer, got {step!r}")
    window, step, T = int(window), int(step), len(series)
    if window > T:
        raise ValueError(f"window {window} is longer than the series ({T} time steps)")
    starts = np.arange(0, T - window + 1, step)                       # (n,)
    idx = starts[:, None] + np.arange(window)                         # (n, window)
    windows = series[idx]                                             # (n, window[, C])
    if labels is None:
        return windows
    labels = _as_array(labels, "labels")
    if labels.shape != (T,):
        raise ValueError(f"labels must have one entry per time step, shape ({T},), got "
                         f"{labels.shape}")
    if label_mode == "last":
        return windows, labels[idx[:, -1]]
    if label_mode == "majority":
        values, codes = np.unique(labels, return_inverse=True)        # works for any labels
        counts = np.zeros((len(starts), len(values)), dtype=np.int64)  # (n, distinct labels)
        np.add.at(counts, (np.repeat(np.arange(len(starts)), window), codes[idx].ravel()), 1)
        return windows, values[counts.argmax(axis=1)]                 # argmax: first = smallest
    raise ValueError(f"label_mode must be 'last' or 'majority', got {label_mode!r}")


# ---- labels ------------------------------------------------------------------------------
def one_hot(y, num_classes=None):
    """Class indices (N,) -> float32 (N, num_classes) with a 1 in each row's class column."""
    y = _as_array(y, "y")
    if y.size and (y.dtype.kind not in "iub" and not np.all(y == np.round(y))):
        raise ValueError("one_hot needs integer class indices")
    y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ValueError(f"label {y[i]} at y[{', '.join(map(str, i))}] is out of range "
                         f"[0, {num_classes})")
    out = np.zeros(y.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, y[..., None], 1.0, axis=-1)
    return out


def to_categorical(y, num_classes=None, dtype="float32"):
    """keras.utils.to_categorical: one_hot, after Keras' squeeze of a trailing axis of 1
    ((N, 1) labels give (N, num_classes) rows, not (N, 1, num_classes))."""
    y = _as_array(y, "y")
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    return one_hot(y, num_classes).astype(dtype, copy=False)
