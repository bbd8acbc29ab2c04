"""Data helpers for the TinyML workflow's step 2: split, normalise, window, encode.

    train_val_test_split   60/20/20 by default, optionally stratified (class balance kept)
    Normalizer             statistics from the TRAINING split only, then applied to all;
                           get_config() gives the offset and scale the device must apply
    sliding_windows        (T, channels) sensor streams -> (n, window, channels) examples
    one_hot                class indices -> one-hot rows (to_categorical: Keras' name)
    check_finite           NaN / inf refused with the array's name and the first bad index
    Sequence, Dataset      batches for fit: Keras' Sequence and a small tf.data.Dataset
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


# ---- batches for fit: Keras' Sequence and a small tf.data Dataset -----------------------
AUTOTUNE = -1           # tf.data.AUTOTUNE, for prefetch(); minitiny reads in order anyway


class Sequence:
    """keras.utils.Sequence (Keras 3 calls it PyDataset): a data set served in batches.

    Subclass it with `__len__` (batches per epoch) and `__getitem__(i)` -> batch i, an
    (x, y) or (x, y, sample_weight) tuple; fit calls `on_epoch_end()` after every epoch
    and, with shuffle=True, visits the batches in a new order each epoch (as Keras does).
    Any object with __len__ and __getitem__ works the same; subclassing is optional."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        """Keras' loading parallelism: minitiny reads the batches one at a time, in order,
        which gives the same batches, so these settings change nothing here."""

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__: the number "
                                  "of batches in an epoch")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index): "
                                  "batch number `index`, as (x, y)")

    def on_epoch_end(self):
        pass

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def _stack(elements):
    """Elements (arrays, or tuples of arrays) -> one batch of the same structure."""
    if isinstance(elements[0], tuple):
        return tuple(np.stack(part) for part in zip(*elements))
    return np.stack(elements)


class Dataset:
    """The part of tf.data.Dataset that Keras guides feed to fit (and to the converter):

        ds = Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(32).prefetch(AUTOTUNE)
        model.fit(ds, epochs=5)

    A Dataset is a recipe: every iteration (every epoch) runs it again from the start, so
    shuffle() draws a new order each time. Elements are NumPy arrays, or tuples of them."""

    def __init__(self, elements, length=None):
        self._elements = elements          # () -> a new iterator over the elements
        self._length = length              # the number of elements, None if unknown

    @staticmethod
    def from_tensor_slices(tensors):
        """One element per row (first axis) of an array, or of each array of a tuple."""
        if isinstance(tensors, dict):
            raise ValueError("Dataset.from_tensor_slices: dict elements are not implemented "
                             "in minitiny; pass an array or a tuple (x, y)")
        structured = isinstance(tensors, tuple)
        parts = [_as_array(t, "from_tensor_slices") for t in (tensors if structured
                                                              else (tensors,))]
        if any(p.ndim == 0 for p in parts) or len({len(p) for p in parts}) != 1:
            raise ValueError("Dataset.from_tensor_slices needs arrays with the same first "
                             f"dimension, got shapes {[p.shape for p in parts]}")
        n = len(parts[0])

        def elements():
            for i in range(n):
                yield tuple(p[i] for p in parts) if structured else parts[0][i]
        return Dataset(elements, n)

    def batch(self, batch_size, drop_remainder=False):
        """Consecutive elements stacked into batches; the last may be smaller."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")

        def elements():
            buffer = []
            for e in self._elements():
                buffer.append(e)
                if len(buffer) == batch_size:
                    yield _stack(buffer)
                    buffer = []
            if buffer and not drop_remainder:
                yield _stack(buffer)
        n = self._length
        return Dataset(elements, None if n is None else
                       n // batch_size if drop_remainder else -(-n // batch_size))

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True):
        """tf.data's buffered shuffle: keep `buffer_size` elements, emit a random one and
        put the next in its place (a buffer as large as the data is a full shuffle).
        Draws from minitiny.random unless a seed is given."""
        if not isinstance(buffer_size, (int, np.integer)) or buffer_size < 1:
            raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
        if not reshuffle_each_iteration and seed is None:
            seed = int(mt_random.rng().integers(2**63))   # one order, kept for ever
        fixed = mt_random.rng(seed) if seed is not None and reshuffle_each_iteration else None

        def elements():
            if not reshuffle_each_iteration:
                rng = mt_random.rng(seed)                 # the same order every time
            else:
                rng = fixed if fixed is not None else mt_random.rng()
            buffer = []
            for e in self._elements():
                if len(buffer) < buffer_size:
                    buffer.append(e)
                    continue
                i = int(rng.integers(len(buffer)))
                yield buffer[i]
                buffer[i] = e
            while buffer:
                i = int(rng.integers(len(buffer)))
                buffer[i], buffer[-1] = buffer[-1], buffer[i]
                yield buffer.pop()
        return Dataset(elements, self._length)

    def map(self, fn):
        """fn(element) for each element (fn(x, y) when elements are tuples)."""
        def elements():
            for e in self._elements():
                out = fn(*e) if isinstance(e, tuple) else fn(e)
                yield tuple(np.asarray(getattr(o, "data", o)) for o in out) \
                    if isinstance(out, tuple) else np.asarray(getattr(out, "data", out))
        return Dataset(elements, self._length)

    def take(self, count):
        """The first `count` elements (all of them for count=-1)."""
        if count < 0:
            return self

        def elements():
            for i, e in zip(range(count), self._elements()):
                yield e
        return Dataset(elements, None if self._length is None else min(count, self._length))

    def repeat(self, count=None):
        """The elements `count` times over (for ever with None: give fit steps_per_epoch)."""
        def elements():
            i = 0
            while count is None or i < count:
                yield from self._elements()
                i += 1
        return Dataset(elements, None if count is None or self._length is None
                       else count * self._length)

    def cache(self, filename=""):
        """Keep the elements after the first pass (a map's work is done once)."""
        if filename:
            raise ValueError("Dataset.cache(filename): caching to a file is not implemented "
                             "in minitiny; use cache() to keep the elements in memory")
        kept = []

        def elements():
            if kept:
                yield from kept[0]
                return
            seen = []
            for e in self._elements():
                seen.append(e)
                yield e
            kept.append(seen)
        return Dataset(elements, self._length)

    def prefetch(self, buffer_size=AUTOTUNE):
        """A no-op: minitiny reads in the training thread (tf.data overlaps the reads)."""
        return self

    def __iter__(self):
        return iter(self._elements())

    as_numpy_iterator = __iter__

    def cardinality(self):
        return -2 if self._length is None else self._length          # tf: -2 unknown

    def __len__(self):
        if self._length is None:
            raise TypeError("the length of this Dataset is unknown (repeat() or unknown "
                            "input); give fit steps_per_epoch")
        return self._length
