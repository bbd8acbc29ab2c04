"""What fit, evaluate and predict read, as one stream of batches (Keras' data adapters).

    arrays x, y, sample_weight    sliced into batch_size batches, reshuffled every epoch
    a Sequence (len, [i])         len(seq) batches an epoch, in a new order when shuffled;
                                  seq.on_epoch_end() after each epoch
    a Dataset or other iterable   iterated afresh every epoch
    a generator (an iterator)     read on across epochs: steps_per_epoch batches each, or,
                                  without it, everything it yields in the first epoch

A batch from a Sequence or generator is (x, y) or (x, y, sample_weight), as in Keras;
predict also takes x alone. `steps` caps an epoch's batches; a source that runs dry before
it sets `ran_out` so fit can stop with Keras' warning instead of failing in the middle.
The model checks every batch (`check(x, y, sample_weight, where)`); arrays are checked
once, whole, before the first epoch.
"""
import numpy as np

from minitiny import random as mt_random
from minitiny.tensor import Tensor


def is_arrays(x):
    """True for the array-like inputs (ndarray, list, number, Tensor), False for batch
    sources (Sequence, Dataset, generator)."""
    return isinstance(x, (np.ndarray, list, tuple, Tensor, int, float, np.number)) or x is None


class ArrayBatches:
    """(x, target, weights) arrays already checked, cut into batches."""

    def __init__(self, arrays, batch_size, shuffle=False, steps=None):
        self.arrays, self.batch_size, self.shuffle = arrays, batch_size, shuffle
        self.n = len(arrays[0])
        self.steps = -(-self.n // batch_size) if steps is None else steps
        self.ran_out = False

    def epoch(self):
        order = mt_random.rng().permutation(self.n) if self.shuffle else None
        count = 0
        for start in range(0, self.n, self.batch_size):
            if count == self.steps:
                return
            idx = slice(start, start + self.batch_size) if order is None \
                else order[start:start + self.batch_size]
            yield tuple(None if a is None else a[idx] for a in self.arrays)
            count += 1
        self.ran_out = count < self.steps

    def end_epoch(self):
        pass


def unpack(batch, where, need_y):
    """A batch as Keras reads it -> (x, y, sample_weight); one error for a wrong shape."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        if need_y:
            raise ValueError(f"{where} is {_describe(batch)}, not a tuple: a batch must be "
                             "(x, y) or (x, y, sample_weight)")
        return batch, None, None
    if not 1 <= len(batch) <= 3 or (need_y and len(batch) == 1):
        raise ValueError(f"{where} is a tuple of {len(batch)} item(s) "
                         f"({', '.join(_describe(b) for b in batch)}): a batch must be "
                         "(x, y) or (x, y, sample_weight)")
    return tuple(batch) + (None,) * (3 - len(batch))


def _describe(v):
    shape = getattr(v, "shape", None)
    return f"{type(v).__name__} of shape {tuple(shape)}" if shape is not None \
        else type(v).__name__


class SourceBatches:
    """Batches from a Sequence, a Dataset / iterable, or a generator; each one unpacked and
    checked by `check(x, y, sample_weight, where)` as it arrives."""

    def __init__(self, source, check, steps=None, shuffle=False, need_y=True, what="fit"):
        self.source, self.check, self.need_y = source, check, need_y
        self.sequence = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        if not self.sequence and not hasattr(source, "__iter__"):
            raise ValueError(f"{what} takes arrays, a Sequence (with __len__ and "
                             "__getitem__), a Dataset, or a generator of batches; got "
                             f"{type(source).__name__}")
        one_shot = not self.sequence and iter(source) is source      # a generator
        self.iterator = source if one_shot else None
        self.kind = "Sequence" if self.sequence else "generator" if one_shot else \
            type(source).__name__
        if steps is None and not one_shot:
            try:
                steps = len(source)
            except TypeError:           # a Dataset of unknown length: one whole pass
                steps = None
        self.steps, self.shuffle, self.ran_out = steps, shuffle and self.sequence, False

    def _raw(self):
        if self.sequence:
            n = len(self.source)
            order = mt_random.rng().permutation(n) if self.shuffle else range(n)
            return (self.source[int(i)] for i in order)
        return self.iterator if self.iterator is not None else iter(self.source)

    def epoch(self):
        count = 0
        for batch in self._raw():
            yield self.check(*unpack(batch, f"batch {count} of the {self.kind}", self.need_y),
                             f"batch {count} of the {self.kind}")
            count += 1
            if count == self.steps:
                break
        self.ran_out = count == 0 or (self.steps is not None and count < self.steps)

    def end_epoch(self):
        if self.sequence and hasattr(self.source, "on_epoch_end"):
            self.source.on_epoch_end()


def sample_weights(sample_weight, class_weight, target, where):
    """fit's sample_weight (N,) or class_weight {class: weight} -> per-sample weights (N,)
    or None. Classes come from the prepared labels: indices, or argmax of one-hot rows, or
    rounded yes/no values; a class missing from the dict weighs 1 (Keras 3)."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError(f"{where}give sample_weight or class_weight, not both (as Keras)")
    n = len(target)
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise ValueError(f"{where}class_weight must be a dict {{class index: weight}}, "
                             f"got {type(class_weight).__name__}")
        if target.ndim > 2:
            raise ValueError(f"{where}class_weight needs one label per sample; these labels "
                             f"are shaped {target.shape[1:]} per sample")
        classes = target.argmax(axis=-1) if target.ndim == 2 and target.shape[1] > 1 \
            else np.round(target.reshape(n)).astype(np.int64)
        sample_weight = np.array([class_weight.get(int(c), 1.0) for c in classes])
        where += "class_weight "
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight.data if isinstance(sample_weight, Tensor) else sample_weight)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{where}sample_weight must hold numbers, got dtype {w.dtype}")
    if w.shape not in ((n,), (n, 1)):
        raise ValueError(f"{where}sample_weight must hold one weight per sample, shape "
                         f"({n},), got shape {w.shape}")
    w = w.reshape(n).astype(np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}sample_weight[{i}] = {w[i]}: weights must be finite and "
                         ">= 0")
    return w
