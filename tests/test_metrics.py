"""Precision, Recall and AUC: Keras' documented examples, and AUC against a naive loop over
its thresholds written from Keras' definition (confusion counts per threshold, then the
Riemann sum), on drawn data up to tens of thousands of predictions."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitiny import metrics as M


# ---- Keras' docstring examples (keras/src/metrics/confusion_metrics.py) --------------------
def test_keras_documented_examples():
    p, r = M.Precision(), M.Recall()
    for m in (p, r):
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    assert p.result() == pytest.approx(2 / 3) and r.result() == pytest.approx(2 / 3)
    for m in (p, r):
        m.reset_state()
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 0])
    assert p.result() == 1.0 and r.result() == 1.0
    auc = M.AUC(num_thresholds=3)
    auc.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert auc.result() == pytest.approx(0.75)
    auc.reset_state()
    auc.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert auc.result() == pytest.approx(1.0)
    assert (p.name, r.name, auc.name) == ("precision", "recall", "auc")


# ---- the naive oracle ----------------------------------------------------------------------
def naive_confusion(y, p, w, thresholds):
    """tp, fp, tn, fn at each threshold, one prediction at a time (p > t is positive)."""
    out = np.zeros((len(thresholds), 4))
    for i, t in enumerate(thresholds):
        for yi, pi, wi in zip(y, p, w):
            positive = pi > t
            out[i, (0 if yi else 1) if positive else (3 if yi else 2)] += wi
    return out.T                                    # tp, fp, tn, fn


def safe(a, b):
    return [x / y if y else 0.0 for x, y in zip(a, b)]


def naive_auc(y, p, w, n, curve, method):
    thresholds = np.float32([-1e-7] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + 1e-7])
    tp, fp, tn, fn = naive_confusion(y, np.float32(p), w, thresholds)
    if curve == "PR" and method == "interpolation":
        total = 0.0
        for a in range(n - 1):                       # Davis & Goadrich, per interval
            b = a + 1
            dtp, pa, pb = tp[a] - tp[b], tp[a] + fp[a], tp[b] + fp[b]
            slope = dtp / (pa - pb) if pa - pb > 0 else 0.0
            intercept = tp[b] - slope * pb
            ratio = pa / pb if pa > 0 and pb > 0 else 1.0
            positives = tp[b] + fn[b]
            if positives > 0:
                total += slope * (dtp + intercept * np.log(ratio)) / positives
        return total
    recall = safe(tp, tp + fn)
    x, yy = (safe(fp, fp + tn), recall) if curve == "ROC" else (recall, safe(tp, tp + fp))
    pick = {"interpolation": lambda a, b: (a + b) / 2, "minoring": min, "majoring": max}[method]
    return sum((x[i] - x[i + 1]) * pick(yy[i], yy[i + 1]) for i in range(n - 1))


@st.composite
def scored_labels(draw):
    n = draw(st.sampled_from([1, 7, 200, 3000]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y = rng.random(n) < draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    kind = draw(st.sampled_from(["uniform", "grid", "extreme"]))
    if kind == "grid":                   # predictions exactly on the thresholds
        p = rng.integers(0, 200, n) / 199
    elif kind == "extreme":              # saturated outputs, as a confident model gives
        p = rng.choice([0.0, 1e-9, 1.0 - 1e-7, 1.0], n)
    else:
        p = np.clip(rng.random(n) * 0.8 + 0.2 * y, 0, 1)
    w = rng.random(n) * draw(st.sampled_from([1.0, 1e-3, 1e3])) \
        if draw(st.booleans()) else np.ones(n)
    return y, p, w


@given(data=scored_labels(), n=st.sampled_from([2, 3, 200]),
       curve=st.sampled_from(["ROC", "PR"]),
       method=st.sampled_from(["interpolation", "minoring", "majoring"]))
def test_auc_matches_a_naive_loop_over_its_thresholds(data, n, curve, method):
    y, p, w = data
    m = M.AUC(num_thresholds=n, curve=curve, summation_method=method)
    half = len(y) // 2                   # two batches add up to one
    m.update_state(y[:half], p[:half], w[:half])
    m.update_state(y[half:], p[half:], w[half:])
    want = naive_auc(y, p, w, n, curve, method) if len(y) < 1000 or n < 200 else None
    if want is None:                     # the naive loop is slow: a subsample, same check
        sub = slice(0, 500)
        m = M.AUC(num_thresholds=n, curve=curve, summation_method=method)
        m.update_state(y[sub], p[sub], w[sub])
        want = naive_auc(y[sub], p[sub], w[sub], n, curve, method)
    assert m.result() == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_roc_auc_approaches_the_exact_area():
    """With 200 thresholds Keras' AUC is within a fraction of a percent of the exact one
    (the Mann-Whitney statistic, counted pair by pair here)."""
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.4
    p = np.clip(rng.normal(0.4 + 0.25 * y, 0.2), 0, 1)
    pos, neg = p[y], p[~y]
    exact = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) \
        / (len(pos) * len(neg))
    m = M.AUC()
    m.update_state(y, p)
    assert m.result() == pytest.approx(exact, abs=5e-3)


def test_precision_recall_threshold_and_class_id():
    y = np.eye(3)[[0, 1, 2, 1]]                      # one-hot
    p = np.array([[.8, .1, .1], [.3, .6, .1], [.2, .5, .3], [.1, .2, .7]])
    m = M.Precision(class_id=1)                     # column 1: predicted 0.6, 0.5 > 0.5? no
    m.update_state(y, p)
    assert m.result() == 1.0                        # one positive prediction (0.6), right
    r = M.Recall(thresholds=0.15, class_id=1)       # column 1 above 0.15: rows 1, 2, 3
    r.update_state(y, p)
    assert r.result() == 1.0                        # both true class-1 rows found


def test_confusion_metrics_refuse_class_indices_by_name():
    with pytest.raises(ValueError, match="metric 'recall' needs labels shaped like the model "
                                         "output .*to_categorical"):
        M.get("recall", (), (10,))
    with pytest.raises(TypeError, match="'top_k' is not implemented"):
        M.Precision(top_k=2)
    with pytest.raises(TypeError, match="multi_label"):
        M.AUC(multi_label=True)
