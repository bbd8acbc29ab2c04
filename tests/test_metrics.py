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
    with pytest.raises(ValueError, match="num_labels must be a positive integer, with "
                                         "multi_label=True"):
        M.AUC(num_labels=3)
    m = M.AUC(multi_label=True, num_labels=3)
    with pytest.raises(ValueError, match="outputs with 2 labels .*but 3 were given as num_labels"):
        m.update_state(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="2 label_weights for outputs with 3 labels"):
        M.AUC(label_weights=[1, 2]).update_state(np.zeros((4, 3)), np.zeros((4, 3)))


# ---- AUC over several labels ----------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), labels=st.sampled_from([1, 3, 8]),
       n=st.sampled_from([5, 60, 400]), curve=st.sampled_from(["ROC", "PR"]),
       weighted=st.booleans())
def test_multi_label_auc_averages_one_naive_curve_per_label(seed, labels, n, curve, weighted):
    """Keras: multi_label=True keeps one curve per label and averages the areas (weighted
    by label_weights); multi_label=False pools every value, each weighted by its label's
    weight. The oracle is the naive loop above, once per label or on the pooled values."""
    rng = np.random.default_rng(seed)
    y = rng.random((n, labels)) < rng.random(labels)          # each label its own rate
    p = np.clip(rng.random((n, labels)) * 0.7 + 0.3 * y, 0, 1)
    w = rng.random(n)
    lw = rng.random(labels) * 3 if weighted else None
    m = M.AUC(num_thresholds=20, curve=curve, multi_label=True, label_weights=lw)
    m.update_state(y[:n // 2], p[:n // 2], w[:n // 2])
    m.update_state(y[n // 2:], p[n // 2:], w[n // 2:])
    per_label = [naive_auc(y[:, j], p[:, j], w, 20, curve, "interpolation")
                 for j in range(labels)]
    want = np.average(per_label, weights=lw)
    assert m.result() == pytest.approx(want, rel=1e-9, abs=1e-12)
    pooled = M.AUC(num_thresholds=20, curve=curve, label_weights=lw)
    pooled.update_state(y, p, w)
    ww = (w[:, None] * (np.ones(labels) if lw is None else lw)).ravel()
    want = naive_auc(y.ravel(), p.ravel(), ww, 20, curve, "interpolation")
    assert pooled.result() == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_multi_label_auc_in_fit_logs_and_its_config():
    import minitiny as mt
    mt.random.seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 5)).astype(np.float32)
    y = (x[:, :3] > 0.5).astype(np.float32)                   # three yes/no labels
    model = mt.Sequential([mt.layers.Dense(3, activation="sigmoid", input_shape=(5,))])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[M.AUC(multi_label=True, name="auc_ml")])
    logs = model.fit(x, y, epochs=1, verbose=0).history
    probs = model.predict(x, verbose=0)
    per_label = [naive_auc(y[:, j] > 0, probs[:, j], np.ones(64), 200, "ROC",
                           "interpolation") for j in range(3)]
    m = M.AUC(multi_label=True)
    m.update_state(y, probs)
    assert m.result() == pytest.approx(np.mean(per_label), rel=1e-9)
    assert 0.0 <= logs["auc_ml"][0] <= 1.0
    again = M.deserialize(M.serialize(M.AUC(multi_label=True, num_labels=3,
                                            label_weights=[1, 2, 3])))
    assert again.multi_label and again.num_labels == 3 and list(again.label_weights) == [1, 2, 3]


# ---- top-k accuracy ------------------------------------------------------------------------
def naive_in_top_k(scores, target, k):
    """The label is in the top k when fewer than k classes score strictly higher (ties with
    the k-th score count as in, as Keras' in_top_k)."""
    return [sum(s > row[t] for s in row) < k for row, t in zip(scores, target)]


def test_top_k_keras_documented_examples():
    m = M.TopKCategoricalAccuracy(k=1)
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m = M.SparseTopKCategoricalAccuracy(k=1)
    m.update_state([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    assert M.TopKCategoricalAccuracy().get_config() == {"name": "top_k_categorical_accuracy",
                                                        "k": 5}


@given(seed=st.integers(0, 2**32 - 1), classes=st.sampled_from([2, 5, 10, 1000]),
       k=st.sampled_from([1, 2, 5, 1500]), n=st.sampled_from([1, 33, 500]),
       ties=st.booleans())
def test_top_k_matches_a_naive_count(seed, classes, k, n, ties):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, classes))
    if ties:                                 # few distinct scores: ties at the k-th place
        scores = np.round(scores * 3) / 3
    target = rng.integers(0, classes, n)
    w = rng.random(n)
    want = np.average(naive_in_top_k(scores, target, k), weights=w)
    sparse, onehot = M.SparseTopKCategoricalAccuracy(k=k), M.TopKCategoricalAccuracy(k=k)
    sparse.update_state(target, scores, w)
    onehot.update_state(np.eye(classes)[target], scores, w)
    assert sparse.result() == pytest.approx(want) and onehot.result() == pytest.approx(want)
    by_name = M.get("sparse_top_k_categorical_accuracy", (), (classes,))
    by_name.update_state(target, scores)
    assert by_name.result() == pytest.approx(np.mean(naive_in_top_k(scores, target, 5)))


def test_top_k_refuses_what_it_lacks():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        M.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match="from_sorted_ids"):
        M.SparseTopKCategoricalAccuracy(from_sorted_ids=True)
