"""Plots as PNG files: the pictures of the course, each one function.

    from minitiny.reporting import plots
    plots.plot_history(history, "curves.png")              # loss and accuracy per epoch
    plots.plot_confusion_matrix(cm, "confusion.png", class_names=[...])
    plots.plot_predictions(x, y, "sine.png", {"float": y_float, "int8": y_int8})
    plots.plot_roc(y, {"float": s_float, "int8": s_int8}, "roc.png")

matplotlib is an optional extra (`pip install 'minitiny[plots]'`); without it every function
raises PlotsUnavailable, which says so. Files are written atomically (a temporary file, then
os.replace), with the Agg backend, so no display is needed.

What to look for:
- curves: training loss falling while validation loss rises = overfitting (stop earlier,
  regularise, get more data); both high and flat = underfitting (a bigger model, more
  epochs, a larger learning rate).
- confusion matrix: rows are the true class, columns the prediction; the off-diagonal cells
  say which classes the model mixes up.
- predicted vs true: for the sine model, the int8 curve should lie on the float one; steps
  in it are the int8 grid of the output.
- ROC: each point is one threshold; the area under it (AUC) is the chance that a random
  anomaly scores above a random normal sample.
"""

import numpy as np

from minitiny.files import atomic_write


class PlotsUnavailable(ImportError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg", force=True)        # files only: no window, no display needed
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotsUnavailable("plots need matplotlib, an optional extra: pip install "
                               f"'minitiny[plots]' (or pip install matplotlib) ({e})") from None
    return plt


def available():
    try:
        _pyplot()
        return True
    except PlotsUnavailable:
        return False


def _save(fig, path):
    """Write the figure to `path` as PNG atomically; close it; return the path."""
    plt = _pyplot()
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100,
                                                        bbox_inches="tight"))
    finally:
        plt.close(fig)


# ---- loss and accuracy per epoch ---------------------------------------------------------
def plot_history(history, path, title=None):
    """Training and validation curves, one panel per quantity (loss; accuracy if recorded).

    history: a History (fit's return value), its .history dict, or {'loss': [...], ...}."""
    h = getattr(history, "history", history)
    if not isinstance(h, dict) or not h.get("loss"):
        raise ValueError("plot_history: expected a History or a dict with a 'loss' list, got "
                         f"{type(history).__name__}" + (f" with keys {sorted(h)}" if
                                                        isinstance(h, dict) else ""))
    quantities = [k for k in h if not k.startswith("val_")]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 3.6), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        epochs = np.arange(1, len(h[q]) + 1)
        ax.plot(epochs, h[q], "o-", ms=3, label="training")
        if h.get("val_" + q):
            ax.plot(epochs[:len(h["val_" + q])], h["val_" + q], "s--", ms=3, label="validation")
        ax.set_xlabel("epoch")
        values = [v for v in list(h[q]) + list(h.get("val_" + q) or []) if v > 0]
        if q == "loss" and values and max(values) > 20 * min(values):
            ax.set_yscale("log")                # the first epochs would flatten the rest
            ax.set_ylabel("loss (log scale)")
        else:
            ax.set_ylabel(q)
        ax.set_title(f"{title}: {q}" if title else q)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


# ---- confusion matrix ----------------------------------------------------------------------
def plot_confusion_matrix(cm, path, class_names=None, title="Confusion matrix"):
    """Rows = true class, columns = predicted class, each cell the count (and the row's %)."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"plot_confusion_matrix: expected a square (K, K) matrix, got shape {cm.shape}")
    k = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for a {k}x{k} matrix")
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)   # recall per row
    plt = _pyplot()
    size = min(max(3.5, 0.55 * k + 1.5), 12)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right"
                       if max(map(len, names)) > 3 else "center")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_title(title)
    return _save(fig, path)


# ---- regression: predicted vs true ----------------------------------------------------------
def plot_predictions(x, y_true, path, predictions, title="Predicted vs true"):
    """The sine plot: y against x for the data and each model's predictions.

    x: (N,) or (N, 1) inputs, or None (then predicted is plotted against true, with the
    diagonal y = x); predictions: {'float': (N,), 'int8': (N,)} or one array."""
    if not isinstance(predictions, dict):
        predictions = {"predicted": predictions}
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    preds = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in predictions.items()}
    for k, v in preds.items():
        if len(v) != len(y):
            raise ValueError(f"plot_predictions: {k!r} has {len(v)} values but y_true has {len(y)}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    one_feature = x is not None and np.asarray(x).size == len(y)
    if one_feature:
        xs = np.asarray(x, dtype=np.float64).reshape(-1)
        order = np.argsort(xs)
        ax.plot(xs, y, ".", color="0.6", ms=4, label="data (true)")
        for k, v in preds.items():
            ax.plot(xs[order], v[order], "-", lw=1.6, label=k)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    else:
        lo, hi = float(min(y.min(), *(v.min() for v in preds.values()))), \
            float(max(y.max(), *(v.max() for v in preds.values())))
        ax.plot([lo, hi], [lo, hi], "-", color="0.6", lw=1, label="perfect")
        for k, v in preds.items():
            ax.plot(y, v, ".", ms=4, label=k)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)


# ---- ROC for anomaly detection ----------------------------------------------------------------
def plot_roc(y_true, scores, path, title="ROC curve"):
    """True-positive rate against false-positive rate over every threshold, with the AUC.

    y_true: 0 = normal, 1 = anomaly; scores: higher = more anomalous, one array or
    {'float': ..., 'int8': ...}."""
    from minitiny.reporting.evaluation import auc, roc_curve
    if not isinstance(scores, dict):
        scores = {"model": scores}
    curves = {k: roc_curve(y_true, s) for k, s in scores.items()}      # checks the inputs
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], ":", color="0.6", label="chance (AUC 0.5)")
    for k, (fpr, tpr, _) in curves.items():
        ax.plot(fpr, tpr, "-", lw=1.6,
                label=f"{k} (AUC {auc(fpr, tpr):.3f})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false-positive rate (normal flagged)")
    ax.set_ylabel("true-positive rate (anomalies found)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    return _save(fig, path)
