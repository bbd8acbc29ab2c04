"""Metrics: numbers people read (accuracy, ...), computed in NumPy, never differentiated.

Each metric function takes the prepared labels and the model output for a batch and
returns one value per sample; `fit` and `evaluate` average them over the whole epoch
(weighted by batch size, as Keras does).

'accuracy' means what Keras makes of it, decided by shapes:
    output with one unit            -> binary_accuracy        (y_pred > 0.5) == y
    labels with fewer dims (indices) -> sparse_categorical_accuracy   argmax(y_pred) == y
    otherwise (one-hot labels)      -> categorical_accuracy   argmax(y_pred) == argmax(y)
The model may hand over logits instead of probabilities (see losses.py); argmax does not
care, and the binary threshold 0.5 on sigmoid(z) is the threshold 0 on z.
One deliberate difference from Keras: with a `from_logits=True` loss the model output IS
logits, so binary accuracy thresholds it at 0, not 0.5 (Keras' 0.5 there is a known trap).
"""
import numpy as np


def binary_accuracy(y_true, y_pred, threshold=0.5):
    # (N, ..., k) -> (N,): fraction of the k yes/no answers that are right, per sample
    hit = (y_pred > threshold) == (y_true > 0.5)
    return hit.reshape(len(hit), -1).mean(axis=1)


def categorical_accuracy(y_true, y_pred):
    hit = y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)
    return hit.reshape(len(hit), -1).mean(axis=1)


def sparse_categorical_accuracy(y_true, y_pred):
    hit = y_pred.argmax(axis=-1) == y_true.reshape(y_pred.shape[:-1])
    return hit.reshape(len(hit), -1).mean(axis=1)


def mean_squared_error(y_true, y_pred):
    d = (y_pred - y_true).reshape(len(y_pred), -1)
    return (d * d).mean(axis=1)


def mean_absolute_error(y_true, y_pred):
    return np.abs(y_pred - y_true).reshape(len(y_pred), -1).mean(axis=1)


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Metric:
    """A named per-sample metric. `__call__(target, out, logits)` where `logits` is None when
    `out` is the model's real output, or 'sigmoid' / 'softmax' when `out` holds the values
    before that final activation (what fit computes the loss from)."""

    def __init__(self, name, fn, kind):
        self.name, self.fn, self.kind = name, fn, kind

    def __call__(self, target, out, logits=None, from_logits_loss=False):
        if self.kind == "binary":
            threshold = 0.0 if (logits == "sigmoid" or from_logits_loss) else 0.5
            return binary_accuracy(target, out, threshold)
        if self.kind == "values" and logits is not None:   # mse / mae need the real output
            out = _sigmoid(out) if logits == "sigmoid" else _softmax(out)
        return self.fn(target, out)

    def __repr__(self):
        return f"Metric({self.name!r})"


_BY_NAME = {
    "binary_accuracy": (binary_accuracy, "binary"),
    "categorical_accuracy": (categorical_accuracy, "argmax"),
    "sparse_categorical_accuracy": (sparse_categorical_accuracy, "argmax"),
    "mean_squared_error": (mean_squared_error, "values"),
    "mean_absolute_error": (mean_absolute_error, "values"),
}
_ALIASES = {"acc": "accuracy", "mse": "mean_squared_error", "mae": "mean_absolute_error"}


def get(name, target_shape, output_shape):
    """The Metric for a name, given the label shape (no batch) and output shape (no batch)."""
    if not isinstance(name, str):
        raise ValueError(f"metrics are given by name (e.g. 'accuracy'), got {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key == "accuracy":
        if tuple(output_shape)[-1:] == (1,):
            key = "binary_accuracy"
        elif len(target_shape) < len(output_shape):
            key = "sparse_categorical_accuracy"
        else:
            key = "categorical_accuracy"
    if key not in _BY_NAME:
        raise ValueError(f"unknown metric {name!r}; choose from 'accuracy', "
                         + ", ".join(repr(k) for k in _BY_NAME))
    fn, kind = _BY_NAME[key]
    # the log shows the name the user asked for ('accuracy'), as Keras does
    shown = "accuracy" if name.lower() in ("accuracy", "acc") else name
    return Metric(shown, fn, kind)
