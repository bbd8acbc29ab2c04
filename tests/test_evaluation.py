"""minitiny.reporting.evaluation: metrics against hand-computed cases, curves against brute force.

Oracles: the expected numbers of the small cases are worked out by hand in the comments;
the hypothesis properties compare with naive definitions (pairs of samples for the ROC AUC,
a loop over thresholds for the false-positive rate, all 256 int8 values for the threshold
constant) that share no code with the module.
"""
import json
import math
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitiny.reporting.evaluation import (EvaluationError, Undefined, auc, average_precision, confusion_matrix,
                                 evaluate_report, precision_recall_curve, roc_auc, roc_curve,
                                 threshold_c_define, threshold_for_fpr, threshold_to_int8,
                                 wilson_interval)
from minitiny.quant.graph import QModel, QOp, QTensor

# ---------------------------------------------------------------------------------------
# A 4-class case by hand. Class d has no samples but is predicted once; group A has no
# sample of class b; group C (expected) has no samples at all.
#
#   index   0  1  2  3  4  5  6  7
#   y       a  a  a  b  b  c  c  c
#   pred    a  a  b  b  d  c  a  c
#   group   A  B  A  B  B  A  B  A
#
# confusion (rows true a..d, columns predicted a..d):
#   a [2 1 0 0]    b [0 1 0 1]    c [1 0 2 0]    d [0 0 0 0]
# ---------------------------------------------------------------------------------------
Y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
PRED = np.array([0, 0, 1, 1, 3, 2, 0, 2])
GROUPS = np.array(list("ABABBABA"))
NAMES = ["a", "b", "c", "d"]


def hand_report(**kw):
    return evaluate_report(y=Y, y_pred=PRED, groups=GROUPS, class_names=NAMES, group_name="speaker",
                           expected_groups=["A", "B", "C"], **kw)


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y, PRED, 4)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert hand_report().confusion.tolist() == cm.tolist()
    onehot = evaluate_report(y=np.eye(4)[Y], y_pred=PRED, class_names=NAMES)     # one-hot labels
    assert onehot.confusion.tolist() == cm.tolist()


def test_per_class_metrics_by_hand():
    pc = hand_report().per_class
    # a: TP 2, FN 1 (a->b), FP 1 (c->a), TN 8-4 = 4
    a = pc["a"]
    assert (a["tp"], a["fn"], a["fp"], a["tn"]) == (2, 1, 1, 4)
    assert a["precision"] == pytest.approx(2 / 3) and a["recall"] == pytest.approx(2 / 3)
    assert a["f1"] == pytest.approx(4 / 6)                         # 2TP / (2TP + FP + FN)
    assert a["fpr"] == pytest.approx(1 / 5) and a["fnr"] == pytest.approx(1 / 3)
    # b: TP 1, FN 1 (b->d), FP 1 (a->b), TN 5
    b = pc["b"]
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((1 / 2, 1 / 2, 2 / 4))
    assert b["fpr"] == pytest.approx(1 / 6)
    # c: TP 2, FN 1, FP 0, TN 5
    c = pc["c"]
    assert (c["precision"], c["recall"], c["f1"], c["fpr"]) == pytest.approx((1.0, 2 / 3, 4 / 5, 0.0))
    # d: no samples, predicted once (wrongly): precision 0/1 = 0 is defined, FPR 1/8;
    # recall, F1 and FNR are undefined, and say why
    d = pc["d"]
    assert d["support"] == 0 and d["predicted"] == 1
    assert d["precision"] == 0.0 and d["fpr"] == pytest.approx(1 / 8)
    for m in ("recall", "f1", "fnr"):
        assert isinstance(d[m], Undefined) and "no samples of class d" in d[m].reason


def test_overall_and_macro_by_hand():
    o = hand_report().overall
    assert o["n"] == 8 and o["accuracy"] == pytest.approx(5 / 8)
    # macro recall over the classes that have samples: (2/3 + 1/2 + 2/3) / 3 = 11/18
    assert o["macro_recall"] == pytest.approx(11 / 18)
    assert o["macro_excluded"]["recall"] == ["d"]
    # macro precision over all four (d's 0 is defined): (2/3 + 1/2 + 1 + 0) / 4 = 13/24
    assert o["macro_precision"] == pytest.approx(13 / 24)


def test_per_group_by_hand_including_missing_class_and_empty_group():
    r = hand_report()
    assert list(r.per_group) == ["A", "B", "C"]
    A, B, C = (r.per_group[g] for g in "ABC")
    # A = samples 0, 2, 5, 7: y a a c c, pred a b c c -> 3/4
    assert A["overall"]["n"] == 4 and A["overall"]["accuracy"] == pytest.approx(3 / 4)
    assert A["confusion"].tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    # A has no sample of b, yet predicts b once: recall undefined, precision 0/1
    assert isinstance(A["per_class"]["b"]["recall"], Undefined)
    assert A["per_class"]["b"]["precision"] == 0.0
    # B = samples 1, 3, 4, 6: y a b b c, pred a b d a -> 2/4
    assert B["overall"]["accuracy"] == pytest.approx(2 / 4)
    # C: no samples; reported as such, not as 0 or NaN
    assert C["overall"]["n"] == 0
    assert isinstance(C["overall"]["accuracy"], Undefined) and C["overall"]["accuracy"].reason == "no samples"
    assert isinstance(C["overall"]["accuracy_ci95"], Undefined)
    # gap: best A 0.75, worst B 0.5 (C has no value and is left out)
    assert r.worst_group == "B" and r.gap == pytest.approx(0.25)
    assert r.gaps["accuracy"]["best"] == "A"


def test_undefined_is_visible_in_text_markdown_and_json():
    r = hand_report()
    text = str(r)
    assert "undefined" in text and "no samples of class d" in text
    assert "worst speaker on accuracy: B" in text
    assert "| C | 0 | undefined |" in r.to_markdown()
    d = json.loads(json.dumps(r.as_dict()))
    c = next(g for g in d["per_group"] if g["group"] == "C")
    assert c["overall"]["accuracy"] is None and c["overall"]["undefined"]["accuracy"] == "no samples"
    dd = next(x for x in d["per_class"] if x["class"] == "d")
    assert dd["recall"] is None and "no samples" in dd["undefined"]["recall"]
    assert dd["precision"] == 0.0 and "precision" not in dd["undefined"]
    assert d["worst_group"] == "B" and d["gap"] == pytest.approx(0.25)
    with pytest.raises(EvaluationError, match="undefined"):
        float(c and r.per_group["C"]["overall"]["accuracy"])


def test_wilson_interval_by_hand():
    # k = 8, n = 10, z = 1.96: p = 0.8, z^2 = 3.8416, d = 1.38416,
    # center = (0.8 + 0.19208) / d = 0.716738, half = 1.96 sqrt(0.016 + 0.0096040) / d = 0.226604
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490, abs=1e-3) and hi == pytest.approx(0.943, abs=1e-3)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(0, 5)[1] > 0   # no collapse at p = 0
    assert isinstance(wilson_interval(0, 0), Undefined)


# ---------------------------------------------------------------------------------------
# Binary detectors, by hand
#   y      1    1    0    0    1    0
#   score  0.9  0.4  0.6  0.2  0.7  0.4
# ---------------------------------------------------------------------------------------
YB = np.array([1, 1, 0, 0, 1, 0])
SB = np.array([0.9, 0.4, 0.6, 0.2, 0.7, 0.4])


def test_binary_report_by_hand():
    # threshold 0.5: pred 1 0 1 0 1 0 -> TP 2 (0.9, 0.7), FN 1, FP 1 (0.6), TN 2
    o = evaluate_report(y=YB, y_score=SB).overall
    assert (o["precision"], o["recall"], o["fpr"], o["fnr"]) == pytest.approx((2 / 3, 2 / 3, 1 / 3, 1 / 3))
    assert o["accuracy"] == pytest.approx(4 / 6)
    # threshold 0.4: score >= 0.4 (ties included) -> TP 3, FP 2 (0.6, 0.4)
    o = evaluate_report(y=YB, y_score=SB, threshold=0.4).overall
    assert (o["recall"], o["fpr"]) == pytest.approx((1.0, 2 / 3))


def test_roc_curve_and_auc_by_hand():
    fpr, tpr, thr = roc_curve(YB, SB)
    # distinct thresholds 0.9, 0.7, 0.6, 0.4 (one positive and one negative tie), 0.2
    assert thr.tolist() == [np.inf, 0.9, 0.7, 0.6, 0.4, 0.2]
    assert fpr == pytest.approx([0, 0, 0, 1 / 3, 2 / 3, 1])
    assert tpr == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    # pairs (pos, neg) with pos scoring higher, ties half: 0.9 beats 3, 0.7 beats 3,
    # 0.4 beats 0.2 and ties 0.4 -> 7.5 of 9 = 5/6
    assert roc_auc(YB, SB) == pytest.approx(5 / 6)
    assert evaluate_report(y=YB, y_score=SB).overall["roc_auc"] == pytest.approx(5 / 6)


def test_precision_recall_and_average_precision_by_hand():
    p, r, thr = precision_recall_curve(YB, SB)
    assert thr.tolist() == [0.9, 0.7, 0.6, 0.4, 0.2]
    assert p == pytest.approx([1, 1, 2 / 3, 3 / 5, 3 / 6])
    assert r == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1, 1])
    # AP = 1/3 * 1 + 1/3 * 1 + 0 + 1/3 * 3/5 + 0 = 13/15
    assert average_precision(YB, SB) == pytest.approx(13 / 15)


def test_threshold_for_fpr_by_hand():
    c = threshold_for_fpr(YB, SB, target_fpr=0.0)      # 0.7: no negative at or above it
    assert (c.threshold, c.fp, c.tp, c.fpr, c.tpr) == (0.7, 0, 2, 0.0, pytest.approx(2 / 3))
    c = threshold_for_fpr(YB, SB, target_fpr=1 / 3)    # 0.6: one false alarm of 3 is allowed
    assert (c.threshold, c.fp, c.tp) == (0.6, 1, 2)
    c = threshold_for_fpr(YB, SB, target_fpr=0.5)      # 0.4 would cost 2/3: still 0.6
    assert c.threshold == 0.6 and c.precision == pytest.approx(2 / 3)
    # the highest score is a negative: with no false alarm allowed, nothing may fire
    c = threshold_for_fpr([0, 1], [0.9, 0.5], target_fpr=0.0)
    assert c.threshold > 0.9 and c.tp == 0 and c.fp == 0


def test_auc_trapezoid_and_errors():
    assert auc([0, 0.5, 1], [0, 1, 1]) == pytest.approx(0.75)          # 0.25 + 0.5
    assert auc([1, 0.5, 0], [1, 1, 0]) == pytest.approx(0.75)          # decreasing x is fine
    with pytest.raises(EvaluationError, match="monotonic"):
        auc([0, 1, 0.5], [0, 1, 1])
    with pytest.raises(EvaluationError, match="positives and negatives"):
        roc_curve([1, 1], [0.2, 0.3])
    with pytest.raises(EvaluationError, match="swap"):
        roc_curve([0.2, 0.7, 0.4], [1, 0, 1])
    # a group with only negatives gets an undefined AUC, with the reason
    r = evaluate_report(y=YB, y_score=SB, groups=[0, 0, 1, 1, 0, 1], expected_groups=[0, 1, 2])
    auc1 = r.per_group[1]["overall"]["roc_auc"]
    assert isinstance(auc1, Undefined) and "positives and negatives" in auc1.reason
    # ... and an empty group gets undefined everything, the curves included
    empty = r.per_group[2]["overall"]
    assert empty["n"] == 0 and all(isinstance(empty[m], Undefined) for m in
                                   ("accuracy", "precision", "recall", "roc_auc", "average_precision"))


# ---------------------------------------------------------------------------------------
# Properties against naive definitions
# ---------------------------------------------------------------------------------------
binary_data = st.integers(2, 40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(st.integers(0, 8), min_size=n, max_size=n)))   # few values: many ties


def _both_classes(ys):
    return 0 < sum(ys) < len(ys)


@given(binary_data, st.floats(0, 1))
def test_threshold_meets_target_fpr_and_is_the_lowest_that_does(data, target):
    ys, raw = data
    if not _both_classes(ys):
        return
    y, s = np.array(ys), np.array(raw) / 8.0
    c = threshold_for_fpr(y, s, target)
    fires = s >= c.threshold
    fp, tp = int(np.sum(fires & (y == 0))), int(np.sum(fires & (y == 1)))
    assert fp / np.sum(y == 0) <= target                       # met, on the data it was chosen on
    assert (c.fp, c.tp) == (fp, tp)
    lower = s[s < c.threshold]
    if len(lower):                                           # one step lower breaks the budget
        assert np.sum((s >= lower.max()) & (y == 0)) / np.sum(y == 0) > target


@given(binary_data)
def test_roc_auc_equals_pairwise_probability_with_ties_half(data):
    ys, raw = data
    if not _both_classes(ys):
        return
    pos = [s for s, t in zip(raw, ys) if t]
    neg = [s for s, t in zip(raw, ys) if not t]
    wins = sum(Fraction(1) if p > n else Fraction(1, 2) if p == n else 0 for p in pos for n in neg)
    assert roc_auc(ys, raw) == pytest.approx(float(wins / (len(pos) * len(neg))))


@given(st.lists(st.integers(0, 1), min_size=2, max_size=30), st.randoms(use_true_random=False))
def test_average_precision_without_ties_is_mean_precision_at_each_positive(ys, rnd):
    if sum(ys) == 0:
        return
    scores = list(range(len(ys)))
    rnd.shuffle(scores)                                       # distinct scores, random order
    ranked = [t for _, t in sorted(zip(scores, ys), reverse=True)]
    hits, precisions = 0, []
    for k, t in enumerate(ranked, 1):
        if t:
            hits += 1
            precisions.append(hits / k)
    assert average_precision(ys, scores) == pytest.approx(sum(precisions) / len(precisions))


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.lists(st.sampled_from(["s1", "s2", "s3"]), min_size=n, max_size=n))), st.randoms(use_true_random=False))
def test_groups_sum_to_overall_and_order_does_not_matter(data, rnd):
    y, pred, groups = (np.array(v) for v in data)
    r = evaluate_report(y=y, y_pred=pred, groups=groups, class_names="abcd")
    assert sum(g["overall"]["n"] for g in r.per_group.values()) == len(y)
    assert sum(g["confusion"] for g in r.per_group.values()).tolist() == r.confusion.tolist()
    assert r.confusion.sum() == len(y) and np.trace(r.confusion) == np.sum(y == pred)
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    r2 = evaluate_report(y=y[perm], y_pred=pred[perm], groups=groups[perm], class_names="abcd")
    assert r2.as_dict() == r.as_dict()


# ---------------------------------------------------------------------------------------
# The threshold as an int8 constant
# ---------------------------------------------------------------------------------------
def _dequantized(q, scale, zp):
    """Independent of QTensor: scale (float32) * (q - zp) in exact float64, rounded to float32."""
    return float(np.float32(float(np.float32(scale)) * (q - zp)))


@given(st.floats(1e-4, 10.0), st.integers(-128, 127), st.floats(-1.0, 1.0), st.booleans())
def test_int8_threshold_matches_the_float_comparison_for_every_q(scale, zp, where, on_grid):
    lo, hi = _dequantized(-128, scale, zp), _dequantized(127, scale, zp)
    thr = lo + (where + 1) / 2 * (hi - lo)
    if on_grid:                                              # exactly on a grid point: ties
        thr = _dequantized(int(round(-128 + (where + 1) / 2 * 255)), scale, zp)
    t_q = threshold_to_int8(thr, scale, zp)
    for q in range(-128, 128):
        assert (q >= t_q) == (_dequantized(q, scale, zp) >= thr), q


def test_int8_threshold_by_hand_and_rounding_up():
    # logistic output: scale 1/256, zero point -128. 0.8: -128 + 204.8 = 76.8 -> up to 77
    assert threshold_to_int8(0.8, 1 / 256, -128) == 77
    # on a grid point: 0.5 = (0 + 128) / 256 exactly, so q = 0 already fires
    assert threshold_to_int8(0.5, 1 / 256, -128) == 0
    # the exact formula, away from grid points: ceil(zp + t / scale)
    exact = math.ceil(Fraction(5) + Fraction(-0.33) / Fraction(float(np.float32(0.1))))   # ceil(1.7) = 2
    assert threshold_to_int8(-0.33, 0.1, 5) == exact == 2
    assert threshold_to_int8(-5.0, 1 / 256, -128) == -128              # below the range: always fires
    with pytest.raises(EvaluationError, match="never fire"):
        threshold_to_int8(0.999, 1 / 256, -128)                         # above 255/256
    with pytest.raises(EvaluationError, match="zero_point"):
        threshold_to_int8(0.5, 1 / 256, 200)


def test_threshold_is_the_same_decision_on_a_real_qmodel():
    qm = tiny_qmodel()
    x = np.random.default_rng(1).uniform(-2, 2, (200, 2)).astype(np.float32)
    score = qm.predict(x)[:, 1]                                # dequantized output 1
    thr = float(np.median(score))
    t_q = threshold_to_int8(thr, qm.output.scale, qm.output.zero_point)
    q = qm.predict_int8(qm.quantize_input(x))[:, 1]
    assert np.array_equal(q >= t_q, score.astype(np.float64) >= thr)


def test_threshold_c_define_compiles_and_names_the_value():
    text = threshold_c_define("KWS_THRESHOLD_Q", 0.8, 1 / 256, -128)
    assert "#define KWS_THRESHOLD_Q ((int8_t)77)" in text and "0.8" in text
    with pytest.raises(EvaluationError, match="C macro"):
        threshold_c_define("2bad name", 0.8, 1 / 256, -128)
    with pytest.raises(EvaluationError, match="always fire"):          # q >= -128: always true
        threshold_c_define("T", 0.0, 1 / 256, -128)
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to compile the macro with")
    src = ("#include <stdint.h>\n" + text +
           "int fires(int8_t q) { return q >= KWS_THRESHOLD_Q; }\n"
           "int main(void) { return fires(77) == 1 && fires(76) == 0 ? 0 : 1; }\n")
    out = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-x", "c", "-",
                          "-o", "/dev/null", "-fsyntax-only"], input=src, text=True, capture_output=True)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------------------
# Models: a float model and an int8 QModel through the same entry point
# ---------------------------------------------------------------------------------------
W_INT8 = np.array([[100, -50], [-100, 50]])   # weight scale 0.01 -> float W = [[1, -0.5], [-1, 0.5]]
B_INT32 = np.array([0, 10])                   # bias scale 0.05 * 0.01 -> float b = [0, 0.005]


def tiny_qmodel():
    t = {"x": QTensor("x", (2,), "int8", 0.05, 0),
         "w": QTensor("w", (2, 2), "int8", 0.01, 0, W_INT8),
         "b": QTensor("b", (2,), "int32", 0.0005, 0, B_INT32),
         "y": QTensor("y", (2,), "int8", 0.1, 3)}
    return QModel("tiny", t, [QOp("fully_connected", "fc", ["x", "w", "b"], ["y"], {"activation": "none"})],
                  ["x"], ["y"])


class FloatTwin:
    """The same linear map in float64: what the QModel approximates."""
    def predict(self, x):
        return np.asarray(x, np.float64) @ (W_INT8 * 0.01).T + B_INT32 * 0.0005


def test_qmodel_and_float_model_with_groups_and_comparison():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (120, 2)).astype(np.float32)
    y = (x[:, 1] * 0.5 - x[:, 0] > 0.3 * rng.standard_normal(120)).astype(int)
    groups = np.repeat([10, 20, 30], 40)
    qm = tiny_qmodel()
    rq = evaluate_report(qm, x, y, groups=groups)
    assert rq.name == "int8" and rq.overall["accuracy"] == pytest.approx(qm.evaluate(x, y))
    r = evaluate_report(FloatTwin(), x, y, groups=groups, compare=qm)
    assert r.name == "float" and list(r.compared) == ["int8"]
    d = r.deltas("int8")
    pf, pq = FloatTwin().predict(x).argmax(1), qm.predict(x).argmax(1)
    for g in (10, 20, 30):
        m = groups == g
        change = np.mean(pq[m] == y[m]) - np.mean(pf[m] == y[m])
        assert d["per_group"][g]["accuracy"] == pytest.approx(change)
        assert d["per_group"][g]["agreement"] == pytest.approx(np.mean(pq[m] == pf[m]))
    assert "float vs int8" in str(r)
    json.dumps(r.as_dict())


def test_quantization_hurting_one_group_is_shown():
    y = np.array([0, 1] * 10)
    groups = np.repeat(["alice", "bob"], 10)
    float_out = np.eye(2)[y]                                   # float: all right
    int8_out = float_out.copy()
    int8_out[10:14] = np.eye(2)[1 - y[10:14]]                   # int8: 4 of bob's 10 wrong
    r = evaluate_report(y=y, y_score=float_out, groups=groups, compare={"int8": int8_out}, name="float")
    d = r.deltas("int8")
    assert d["per_group"]["alice"]["accuracy"] == 0.0
    assert d["per_group"]["bob"]["accuracy"] == pytest.approx(-0.4)
    assert d["most_hurt_group"] == "bob"
    assert r.compared["int8"].worst_group == "bob" and r.worst_group is None   # float: no gap, tie


def test_single_output_detector_uses_the_threshold():
    class Detector:
        def predict(self, x):
            return np.asarray(x, np.float32).reshape(-1, 1)      # the score is the input
    r = evaluate_report(Detector(), SB, YB, threshold=0.65)
    # score >= 0.65: 0.9, 0.7 -> TP 2, FP 0
    assert (r.overall["recall"], r.overall["fpr"]) == pytest.approx((2 / 3, 0.0))
    assert r.threshold == 0.65 and "score >= 0.65" in str(r)


# ---------------------------------------------------------------------------------------
# Bad input: clear errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(y=Y, y_pred=PRED, groups=GROUPS[:-1]), r"groups has shape \(7,\) but y has 8 samples"),
    (dict(y=Y, y_pred=PRED, groups=np.zeros((8, 2))), r"groups has shape \(8, 2\)"),
    (dict(y=Y, y_pred=PRED[:5]), "y_pred has 5 labels but y has 8"),
    (dict(y=Y, y_score=np.zeros((7, 4))), "7 outputs for 8 labels"),
    (dict(y=Y, y_pred=PRED, class_names=["a", "b"]), "y contains class 2, but class_names has only 2"),
    (dict(y=Y, y_score=np.zeros((8, 3)), class_names=NAMES), "4 class_names but the model outputs have 3"),
    (dict(y=[0.5, 1.0], y_pred=[0, 1]), "integers"),
    (dict(y=Y, y_score=np.zeros((8, 2))), "y contains class 2 but model gives only 2 classes"),
    (dict(y=np.eye(3)[Y], y_score=np.zeros((8, 4))), "one-hot over 3 classes but model gives 4"),
    (dict(y=Y), "exactly one of"),
    (dict(y=Y, y_pred=PRED, y_score=np.zeros(8)), "exactly one of"),
    (dict(y=Y, y_score=np.full(8, np.nan)), "NaN"),
    (dict(y=Y, y_pred=PRED, expected_groups=["A"]), "without groups"),
    (dict(y=Y, y_pred=PRED, groups=[0.0] * 7 + [np.nan]), "NaN"),
])
def test_bad_input_gives_a_clear_error(kwargs, match):
    with pytest.raises(EvaluationError, match=match):
        evaluate_report(**kwargs)


def test_bad_models_and_thresholds():
    with pytest.raises(EvaluationError, match="no inputs x"):
        evaluate_report(FloatTwin(), None, Y)
    with pytest.raises(EvaluationError, match=".predict"):
        evaluate_report(object(), np.zeros((8, 2)), Y)
    with pytest.raises(EvaluationError, match="target_fpr"):
        threshold_for_fpr(YB, SB, 1.5)
    with pytest.raises(EvaluationError, match="one score per sample"):
        threshold_for_fpr(YB, SB[:3], 0.1)
    with pytest.raises(EvaluationError, match="compare 'q'"):
        evaluate_report(y=YB, y_score=SB, compare={"q": np.zeros((6, 3))})
