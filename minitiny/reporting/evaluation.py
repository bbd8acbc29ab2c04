"""Step 7, evaluate: who does the model work for? Per class, per group, float vs int8.

A TinyML model that works for one speaker or one wearer and fails for another is a broken
product. Accuracy over the whole test set hides that, so this file breaks every metric down:

    report = mt.evaluate_report(model, x_test, y_test, groups=subject_test, compare=qmodel)
    print(report)                 # overall, per class, per group, the gap, float vs int8
    report.worst_group, report.gap
    report.as_dict()              # JSON-able, for the HTML report and the model card

and, for binary detectors (wake word, anomaly), chooses the operating point:

    choice = threshold_for_fpr(y_val, scores_val, target_fpr=0.01)
    threshold_c_define("KWS_THRESHOLD_Q", choice.threshold, qmodel.output.scale, qmodel.output.zero_point)

Sections, in reading order: labels and predictions; the confusion matrix and the metrics read
off it; groups and the gap between them; the report; binary detectors (ROC, precision-recall,
the threshold for a target false-positive rate); the threshold as an int8 constant for the C.

A metric that cannot be computed (a class with no samples in a group, a class never
predicted) is an `Undefined` carrying the reason, never a silent 0 or NaN; `as_dict` turns it
into None and lists the reason beside it.
"""
import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from minitiny.quant import threshold as quant_threshold


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated: says which argument, its shape or value, and why."""


@dataclass(frozen=True)
class Undefined:
    """A metric with no value, and why (e.g. 'no samples of class 3')."""
    reason: str

    def __str__(self):
        return f"undefined ({self.reason})"

    def __float__(self):
        raise EvaluationError(f"this metric is {self}")


def _ratio(num, den, reason):
    return float(num) / float(den) if den else Undefined(reason)


def is_defined(v):
    return not isinstance(v, Undefined)


# ---------------------------------------------------------------------------------------
# Labels and predictions
# ---------------------------------------------------------------------------------------

def _labels(y, what="y"):
    """Integer labels (N,) or (N, 1), or one-hot (N, K) -> (N,) int64, and K if one-hot."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:                      # one-hot (or probabilities)
        if not np.all(np.isfinite(y)):
            raise EvaluationError(f"{what}: one-hot labels {y.shape} contain NaN or inf")
        return y.argmax(axis=1).astype(np.int64), y.shape[1]
    if y.ndim not in (1, 2):
        raise EvaluationError(f"{what}: labels must be (N,), (N, 1) or one-hot (N, K), got shape {y.shape}")
    y = y.reshape(len(y))
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number):
        raise EvaluationError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if y.size and (not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or y.min() < 0):
        bad = y[~np.isfinite(y) | (y != np.round(y)) | (y < 0)][0]
        raise EvaluationError(f"{what}: labels must be integers >= 0 (class indices), found {bad.item()!r}")
    return y.astype(np.int64), None


def _outputs(out, n, what, threshold):
    """A model's outputs -> (predicted labels (N,), binary scores (N,) or None, K, thresholded).

    (N, K) with K > 1: the class is the argmax; with K == 2 the score is output[:, 1].
    (N,) or (N, 1):    one score; the class is 1 when score >= threshold.
    """
    out = np.asarray(out)
    if out.dtype == object or not np.issubdtype(out.dtype, np.number):
        raise EvaluationError(f"{what}: expected numbers, got dtype {out.dtype}")
    if out.ndim == 0 or len(out) != n:
        raise EvaluationError(f"{what}: {out.shape[0] if out.ndim else 0} outputs for {n} labels in y")
    out = out.reshape(n, -1).astype(np.float64)             # (N, K)
    if not np.all(np.isfinite(out)):
        first = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise EvaluationError(f"{what}: outputs contain NaN or inf (first in sample {first})")
    if out.shape[1] == 1:
        score = out[:, 0]
        return (score >= threshold).astype(np.int64), score, 2, True
    return out.argmax(axis=1), (out[:, 1] if out.shape[1] == 2 else None), out.shape[1], False


def _predict(model, x, what):
    if not hasattr(model, "predict"):
        raise EvaluationError(f"{what}: expected a model with .predict(x) (a minitiny model or QModel), "
                              f"got {type(model).__name__}")
    if x is None:
        raise EvaluationError(f"{what}: a model was given but no inputs x to run it on")
    return model.predict(x)


def _model_kind(model):
    from minitiny.quant.graph import QModel
    return "int8" if isinstance(model, QModel) else "float"


# ---------------------------------------------------------------------------------------
# The confusion matrix and what is read off it
# ---------------------------------------------------------------------------------------

def confusion_matrix(y_true, y_pred, n_classes):
    """(K, K) int64: row = true class, column = predicted class (scikit-learn's layout)."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def class_metrics(cm, k, name):
    """One class against the rest. With TP, FP, FN, TN counted for class k:

        precision = TP / (TP + FP)     of the samples called k, the share that are k
        recall    = TP / (TP + FN)     of the samples of k, the share found (true-positive rate)
        F1        = 2 TP / (2 TP + FP + FN)   the harmonic mean of precision and recall
        FPR       = FP / (FP + TN)     of the samples not k, the share called k
        FNR       = FN / (TP + FN)     of the samples of k, the share missed (1 - recall)

    A zero denominator makes the metric Undefined with the reason. F1 is Undefined when the
    class has no samples (there is nothing to find, whatever was predicted).
    """
    n = int(cm.sum())
    tp = int(cm[k, k])
    fn = int(cm[k, :].sum()) - tp
    fp = int(cm[:, k].sum()) - tp
    tn = n - tp - fn - fp
    no_samples = f"no samples of class {name}"
    return {
        "support": tp + fn, "predicted": tp + fp, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": _ratio(tp, tp + fp, f"class {name} never predicted"),
        "recall": _ratio(tp, tp + fn, no_samples),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, no_samples) if tp + fn else Undefined(no_samples),
        "fpr": _ratio(fp, fp + tn, f"no samples outside class {name}"),
        "fnr": _ratio(fn, tp + fn, no_samples),
    }


def wilson_interval(k, n, z=1.959964):
    """95 % confidence interval of a proportion k/n (Wilson's score interval, 1927):

        center = (p + z^2 / 2n) / (1 + z^2 / n),  half = z sqrt(p(1-p)/n + z^2 / 4n^2) / (1 + z^2 / n)

    Unlike p +- z sqrt(p(1-p)/n) it stays inside [0, 1] and does not collapse to a point at
    p = 0 or 1, which matters for the small groups this is used on.
    """
    if n == 0:
        return Undefined("no samples")
    p = k / n
    d = 1 + z * z / n
    center = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, center - half), min(1.0, center + half))


def _mean_defined(values, what):
    ok = [v for v in values if is_defined(v)]
    return sum(ok) / len(ok) if ok else Undefined(f"{what} undefined for every class")


def summary_metrics(cm, class_names, scores=None, labels=None):
    """The headline numbers of one confusion matrix (the whole set or one group).

    Binary (2 classes): precision, recall, F1, FPR, FNR of the positive class 1, and the ROC
    AUC when scores are given. More classes: their macro averages (the plain mean over the
    classes where the metric is defined; `macro_excluded` names the classes left out).
    """
    n = int(cm.sum())
    correct = int(np.trace(cm))
    out = {"n": n, "correct": correct, "accuracy": _ratio(correct, n, "no samples"),
           "accuracy_ci95": wilson_interval(correct, n)}
    per_class = [class_metrics(cm, k, class_names[k]) for k in range(len(class_names))]
    if len(class_names) == 2:
        for m in ("precision", "recall", "f1", "fpr", "fnr"):
            out[m] = per_class[1][m]
        if scores is not None:
            out["roc_auc"] = _safe(roc_auc, labels, scores)
            out["average_precision"] = _safe(average_precision, labels, scores)
    else:
        out["macro_excluded"] = {}
        for m in ("precision", "recall", "f1", "fpr", "fnr"):
            values = [c[m] for c in per_class]
            out["macro_" + m] = _mean_defined(values, m) if n else Undefined("no samples")
            left_out = [str(class_names[k]) for k, v in enumerate(values) if not is_defined(v)]
            if left_out:
                out["macro_excluded"][m] = left_out
    return out, dict(zip(class_names, per_class))


def _safe(fn, labels, scores):
    try:
        return fn(labels, scores)
    except EvaluationError as e:
        return Undefined(str(e))


# ---------------------------------------------------------------------------------------
# Groups: the same numbers per speaker / subject / device, and the gap between groups
# ---------------------------------------------------------------------------------------

# Which way is better, for the metrics the gap is computed over.
HIGHER_IS_BETTER = {"accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True,
                    "macro_precision": True, "macro_recall": True, "macro_f1": True,
                    "fpr": False, "fnr": False, "macro_fpr": False, "macro_fnr": False}


def _group_keys(groups, expected):
    """The distinct groups, sorted when they can be, then any expected group not present."""
    present = list(dict.fromkeys(g.item() if isinstance(g, np.generic) else g for g in groups))
    try:
        present.sort()
    except TypeError:
        pass                                          # mixed types: keep first-seen order
    missing = [g for g in (expected or ()) if g not in present]
    return present + list(missing)


def group_gaps(per_group, metrics):
    """For each metric: the best and worst group (among groups where it is defined), the gap."""
    gaps = {}
    for m in metrics:
        values = [(g, r["overall"][m]) for g, r in per_group.items()
                  if m in r["overall"] and is_defined(r["overall"][m])]
        if len(values) < 2:
            gaps[m] = Undefined(f"{m} is defined for {len(values)} group{'s' * (len(values) != 1)}, "
                                "a gap needs two")
            continue
        sign = 1 if HIGHER_IS_BETTER[m] else -1
        best = max(values, key=lambda gv: sign * gv[1])
        worst = min(values, key=lambda gv: sign * gv[1])
        gaps[m] = {"best": best[0], "best_value": best[1], "worst": worst[0],
                   "worst_value": worst[1], "gap": abs(best[1] - worst[1]),
                   "worst_all": [g for g, v in values if v == worst[1]]}   # ties at the bottom
    return gaps


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------

class EvaluationReport:
    """Metrics overall, per class and per group (see `evaluate_report`).

    overall    {metric: value}                 per_class  {class name: {metric: value}}
    confusion  (K, K) int64, rows true          per_group  {group: {'overall', 'per_class', 'confusion'}}
    gaps       {metric: {best, worst, gap, ...}}           compared   {name: EvaluationReport}
    """

    def __init__(self, name, class_names, y_true, y_pred, scores, groups, expected_groups,
                 group_name, threshold, primary_metric, min_group_size):
        self.name, self.class_names, self.group_name = name, list(class_names), group_name
        self.threshold = threshold            # None unless the decisions are score >= threshold
        self.binary = len(class_names) == 2
        self.min_group_size = min_group_size
        self.y_true, self.y_pred, self.scores, self.groups = y_true, y_pred, scores, groups
        k = len(class_names)
        self.confusion = confusion_matrix(y_true, y_pred, k)
        self.overall, self.per_class = summary_metrics(self.confusion, class_names, scores, y_true)
        self.per_group = {}
        if groups is not None:
            for g in _group_keys(groups, expected_groups):
                mask = groups == g
                cm = confusion_matrix(y_true[mask], y_pred[mask], k)
                s = None if scores is None else scores[mask]
                overall, per_class = summary_metrics(cm, class_names, s, y_true[mask])
                self.per_group[g] = {"overall": overall, "per_class": per_class, "confusion": cm}
        self.primary_metric = primary_metric or "accuracy"
        gap_metrics = ["accuracy"] + (["recall", "fpr", "fnr", "f1"] if self.binary else ["macro_f1"])
        if self.binary and scores is not None:
            gap_metrics.append("roc_auc")
        if self.primary_metric not in gap_metrics:
            raise EvaluationError(f"primary_metric {primary_metric!r} is not one of {gap_metrics}")
        self.gaps = group_gaps(self.per_group, gap_metrics) if self.per_group else {}
        self.compared = {}

    # -- the group that fares worst ------------------------------------------------------
    @property
    def worst_group(self):
        """The group with the worst primary metric (None without groups, or when all tie)."""
        g = self.gaps.get(self.primary_metric)
        return g["worst"] if isinstance(g, dict) and g["gap"] > 0 else None

    @property
    def gap(self):
        """Best minus worst group on the primary metric (accuracy unless chosen otherwise)."""
        if not self.per_group:
            return Undefined("no groups given")
        g = self.gaps[self.primary_metric]
        return g["gap"] if isinstance(g, dict) else g

    @property
    def small_groups(self):
        """Groups with fewer samples than min_group_size: their metrics are noisy."""
        return [g for g, r in self.per_group.items() if r["overall"]["n"] < self.min_group_size]

    # -- comparing with another model (float vs int8) --------------------------------------
    def deltas(self, other):
        """Per group (and overall): the other model's metric minus this one's, and the share
        of samples where the two predict the same class ('agreement')."""
        o = self.compared[other] if isinstance(other, str) else other
        metrics = [m for m in ("accuracy", "f1", "recall", "fpr", "macro_f1") if m in self.overall]

        def diff(a, b, mask):
            row = {m: (b[m] - a[m] if is_defined(a[m]) and is_defined(b[m])
                       else a[m] if not is_defined(a[m]) else b[m]) for m in metrics}
            row["agreement"] = _ratio(np.sum(self.y_pred[mask] == o.y_pred[mask]), np.sum(mask),
                                      "no samples")
            return row

        out = {"overall": diff(self.overall, o.overall, np.ones(len(self.y_true), bool)), "per_group": {}}
        for g, r in self.per_group.items():
            out["per_group"][g] = diff(r["overall"], o.per_group[g]["overall"], self.groups == g)
        drops = [(g, d["accuracy"]) for g, d in out["per_group"].items() if is_defined(d["accuracy"])]
        worst = min(drops, key=lambda gd: gd[1]) if drops else None
        out["most_hurt_group"] = worst[0] if worst and worst[1] < 0 else None   # None: no group lost
        return out

    # -- tables: one description, rendered as text or Markdown ----------------------------
    def tables(self):
        """[(title, headers, rows)] for the text, Markdown and HTML renderings."""
        out = []
        o = self.overall
        head = ["n", "accuracy", "95% CI"] + [m for m in _HEADLINE[self.binary] if m in o]
        out.append((f"overall ({self.name})", head, [[o["n"], o["accuracy"], o["accuracy_ci95"]]
                                                     + [o[m] for m in head[3:]]]))
        for name, other in self.compared.items():
            oo = other.overall
            out.append((f"overall ({name})", head, [[oo["n"], oo["accuracy"], oo["accuracy_ci95"]]
                                                    + [oo.get(m, Undefined("not computed")) for m in head[3:]]]))
        out.append(("confusion matrix (rows: true class, columns: predicted)", [""] + self.class_names,
                    [[c] + row for c, row in zip(self.class_names, self.confusion.tolist())]))
        cols = ["support", "predicted", "precision", "recall", "f1", "fpr", "fnr"]
        out.append(("per class", ["class"] + cols,
                    [[name] + [c[m] for m in cols] for name, c in self.per_class.items()]))
        if self.per_group:
            gm = [m for m in _HEADLINE[self.binary] if m in o]
            rows = [[g, r["overall"]["n"], r["overall"]["accuracy"], r["overall"]["accuracy_ci95"]]
                    + [r["overall"][m] for m in gm] for g, r in self.per_group.items()]
            out.append((f"per {self.group_name}", [self.group_name, "n", "accuracy", "95% CI"] + gm, rows))
            out.append((f"recall per class and {self.group_name}", [self.group_name] + self.class_names,
                        [[g] + [r["per_class"][c]["recall"] for c in self.class_names]
                         for g, r in self.per_group.items()]))
            rows = [[m, v["best"], v["best_value"], ", ".join(map(str, v["worst_all"])), v["worst_value"],
                     v["gap"]]
                    if isinstance(v, dict) else [m, "-", "-", "-", "-", v] for m, v in self.gaps.items()]
            out.append((f"gap between {self.group_name}s", ["metric", "best", "value", "worst", "value", "gap"],
                        rows))
        for name, other in self.compared.items():
            d = self.deltas(name)
            rows = [["all", self.overall["accuracy"], other.overall["accuracy"], d["overall"]["accuracy"],
                     d["overall"]["agreement"]]]
            rows += [[g, r["overall"]["accuracy"], other.per_group[g]["overall"]["accuracy"],
                      d["per_group"][g]["accuracy"], d["per_group"][g]["agreement"]]
                     for g, r in self.per_group.items()]
            out.append((f"{self.name} vs {name}", [self.group_name if self.per_group else "",
                                                   f"accuracy {self.name}", f"accuracy {name}",
                                                   "change", "agreement"], rows))
        return out

    def notes(self):
        """Why each undefined value is undefined, and other warnings, once each."""
        notes = []
        for _, _, rows in self.tables():
            for row in rows:
                for v in row:
                    if isinstance(v, Undefined) and v.reason not in notes:
                        notes.append(v.reason)
        lines = [f"undefined: {r}" for r in notes]
        if self.small_groups:
            lines.append(f"fewer than {self.min_group_size} samples (noisy metrics): "
                         f"{self.group_name} {', '.join(map(str, self.small_groups))}")
        if self.threshold is not None:
            lines.append(f"binary decisions: score >= {self.threshold:.6g}")
        return lines

    def __str__(self):
        lines = [f"minitiny evaluation of {self.name!r}: {self.overall['n']} samples, "
                 f"{len(self.class_names)} classes"
                 + (f", {len(self.per_group)} {self.group_name}s" if self.per_group else "")]
        for title, head, rows in self.tables():
            lines += ["", title + ":"] + _text_table(head, rows)
        if self.per_group:
            wg = self.worst_group
            g = self.gaps[self.primary_metric]
            worst = ", ".join(map(str, g["worst_all"])) if wg is not None else "-"
            lines += ["", f"worst {self.group_name} on {self.primary_metric}: {worst}, gap {fmt(self.gap)}"]
        notes = self.notes()
        return "\n".join(lines + ([""] + ["note: " + n for n in notes] if notes else []))

    def to_markdown(self, level=3):
        hashes = "#" * level
        parts = []
        for title, head, rows in self.tables():
            parts += [f"{hashes} {title[0].upper() + title[1:]}", "", *markdown_table(head, rows), ""]
        notes = self.notes()
        if notes:
            parts += [f"{hashes} Notes", ""] + [f"- {n}" for n in notes] + [""]
        return "\n".join(parts)

    def as_dict(self):
        """JSON-able: Undefined -> None, with the reasons in an 'undefined' map beside it."""
        d = {"name": self.name, "n": self.overall["n"], "class_names": [str(c) for c in self.class_names],
             "binary": self.binary, "threshold": self.threshold, "group_name": self.group_name,
             "primary_metric": self.primary_metric,
             "overall": _jsonable(self.overall), "confusion": self.confusion.tolist(),
             "per_class": [dict(_jsonable(c), **{"class": str(n)}) for n, c in self.per_class.items()],
             "per_group": [{"group": _plain(g), "overall": _jsonable(r["overall"]),
                            "per_class": [dict(_jsonable(c), **{"class": str(n)})
                                          for n, c in r["per_class"].items()],
                            "confusion": r["confusion"].tolist()} for g, r in self.per_group.items()],
             "gaps": {m: (_jsonable(v) if isinstance(v, dict) else {"gap": None, "undefined": v.reason})
                      for m, v in self.gaps.items()},
             "worst_group": _plain(self.worst_group), "gap": _plain(self.gap),
             "small_groups": [_plain(g) for g in self.small_groups],
             "notes": self.notes(),
             "compared": {}}
        if self.binary and self.scores is not None and is_defined(self.overall.get("roc_auc")):
            fpr, tpr, thr = roc_curve(self.y_true, self.scores)
            prec, rec, pthr = precision_recall_curve(self.y_true, self.scores)
            d["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": _finite_list(thr)}
            d["pr"] = {"precision": prec.tolist(), "recall": rec.tolist(), "thresholds": pthr.tolist()}
        for name, other in self.compared.items():
            delta = self.deltas(name)
            d["compared"][name] = {"report": other.as_dict(),
                                   "overall": _jsonable(delta["overall"]),
                                   "per_group": [dict(_jsonable(v), group=_plain(g))
                                                 for g, v in delta["per_group"].items()],
                                   "most_hurt_group": _plain(delta["most_hurt_group"])}
        return d

    def __repr__(self):
        return (f"EvaluationReport({self.name!r}: n={self.overall['n']}, accuracy {fmt(self.overall['accuracy'])}"
                f", {len(self.per_group)} groups, gap {fmt(self.gap)})")


_HEADLINE = {True: ["precision", "recall", "f1", "fpr", "fnr", "roc_auc"],
             False: ["macro_precision", "macro_recall", "macro_f1"]}


def fmt(v):
    """One cell: 0.8214 -> '0.821', (0.6, 0.9) -> '0.600-0.900', Undefined -> 'undefined'."""
    if isinstance(v, Undefined):
        return "undefined"
    if isinstance(v, tuple):
        return "-".join(f"{x:.3f}" for x in v)
    if isinstance(v, (float, np.floating)):
        return f"{v:.3f}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _text_table(head, rows):
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max([len(str(h))] + [len(r[i]) for r in cells]) for i, h in enumerate(head)]
    line = lambda r: "  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    rule = "  " + "-" * (sum(widths) + 2 * len(widths) - 2)
    return [line([str(h) for h in head]), rule] + [line(r) for r in cells]


def markdown_table(head, rows):
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return (["| " + " | ".join(esc(h) for h in head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(esc(fmt(c)) for c in row) + " |" for row in rows])


def _plain(v):
    """NumPy scalars -> Python; Undefined -> None (for JSON)."""
    if isinstance(v, Undefined):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _jsonable(d):
    out, why = {}, {}
    for k, v in d.items():
        if isinstance(v, Undefined):
            why[k] = v.reason
        out[k] = _plain(v) if not isinstance(v, dict) else {kk: _plain(vv) for kk, vv in v.items()}
    if why:
        out["undefined"] = why
    return out


def _finite_list(a):
    return [None if not np.isfinite(v) else float(v) for v in a]   # +inf (the first ROC point) -> None


# ---------------------------------------------------------------------------------------
# evaluate_report: the entry point
# ---------------------------------------------------------------------------------------

def evaluate_report(model_or_qmodel=None, x=None, y=None, *, groups=None, class_names=None,
                    y_pred=None, y_score=None, compare=None, threshold=0.5, expected_groups=None,
                    group_name="group", name=None, primary_metric=None, min_group_size=30):
    """Evaluate a float model or an int8 QModel overall, per class and per group.

    model_or_qmodel, x:  anything with .predict(x) -> outputs (minitiny models, QModels);
                         or instead give the outputs y_score (N, K) / (N,), or labels y_pred (N,)
    y:                   integer labels (N,) or one-hot (N, K)
    groups:              (N,) any labels (speaker, subject, device): metrics per group and the
                         gap between the best and worst group
    expected_groups:     groups to list even when no sample belongs to them
    class_names:         names in label order (default: '0', '1', ...)
    compare:             another model (e.g. the int8 QModel of a float model), or a dict
                         {name: model or its outputs}: the same report for each, plus the change
                         per group, so you see whether quantization hurt one group more
    threshold:           single-output binary models: class 1 when score >= threshold
                         (0.5 for a sigmoid probability; 0 if the model outputs logits)
    primary_metric:      what `worst_group` and `gap` rank groups by (default accuracy)
    min_group_size:      groups smaller than this are flagged as noisy
    """
    if y is None:
        raise EvaluationError("evaluate_report: y (the true labels) is required")
    labels, k_onehot = _labels(y)
    n = len(labels)
    if sum(v is not None for v in (model_or_qmodel, y_pred, y_score)) != 1:
        raise EvaluationError("evaluate_report: give exactly one of a model (with x), y_score "
                              "(model outputs) or y_pred (predicted labels)")
    if model_or_qmodel is not None:
        name = name or _model_kind(model_or_qmodel)
        out = _predict(model_or_qmodel, x, name)
    else:
        name = name or "model"
        out = y_score
    if y_pred is not None:
        pred, k_out = _labels(y_pred, "y_pred")
        if len(pred) != n:
            raise EvaluationError(f"y_pred has {len(pred)} labels but y has {n}")
        scores, thresholded = None, False
    else:
        pred, scores, k_out, thresholded = _outputs(out, n, name, threshold)
    groups = _check_groups(groups, n, expected_groups)
    if k_out and k_onehot and k_out != k_onehot:
        raise EvaluationError(f"y is one-hot over {k_onehot} classes but {name} gives {k_out}")
    if k_out and labels.size and labels.max() >= k_out:
        raise EvaluationError(f"y contains class {int(labels.max())} but {name} gives only {k_out} classes")
    k = max([v for v in (k_out, k_onehot) if v] + [int(labels.max(initial=-1)) + 1,
                                                    int(pred.max(initial=-1)) + 1, 2])
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        for what, v in (("model outputs", k_out), ("one-hot y", k_onehot)):
            if v and v != len(class_names):
                raise EvaluationError(f"{len(class_names)} class_names but the {what} have {v} classes")
        for what, v in (("y", labels), ("predictions", pred)):
            if v.size and v.max() >= len(class_names):
                raise EvaluationError(f"{what} contains class {int(v.max())}, but class_names has only "
                                      f"{len(class_names)} names")
        k = len(class_names)
    class_names = class_names or [str(i) for i in range(k)]

    report = EvaluationReport(name, class_names, labels, pred, scores, groups, expected_groups,
                              group_name, threshold if thresholded else None, primary_metric,
                              min_group_size)
    for cname, other in _compared(compare, model_or_qmodel).items():
        out_c = _predict(other, x, f"compare {cname!r}") if hasattr(other, "predict") else other
        p, s, kc, th = _outputs(out_c, n, f"compare {cname!r}", threshold)
        if kc != k:
            raise EvaluationError(f"compare {cname!r}: outputs for {kc} classes, the report has {k}")
        report.compared[cname] = EvaluationReport(cname, class_names, labels, p, s, groups, expected_groups,
                                                  group_name, threshold if th else None, primary_metric,
                                                  min_group_size)
    return report


def _check_groups(groups, n, expected):
    if groups is None:
        if expected is not None:
            raise EvaluationError("expected_groups was given without groups")
        return None
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != n:
        raise EvaluationError(f"groups has shape {groups.shape} but y has {n} samples: "
                              f"give one group label per sample, shape ({n},)")
    if groups.dtype.kind == "f" and np.isnan(groups).any():
        raise EvaluationError(f"groups contains NaN (sample {int(np.flatnonzero(np.isnan(groups))[0])}): "
                              "every sample needs a group label")
    return groups


def _compared(compare, primary):
    if compare is None:
        return {}
    if isinstance(compare, dict):
        return dict(compare)
    name = _model_kind(compare) if hasattr(compare, "predict") else "compared"
    if primary is not None and name == _model_kind(primary):
        name = "compared"
    return {name: compare}


# ---------------------------------------------------------------------------------------
# Binary detectors: ROC and precision-recall curves, the threshold for a target FPR
# ---------------------------------------------------------------------------------------
# The detector says "yes" when score >= t. Lowering t finds more positives (TPR up) and
# raises more false alarms (FPR up); the curves trace that trade-off over every t.

def _binary(y_true, y_score):
    try:
        y, _ = _labels(y_true, "y_true")
    except EvaluationError as e:
        raise EvaluationError(f"{e}: a binary detector's y_true is 0/1 "
                              "(did you swap y_true and y_score?)") from None
    s = np.asarray(y_score, dtype=np.float64).reshape(-1) if np.ndim(y_score) else None
    if s is None or len(s) != len(y):
        raise EvaluationError(f"y_score has {0 if s is None else len(s)} scores but y_true has {len(y)} "
                              "labels: give one score per sample")
    if y.size and y.max() > 1:
        raise EvaluationError(f"y_true must be 0/1 for a binary detector, found {int(y.max())} "
                              "(did you swap y_true and y_score?)")
    if not np.all(np.isfinite(s)):
        raise EvaluationError("y_score contains NaN or inf")
    return y, s


def _counts(y, s):
    """Counts at each distinct score t, from the highest down: predictions are score >= t.
    Tied scores form one step, so a tie between a positive and a negative moves the ROC
    diagonally and the trapezoid gives it half credit (the Mann-Whitney convention)."""
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]   # the last index of each run of ties
    tps = np.cumsum(y)[last]                               # (T,) positives with score >= t
    fps = last + 1 - tps                                   # (T,) negatives with score >= t
    return s[last], tps, fps


def roc_curve(y_true, y_score):
    """(fpr, tpr, thresholds), thresholds decreasing from +inf (nothing predicted positive)."""
    y, s = _binary(y_true, y_score)
    pos, neg = int(y.sum()), len(y) - int(y.sum())
    if pos == 0 or neg == 0:
        missing = "no samples" if pos == neg else "no positives" if pos == 0 else "no negatives"
        raise EvaluationError(f"ROC needs positives and negatives: {missing}")
    thr, tps, fps = _counts(y, s)
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos], np.r_[np.inf, thr]


def precision_recall_curve(y_true, y_score):
    """(precision, recall, thresholds) at each distinct score, thresholds decreasing."""
    y, s = _binary(y_true, y_score)
    pos = int(y.sum())
    if pos == 0:
        raise EvaluationError("precision-recall needs positive samples, got none")
    thr, tps, fps = _counts(y, s)
    return tps / (tps + fps), tps / pos, thr


def auc(x, y):
    """Area under a curve by the trapezoid rule; x must be monotonic."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise EvaluationError(f"auc: x and y must be 1-D, the same length, >= 2 points; got {x.shape}, {y.shape}")
    dx = np.diff(x)
    if np.any(dx < 0) and np.any(dx > 0):
        raise EvaluationError("auc: x is not monotonic")
    return float(abs(np.sum(dx * (y[1:] + y[:-1]) / 2)))


def roc_auc(y_true, y_score):
    """Probability that a random positive scores above a random negative (ties count half)."""
    fpr, tpr, _ = roc_curve(y_true, y_score)
    return auc(fpr, tpr)


def average_precision(y_true, y_score):
    """AP = sum_n (R_n - R_{n-1}) P_n over the distinct thresholds (scikit-learn's definition:
    steps, not trapezoids, which would overstate a precision-recall curve)."""
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class ThresholdChoice:
    """The operating point: predict positive when score >= threshold."""
    threshold: float
    target_fpr: float
    fpr: float              # achieved on the data it was chosen on: <= target_fpr
    tpr: float
    tp: int
    fp: int
    n_positive: int
    n_negative: int

    @property
    def precision(self):
        return _ratio(self.tp, self.tp + self.fp, "nothing predicted positive")

    @property
    def fpr_resolution(self):
        """The smallest FPR step this data can show: one false alarm among the negatives."""
        return 1.0 / self.n_negative

    def as_dict(self):
        d = asdict(self)
        d["precision"] = _plain(self.precision)
        d["fpr_resolution"] = self.fpr_resolution
        return d

    def __str__(self):
        return (f"threshold {self.threshold:.6g}: FPR {self.fpr:.4f} (target {self.target_fpr:g}, "
                f"{self.fp}/{self.n_negative} negatives), TPR {self.tpr:.4f} ({self.tp}/{self.n_positive})")


def threshold_for_fpr(y_true, y_score, target_fpr):
    """The lowest threshold whose false-positive rate on (y_true, y_score) is <= target_fpr,
    which gives the highest true-positive rate allowed by that budget.

    The threshold is one of the scores (so an int8 model's threshold lies on its output grid),
    or, when even the highest score costs too many false alarms, the next float above it
    (nothing fires). Chosen on validation data, the FPR on new data will differ: re-check it
    on a test set, and mind `fpr_resolution` (1 / number of negatives).
    """
    y, s = _binary(y_true, y_score)
    if not 0.0 <= float(target_fpr) <= 1.0:
        raise EvaluationError(f"target_fpr must be in [0, 1], got {target_fpr}")
    pos, neg = int(y.sum()), len(y) - int(y.sum())
    if pos == 0 or neg == 0:
        raise EvaluationError(f"threshold_for_fpr needs positives and negatives, got {pos} and {neg}")
    thr, tps, fps = _counts(y, s)
    ok = np.flatnonzero(fps / neg <= target_fpr)           # fps grows as the threshold falls
    if len(ok):
        i = ok[-1]
        t, tp, fp = float(thr[i]), int(tps[i]), int(fps[i])
    else:
        t, tp, fp = float(np.nextafter(s.max(), np.inf)), 0, 0
    return ThresholdChoice(t, float(target_fpr), fp / neg, tp / pos, tp, fp, pos, neg)


# ---------------------------------------------------------------------------------------
# The threshold as an int8 constant for the generated C
# ---------------------------------------------------------------------------------------

def threshold_to_int8(threshold, scale, zero_point):
    """The int8 constant t_q with  q >= t_q  <=>  dequantize(q) >= threshold  for every int8 q
    (minitiny.quant.threshold.threshold_to_int8, which the generated C's constant also uses);
    raises EvaluationError if no int8 output can express the threshold."""
    try:
        return quant_threshold.threshold_to_int8(threshold, scale, zero_point)
    except quant_threshold.ThresholdError as e:
        raise EvaluationError(str(e)) from None


_C_MACRO = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def threshold_c_define(name, threshold, scale, zero_point):
    """The C macro for a detector's threshold on its int8 output, e.g.

        /* KWS_THRESHOLD_Q: fire when the score >= 0.8, i.e. when the int8 output q >= 77:
         * 0.00390625 * (q - (-128)) >= 0.8  <=>  q >= 77 (threshold_to_int8 rounds up) */
        #define KWS_THRESHOLD_Q ((int8_t)77)
    """
    if not isinstance(name, str) or not _C_MACRO.match(name):
        raise EvaluationError(f"{name!r} is not a valid C macro name")
    t_q = threshold_to_int8(threshold, scale, zero_point)
    if t_q == -128:      # every output fires; and `q >= -128` trips gcc's -Wtype-limits (-Wextra)
        raise EvaluationError(f"threshold {float(threshold):.6g} is at or below the lowest int8 output: "
                              "the detector would always fire; choose a higher threshold")
    scale, zp = float(np.float32(np.asarray(scale).reshape(()))), int(np.asarray(zero_point).reshape(()))
    return (f"/* {name}: fire when the score >= {float(threshold):.9g}, i.e. when the int8 output q >= {t_q}:\n"
            f" * {scale:.9g} * (q - ({zp})) >= {float(threshold):.9g}  <=>  q >= {t_q} "
            "(threshold_to_int8 rounds up) */\n"
            f"#define {name} ((int8_t){t_q})\n")
