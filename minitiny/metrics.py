"""Metrics: numbers people read (accuracy, ...), computed in NumPy, never differentiated.

Each metric is a Keras-style stateful object: reset at the start of an epoch, updated with
every batch, read at the end. Accuracy, mse and mae are per-sample functions averaged over
the epoch (weighted by sample_weight, else by batch size, as Keras does); Precision,
Recall and AUC add up a confusion matrix over the epoch (Keras' definitions, AUC with its
200 thresholds, one curve per label with multi_label=True); top-k accuracy asks whether
the label is among the k best-scored classes. Names work in compile(metrics=[...]) as in
Keras: 'accuracy', 'mse', 'precision', 'recall', 'auc', 'top_k_categorical_accuracy', or
objects such as AUC(curve='PR').

'accuracy' means what Keras makes of it, decided by shapes:
    output with one unit            -> binary_accuracy        (y_pred > 0.5) == y
    labels with fewer dims (indices) -> sparse_categorical_accuracy   argmax(y_pred) == y
    otherwise (one-hot labels)      -> categorical_accuracy   argmax(y_pred) == argmax(y)
The model may hand over logits instead of probabilities (see losses.py); argmax does not
care, and the binary threshold 0.5 on sigmoid(z) is the threshold 0 on z.
One deliberate difference from Keras: with a `from_logits=True` loss the model output IS
logits, so binary accuracy thresholds it at 0, not 0.5 (Keras' 0.5 there is a known trap),
and Precision, Recall and AUC read the probabilities (the loss's sigmoid or softmax of
the logits), so their thresholds mean the same with or without from_logits.
"""
import numpy as np

from minitiny import arguments


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


def _in_top_k(scores, target, k):
    """True where the target class's score is among the k largest of its row; a score
    tied with the k-th largest counts as in (Keras' in_top_k: target >= k-th value)."""
    if k >= scores.shape[-1]:
        return np.ones(scores.shape[:-1], bool)
    kth = np.partition(scores, -k, axis=-1)[..., -k]                   # (N, ...)
    return np.take_along_axis(scores, target[..., None], axis=-1)[..., 0] >= kth


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    # one-hot labels: is the labelled class among the k best-scored?
    hit = _in_top_k(y_pred, y_true.argmax(axis=-1), k)
    return hit.reshape(len(hit), -1).mean(axis=1)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    # integer labels: is the labelled class among the k best-scored?
    hit = _in_top_k(y_pred, y_true.reshape(y_pred.shape[:-1]).astype(np.int64), k)
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


# ---- stateful metrics (Keras' API: reset_state, update_state, result) ------------------
class Metric:
    """A number accumulated over an epoch: `reset_state()`, `update_state(y_true, y_pred,
    sample_weight=None)` per batch, `result()` at the end (Keras' metric API).

    fit calls `update(target, out, logits, from_logits_loss, sample_weight)` instead, where
    `out` may hold the values before the model's final activation: `logits` is None when
    `out` is the model's real output, or 'sigmoid' / 'softmax' when it holds the values
    before that activation (what fit computes the loss from); `from_logits_loss` is the
    activation a from_logits=True loss implies ('sigmoid' / 'softmax'), or False."""

    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()          # Keras: 'precision', 'auc'
        self.reset_state()

    def reset_state(self):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def update(self, target, out, logits=None, from_logits_loss=False, sample_weight=None):
        self.update_state(target, out, sample_weight)

    def check(self, target_shape, output_shape):
        """Refuse labels this metric cannot read (shapes without the batch axis)."""

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def _probabilities(out, logits, from_logits_loss):
    """The model's probabilities from what fit hands a metric (see Metric)."""
    act = logits or (from_logits_loss if isinstance(from_logits_loss, str) else None)
    if act == "sigmoid":
        return _sigmoid(out)
    if act == "softmax":
        return _softmax(out)
    return out


def _weights(sample_weight, n):
    """(N,) per-sample weights, ones when none are given."""
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have one weight per sample ({n}), got shape "
                         f"{np.shape(sample_weight)}")
    return w


class MeanMetricWrapper(Metric):
    """The weighted mean over all samples of a per-sample function (accuracy, mse, mae):
    sum(w * value) / sum(w). `kind` says how it reads logits: 'binary' thresholds them at
    0 (see the module docstring), 'values' applies the activation first, 'argmax' does not
    care."""

    def __init__(self, fn, name, kind="values"):
        self.fn, self.kind = fn, kind
        super().__init__(name)

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def values(self, target, out, logits=None, from_logits_loss=False):
        """One value per sample."""
        if self.kind == "binary":
            threshold = 0.0 if (logits == "sigmoid" or from_logits_loss) else 0.5
            return binary_accuracy(target, out, threshold)
        if self.kind == "values" and logits is not None:   # mse / mae need the real output
            out = _probabilities(out, logits, False)
        return self.fn(target, out)

    __call__ = values

    def update(self, target, out, logits=None, from_logits_loss=False, sample_weight=None):
        v = self.values(target, out, logits, from_logits_loss)
        w = _weights(sample_weight, len(v))
        self.total += float(np.dot(v, w))
        self.count += float(w.sum())

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.update(np.asarray(y_true), np.asarray(y_pred), sample_weight=sample_weight)

    def result(self):
        return self.total / self.count if self.count else 0.0


class _NamedMean(MeanMetricWrapper):
    """keras.metrics.SparseCategoricalAccuracy() and friends: a per-sample function by class."""
    fn, kind = None, "values"

    def __init__(self, name=None, dtype=None):
        super().__init__(type(self).fn, name or type(self).key, type(self).kind)

    def get_config(self):
        return {"name": self.name}


class BinaryAccuracy(_NamedMean):
    fn, kind, key = staticmethod(binary_accuracy), "binary", "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        if threshold != 0.5:
            raise ValueError("BinaryAccuracy: threshold other than 0.5 is not implemented in "
                             "minitiny (see the module docstring for logits)")
        super().__init__(name)


class CategoricalAccuracy(_NamedMean):
    fn, kind, key = staticmethod(categorical_accuracy), "argmax", "categorical_accuracy"


class SparseCategoricalAccuracy(_NamedMean):
    fn, kind = staticmethod(sparse_categorical_accuracy), "argmax"
    key = "sparse_categorical_accuracy"


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the label is among the k classes with the highest scores (one-hot labels)."""
    fn, key = staticmethod(top_k_categorical_accuracy), "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, dtype=None):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{type(self).__name__}: k must be a positive integer, got {k!r}")
        self.k = int(k)
        fn = type(self).fn
        super().__init__(lambda y_true, y_pred: fn(y_true, y_pred, self.k),
                         name or type(self).key, "argmax")

    def get_config(self):
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """The same with integer labels."""
    fn, key = staticmethod(sparse_top_k_categorical_accuracy), "sparse_top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, dtype=None, from_sorted_ids=False):
        if from_sorted_ids:
            raise ValueError("SparseTopKCategoricalAccuracy: from_sorted_ids=True is not "
                             "implemented in minitiny (y_pred must hold scores)")
        super().__init__(k, name, dtype)


class MeanSquaredError(_NamedMean):
    fn, key = staticmethod(mean_squared_error), "mean_squared_error"


class MeanAbsoluteError(_NamedMean):
    fn, key = staticmethod(mean_absolute_error), "mean_absolute_error"


# ---- precision, recall and the area under the curve ---------------------------------------
# Keras' confusion-matrix metrics: every output value is one yes/no prediction (the label
# counts as positive when it is not 0), predicted positive when it is ABOVE a threshold.
class _Confusion(Metric):
    """True/false positives/negatives per threshold, summed over batches (weighted)."""

    def __init__(self, thresholds, name=None, class_id=None):
        self.thresholds = np.asarray(thresholds, dtype=np.float32)      # (T,), increasing
        self.class_id = class_id
        super().__init__(name)

    def reset_state(self):
        self.tp, self.fp, self.tn, self.fn = (np.zeros(len(self.thresholds)) for _ in range(4))

    def check(self, target_shape, output_shape):
        if tuple(target_shape) != tuple(output_shape) and \
                tuple(target_shape) + (1,) != tuple(output_shape):
            raise ValueError(f"metric {self.name!r} needs labels shaped like the model output "
                             f"(N, {', '.join(map(str, output_shape))}): yes/no labels, or "
                             "one-hot rows (keras.utils.to_categorical) for several classes; "
                             f"got labels of shape (N, {', '.join(map(str, target_shape))})")

    def update(self, target, out, logits=None, from_logits_loss=False, sample_weight=None):
        self.update_state(target, _probabilities(out, logits, from_logits_loss), sample_weight)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred, dtype=np.float32)
        y_true = np.asarray(y_true).reshape(y_pred.shape) != 0
        w = np.broadcast_to(_weights(sample_weight, len(y_pred)).reshape(
            (-1,) + (1,) * (y_pred.ndim - 1)), y_pred.shape)
        if self.class_id is not None:
            y_pred, y_true, w = y_pred[..., self.class_id], y_true[..., self.class_id], \
                w[..., self.class_id]
        self.add_counts(y_pred, y_true, w)

    def add_counts(self, y_pred, y_true, w):
        counts = _counts(self.thresholds, y_pred.ravel(), y_true.ravel(), w.ravel())
        for total, c in zip((self.tp, self.fp, self.tn, self.fn), counts):
            total += c


def _counts(thresholds, y_pred, y_true, w):
    """(TP, FP, TN, FN), each (T,): the weights of the predictions on each side of each
    threshold. A prediction p is positive at threshold t when p > t: at the first k
    thresholds, k = the number of thresholds below p. Count weights per k, then sum from
    the top."""
    k = np.searchsorted(thresholds, y_pred, side="left")          # (n,) in [0, T]
    T = len(thresholds)

    def above(mask):           # [sum of w over predictions positive at threshold t]
        per_k = np.bincount(k[mask], weights=w[mask], minlength=T + 1)   # (T+1,)
        return np.cumsum(per_k[::-1])[::-1][1:]                       # (T,)
    tp, fp = above(y_true), above(~y_true)
    return tp, fp, w[~y_true].sum() - fp, w[y_true].sum() - tp


def _divide(a, b):
    """a / b, 0 where b is 0 (TensorFlow's divide_no_nan)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


class Precision(_Confusion):
    """TP / (TP + FP): of the predictions above `thresholds` (0.5), how many are right."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if top_k is not None:
            raise TypeError(f"{type(self).__name__}: argument 'top_k' is not implemented in "
                            "minitiny; it takes thresholds, class_id, name")
        t = 0.5 if thresholds is None else thresholds
        if not isinstance(t, (int, float, np.number)) or not 0 <= t <= 1:
            raise ValueError(f"{type(self).__name__}: thresholds must be one number in [0, 1] "
                             f"(a list is not implemented), got {thresholds!r}")
        super().__init__([t], name, class_id)

    def result(self):
        return float(_divide(self.tp, self.tp + self.fp)[0])

    def get_config(self):
        return {"name": self.name, "thresholds": float(self.thresholds[0]),
                "class_id": self.class_id}


class Recall(Precision):
    """TP / (TP + FN): of the true positives, how many are predicted above `thresholds`."""

    def result(self):
        return float(_divide(self.tp, self.tp + self.fn)[0])


class AUC(_Confusion):
    """Area under the ROC (or precision-recall) curve as Keras computes it: the confusion
    matrix at `num_thresholds` thresholds, -1e-7, 1/(n-1), 2/(n-1), ..., 1 + 1e-7, then
    a Riemann sum over them, trapezoids by default ('interpolation'; 'minoring' and
    'majoring' take the lower / upper side). PR interpolation is Davis & Goadrich (2006),
    Keras' closed form.

    Several outputs per sample (N, L): multi_label=False pools every value into one curve,
    each weighted by its label's `label_weights`; multi_label=True keeps one curve per
    label (the last axis) and averages their areas, weighted by `label_weights` if given."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        self.multi_label = bool(multi_label)
        if num_labels is not None and (isinstance(num_labels, bool) or not isinstance(
                num_labels, (int, np.integer)) or num_labels < 1 or not multi_label):
            raise ValueError(f"AUC: num_labels must be a positive integer, with "
                             f"multi_label=True, got {num_labels!r}")
        self.num_labels = None if num_labels is None else int(num_labels)
        self.label_weights = None if label_weights is None else \
            np.asarray(label_weights, dtype=np.float64).reshape(-1)
        if self.label_weights is not None and (self.label_weights < 0).any():
            raise ValueError(f"AUC: label_weights must be >= 0, got {label_weights!r}")
        self.curve, self.summation_method = str(curve).upper(), str(summation_method).lower()
        if self.curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if self.summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError("AUC: summation_method must be 'interpolation', 'minoring' or "
                             f"'majoring', got {summation_method!r}")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
        else:
            if not isinstance(num_thresholds, (int, np.integer)) or num_thresholds < 2:
                raise ValueError(f"AUC: num_thresholds must be an integer > 1, got "
                                 f"{num_thresholds!r}")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.num_thresholds = len(inner) + 2
        self.from_logits = bool(from_logits)
        super().__init__([-1e-7] + inner + [1 + 1e-7], name)

    def reset_state(self):
        super().reset_state()
        if self.multi_label:        # one column per label; made at the first batch
            self.tp = self.fp = self.tn = self.fn = None
            if self.num_labels is not None:
                self.new_columns(self.num_labels)

    def new_columns(self, labels):
        self.tp, self.fp, self.tn, self.fn = \
            (np.zeros((len(self.thresholds), labels)) for _ in range(4))

    def add_counts(self, y_pred, y_true, w):
        labels = y_pred.shape[-1] if y_pred.ndim > 1 else 1
        if self.label_weights is not None and len(self.label_weights) != labels:
            raise ValueError(f"AUC: {len(self.label_weights)} label_weights for outputs with "
                             f"{labels} labels (shape {y_pred.shape})")
        if not self.multi_label:
            if self.label_weights is not None:
                w = w * self.label_weights
            return super().add_counts(y_pred, y_true, w)
        if self.tp is None:
            self.new_columns(labels)
        if self.tp.shape[1] != labels:
            raise ValueError(f"AUC(multi_label=True): outputs with {labels} labels (shape "
                             f"{y_pred.shape}), but {self.tp.shape[1]} were "
                             f"{'given as num_labels' if self.num_labels else 'seen before'}")
        y_pred, y_true, w = (a.reshape(-1, labels) for a in (y_pred, y_true, w))
        for j in range(labels):                            # one curve per label
            counts = _counts(self.thresholds, y_pred[:, j], y_true[:, j], w[:, j])
            for total, c in zip((self.tp, self.fp, self.tn, self.fn), counts):
                total[:, j] += c

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = _sigmoid(np.asarray(y_pred, dtype=np.float32))
        super().update_state(y_true, y_pred, sample_weight)

    def result(self):
        if self.tp is None:                                # multi-label, nothing seen yet
            return 0.0
        area = self.area()                                 # () or (L,)
        if not self.multi_label:
            return float(area)
        if self.label_weights is None:
            return float(area.mean())
        return float(_divide((area * self.label_weights).sum(), self.label_weights.sum()))

    def area(self):
        """The area under each curve: the thresholds run along axis 0."""
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr()
        recall = _divide(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide(fp, fp + tn), recall            # false-positive rate, recall
        else:
            x, y = recall, _divide(tp, tp + fp)            # recall, precision
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return ((x[:-1] - x[1:]) * heights).sum(axis=0)

    def _interpolate_pr(self):
        """Between two thresholds TP and P = TP + FP move linearly, so precision TP/P is
        (TP_A + slope (P - P_A)) / P; its integral over P is
        slope (dTP + intercept log(P_B / P_A)), divided by all positives (Keras' form)."""
        tp, fp, fn = self.tp, self.fp, self.fn
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return _divide(slope * (dtp + intercept * np.log(ratio)),
                       np.maximum(tp[1:] + fn[1:], 0)).sum(axis=0)

    def get_config(self):
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "from_logits": self.from_logits,
                "multi_label": self.multi_label, "num_labels": self.num_labels,
                "label_weights": None if self.label_weights is None else
                self.label_weights.tolist()}


# ---- by name --------------------------------------------------------------------------------
_BY_NAME = {
    "binary_accuracy": (binary_accuracy, "binary"),
    "categorical_accuracy": (categorical_accuracy, "argmax"),
    "sparse_categorical_accuracy": (sparse_categorical_accuracy, "argmax"),
    "top_k_categorical_accuracy": (top_k_categorical_accuracy, "argmax"),
    "sparse_top_k_categorical_accuracy": (sparse_top_k_categorical_accuracy, "argmax"),
    "mean_squared_error": (mean_squared_error, "values"),
    "mean_absolute_error": (mean_absolute_error, "values"),
}
_CLASSES = {"precision": Precision, "recall": Recall, "auc": AUC}
_ALIASES = {"acc": "accuracy", "mse": "mean_squared_error", "mae": "mean_absolute_error"}


def get(metric, target_shape, output_shape):
    """The Metric for a name ('accuracy', 'precision', ...) or a Metric instance, given the
    label shape (no batch) and output shape (no batch)."""
    if isinstance(metric, Metric):
        metric.check(target_shape, output_shape)
        return metric
    if not isinstance(metric, str):
        raise ValueError(f"metrics are given by name (e.g. 'accuracy') or as "
                         f"minitiny.metrics.Metric objects, got {metric!r}")
    key = _ALIASES.get(metric.lower(), metric.lower())
    if key in _CLASSES:
        m = _CLASSES[key]()
        m.check(target_shape, output_shape)
        return m
    if key == "accuracy":
        if tuple(output_shape)[-1:] == (1,):
            key = "binary_accuracy"
        elif len(target_shape) < len(output_shape):
            key = "sparse_categorical_accuracy"
        else:
            key = "categorical_accuracy"
    if key not in _BY_NAME:
        raise ValueError(f"unknown metric {metric!r}; choose from 'accuracy', "
                         + ", ".join(repr(k) for k in list(_BY_NAME) + list(_CLASSES)))
    fn, kind = _BY_NAME[key]
    # the log shows the name the user asked for ('accuracy'), as Keras does
    shown = "accuracy" if metric.lower() in ("accuracy", "acc") else metric
    return MeanMetricWrapper(fn, shown, kind)


def serialize(metric):
    """A metric object compile() was given, as saved: {'class_name', 'config'}."""
    if type(metric).__name__ not in _SAVED:
        raise ValueError(f"cannot save the metric {metric!r}: only names and "
                         f"{', '.join(_SAVED)} objects are saved")
    return arguments.serialize(metric)


def deserialize(cfg):
    return arguments.deserialize(_SAVED, cfg, "metric")


_SAVED = {c.__name__: c for c in (Precision, Recall, AUC, BinaryAccuracy, CategoricalAccuracy,
                                   SparseCategoricalAccuracy, TopKCategoricalAccuracy,
                                   SparseTopKCategoricalAccuracy, MeanSquaredError,
                                   MeanAbsoluteError)}
