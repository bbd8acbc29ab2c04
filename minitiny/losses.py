"""Losses: how wrong the model is, as one number to minimise (Keras names and defaults).

In teaching order:

    mean_squared_error               regression               mean((y_hat - y)^2)
    binary_crossentropy              yes/no (sigmoid)         -mean(y log p + (1-y) log(1-p))
    categorical_crossentropy         one-hot classes (softmax) -mean_n sum_c y_c log p_c
    sparse_categorical_crossentropy  class indices (softmax)  -mean_n log p_(y_n)

Numerical stability. log(p) of a probability that rounded to 0 is -inf, and the gradient of
softmax followed by log is a long chain of tiny numbers. Both go away when the loss is
computed from the logits z (the values before sigmoid / softmax):

    log softmax(z)_c = z_c - max(z) - log sum_k exp(z_k - max(z))      (never log 0)
    -[y log s(z) + (1-y) log(1-s(z))] = max(z,0) - y z + log(1 + e^-|z|)   (softplus form)

and the gradients become exactly  softmax(z) - y  and  sigmoid(z) - y.
`from_logits=True` says the model output IS the logits. With `from_logits=False` (Keras'
default) and a model that ends in a softmax / sigmoid activation, the model hands the loss
the pre-activation values anyway (`Model.fit` does it, as Keras does), so the maths is the
same either way. Only a model whose probabilities come from somewhere else falls back to
the clipped-probability formulas Keras uses (epsilon 1e-7).

Each loss has two halves, Prepare and Eval (as TFLite Micro splits its kernels):
`prepare(y, output_shape)` checks the labels once per `fit` (shape, range, finite) and
returns them in the form the step needs; `compute(target, out, logits)` runs every step.
Reduction is Keras' 'sum_over_batch_size': the mean of the per-sample losses. With
sample weights (fit's sample_weight / class_weight) each sample's terms are multiplied by
its weight before that mean: sum(w_n l_n) / N, as Keras divides by the batch size, not by
the sum of the weights.
"""
import numpy as np

from minitiny.geometry import shape_str
from minitiny.tensor import Tensor

EPSILON = 1e-7      # Keras' backend epsilon: clip probabilities into [eps, 1 - eps]


def _first_bad(mask):
    """Index tuple of the first True in mask."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _at(idx):
    """(2, 0) -> '2, 0' for messages like y[2, 0]."""
    return ", ".join(str(i) for i in idx)


def _spread(weight, ndim, dtype):
    """Per-sample weights (N,) shaped (N, 1, ..., 1) to scale a batch's terms; 1 for none."""
    if weight is None:
        return 1.0
    return np.asarray(weight, dtype=dtype).reshape((-1,) + (1,) * (ndim - 1))


class Loss:
    name = "loss"
    activation = None       # the output activation whose logits this loss can use directly

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Keras-style: loss(y_true, y_pred) -> scalar Tensor (y_pred: Tensor or array)."""
        y_pred = y_pred if isinstance(y_pred, Tensor) else Tensor(y_pred)
        target = self.prepare(np.asarray(y_true), y_pred.shape[1:], y_pred.dtype)
        return self.compute(target, y_pred, self.from_logits, sample_weight)

    def prepare(self, y, output_shape, dtype=np.float32):
        """Check labels y (N, ...) against the output shape (no batch); return the target
        array `compute` expects (float `dtype` values, or int class indices)."""
        raise NotImplementedError

    def compute(self, target, out, logits, weight=None):
        """The loss of a batch; `weight` (N,) weighs each sample's terms (Keras'
        sample_weight: the sum of weighted terms over the number of terms)."""
        raise NotImplementedError

    def get_config(self):
        return {"from_logits": self.from_logits}

    def __repr__(self):
        return f"{type(self).__name__}(from_logits={self.from_logits})"

    # ---- shared checks (Prepare) --------------------------------------------------------
    def _same_shape(self, y, output_shape):
        """y must have the output's shape; a (N,) y for a (N, 1) output becomes (N, 1)."""
        y = np.asarray(y)
        if y.ndim == 1 and tuple(output_shape) == (1,):
            y = y.reshape(-1, 1)                 # Keras expands rank-1 targets to (N, 1)
        if y.shape[1:] != tuple(output_shape):
            raise ValueError(f"loss '{self.name}' needs y of shape {shape_str(output_shape)} "
                             f"to match the model output, got y of shape "
                             f"{shape_str(y.shape[1:])}" + self._shape_hint(y, output_shape))
        return y

    def _shape_hint(self, y, output_shape):
        return ""

    def _check_probabilities(self, y):
        bad = (y < 0) | (y > 1)
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(f"loss '{self.name}' needs labels in [0, 1], "
                             f"got y[{_at(i)}] = {y[i]}")


# ---- 1. mean squared error (regression) ------------------------------------------------
class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __init__(self):
        super().__init__(from_logits=False)

    def get_config(self):
        return {}

    def prepare(self, y, output_shape, dtype=np.float32):
        return self._same_shape(y, output_shape).astype(dtype, copy=False)

    def compute(self, target, out, logits=False, weight=None):
        # L = mean(w (y_hat - y)^2)      dL/dy_hat = 2 w (y_hat - y) / n
        diff = out.data - target
        n = diff.size
        wdiff = diff if weight is None else diff * _spread(weight, diff.ndim, diff.dtype)
        loss = np.asarray(np.vdot(wdiff, diff) / n, dtype=out.data.dtype)
        return Tensor.make(loss, (out,), lambda g: (g * (2.0 / n) * wdiff,))


# ---- 2. binary cross-entropy (sigmoid outputs, labels 0/1) -----------------------------
class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"
    activation = "sigmoid"

    def prepare(self, y, output_shape, dtype=np.float32):
        y = self._same_shape(y, output_shape).astype(dtype, copy=False)
        self._check_probabilities(y)
        return y

    def _shape_hint(self, y, output_shape):
        if tuple(output_shape) != (1,) and y.shape[1:] in ((), (1,)):
            return ("; for one yes/no output end the model with Dense(1, activation='sigmoid'),"
                    " or for class indices use sparse_categorical_crossentropy")
        return ""

    def compute(self, target, out, logits, weight=None):
        w = _spread(weight, out.ndim, out.dtype)
        if logits:
            # L = mean(w (max(z,0) - y z + log(1 + e^-|z|)))   dL/dz = w (sigmoid(z) - y) / n
            z, n = out.data, out.data.size
            loss = ((np.maximum(z, 0) - target * z + np.log1p(np.exp(-np.abs(z)))) * w).mean()
            e = np.exp(-np.abs(z))                   # sigmoid without overflow (tensor.py)
            sig = np.where(z >= 0, 1, e) / (1 + e)
            return Tensor.make(np.asarray(loss, dtype=z.dtype), (out,),
                               lambda g: (g * w * (sig - target) / n,))
        # Probabilities from elsewhere: Keras' clipped formula.
        p = out.clip(EPSILON, 1 - EPSILON)
        return -((p.log() * target + (1 - p).log() * (1 - target)) * w).mean()


# ---- 3. categorical cross-entropy (softmax outputs, one-hot labels) --------------------
class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"
    activation = "softmax"

    def prepare(self, y, output_shape, dtype=np.float32):
        if tuple(output_shape)[-1:] == (1,):
            raise ValueError(f"loss '{self.name}' over a single output unit is always 0; "
                             "for yes/no use Dense(1, activation='sigmoid') with "
                             "binary_crossentropy")
        y = self._same_shape(y, output_shape).astype(dtype, copy=False)
        self._check_probabilities(y)
        return y

    def _shape_hint(self, y, output_shape):
        if y.ndim == 1 or y.shape[1:] == (1,):
            return ("; y holds class indices: use sparse_categorical_crossentropy, "
                    "or one-hot encode it with minitiny.data.one_hot(y, "
                    f"{output_shape[-1]})")
        return ""

    def compute(self, target, out, logits, weight=None):
        if weight is not None:                       # -sum w y log p = -sum (w y) log p
            target = target * _spread(weight, target.ndim, target.dtype)
        if logits:
            return softmax_cross_entropy(out, target)
        # Probabilities from elsewhere: Keras renormalises, clips, then -sum y log p.
        p = (out / out.sum(axis=-1, keepdims=True)).clip(EPSILON, 1 - EPSILON)
        n = out.size // out.shape[-1]
        return -(p.log() * target).sum() * (1.0 / n)


def softmax_cross_entropy(z, target):
    """-mean_n sum_c y_c log softmax(z)_c for logits z (..., C) and target y of the same shape.

    dL/dz = (softmax(z) * sum_c y_c - y) / n, which is softmax(z) - y for one-hot rows.
    A sample weight w scales its row of y (w y is still a valid target here).
    """
    zc = z.data - z.data.max(axis=-1, keepdims=True)
    e = np.exp(zc)
    sum_e = e.sum(axis=-1, keepdims=True)
    log_p = zc - np.log(sum_e)                               # (..., C)
    n = z.data.size // z.data.shape[-1]
    loss = np.asarray(-np.vdot(target, log_p) / n, dtype=z.data.dtype)

    def backward(g):
        p = e / sum_e
        return (g / n * (p * target.sum(axis=-1, keepdims=True) - target),)
    return Tensor.make(loss, (z,), backward)


# ---- 4. sparse categorical cross-entropy (softmax outputs, class indices) --------------
class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    activation = "softmax"

    def prepare(self, y, output_shape, dtype=None):
        output_shape = tuple(output_shape)
        classes = output_shape[-1] if output_shape else 1
        if classes < 2:
            raise ValueError(
                f"loss '{self.name}' needs one output unit per class (at least 2), but the "
                f"model outputs {shape_str(output_shape)}; for two classes use "
                "Dense(1, activation='sigmoid') with binary_crossentropy, or "
                "Dense(2, activation='softmax')")
        y = np.asarray(y)
        want = output_shape[:-1]                 # one index per output position
        if y.shape[1:] == want + (1,):
            y = y.reshape(y.shape[:-1])          # (N, 1) labels -> (N,)
        if y.shape[1:] != want:
            hint = ""
            if y.shape[1:] == output_shape:
                hint = "; y looks one-hot: use categorical_crossentropy, or pass class indices"
            raise ValueError(f"loss '{self.name}' needs one class index per sample, y of "
                             f"shape {shape_str(want)}, got y of shape "
                             f"{shape_str(y.shape[1:])}{hint}")
        if y.dtype.kind == "f":
            frac = y != np.round(y)
            if frac.any():
                i = _first_bad(frac)
                raise ValueError(f"loss '{self.name}' needs integer class indices, "
                                 f"got y[{_at(i)}] = {y[i]}")
        elif y.dtype.kind not in "iub":
            raise ValueError(f"loss '{self.name}' needs integer class indices, "
                             f"got y of dtype {y.dtype}")
        bad = (y < 0) | (y >= classes)
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(f"label {y[i]} at y[{_at(i)}] is out of range [0, {classes}) for a "
                             f"model with {classes} output classes")
        return y.astype(np.intp)

    def compute(self, target, out, logits, weight=None):
        z = out.data.reshape(-1, out.shape[-1])                  # (n, C)
        labels = target.reshape(-1)                              # (n,)
        rows = np.arange(len(labels))
        w = 1.0 if weight is None else np.broadcast_to(           # (n,) each row's weight
            _spread(weight, target.ndim, z.dtype), target.shape).reshape(-1)
        if not logits:
            # Probabilities from elsewhere: Keras' clipped formula on the picked class.
            p = (out / out.sum(axis=-1, keepdims=True)).clip(EPSILON, 1 - EPSILON)
            picked = p.reshape(-1, out.shape[-1])[rows, labels]
            return -(picked.log() * w).mean()
        # L = -mean w log softmax(z)_y      dL/dz = w (softmax(z) - onehot(y)) / n
        zc = z - z.max(axis=-1, keepdims=True)
        e = np.exp(zc)
        sum_e = e.sum(axis=-1, keepdims=True)
        n = len(labels)
        loss = ((np.log(sum_e[:, 0]) - zc[rows, labels]) * w).sum() / n
        shape = out.shape

        def backward(g):
            grad = e / sum_e
            grad[rows, labels] -= 1.0
            grad *= g / n
            if weight is not None:
                grad *= w[:, None]
            return (grad.reshape(shape),)
        return Tensor.make(np.asarray(loss, dtype=z.dtype), (out,), backward)


# ---- lookup by Keras name ----------------------------------------------------------------
LOSSES = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_CLASSES = {c.__name__: c for c in (MeanSquaredError, BinaryCrossentropy,
                                    CategoricalCrossentropy, SparseCategoricalCrossentropy)}


def get(loss):
    """A Loss from a Keras name ('mse', 'sparse_categorical_crossentropy', ...) or instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str):
        key = loss.lower()
        if key in LOSSES:
            return LOSSES[key]()
        if loss in _CLASSES:
            return _CLASSES[loss]()
    raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} "
                     "or pass a minitiny.losses.Loss")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(cfg):
    cls = _CLASSES.get(cfg.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown loss class {cfg.get('class_name')!r}")
    return cls(**cfg.get("config", {}))
