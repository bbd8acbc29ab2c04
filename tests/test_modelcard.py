"""minitiny.reporting.modelcard: every section present, measured facts filled in, gaps marked.

The evaluation data is a small hand-built case (its numbers worked out in the comments), so
each figure the card should show is known independently of the code that writes it.
"""
import json
import os

import numpy as np
import pytest

from minitiny.deploy import power
from minitiny.reporting.evaluation import evaluate_report, threshold_for_fpr
from minitiny.reporting.modelcard import SECTIONS, ModelCardError, model_card, write_model_card
from minitiny.quant.graph import QModel, QOp, QTensor

# Two speakers of 10 samples, classes 'no' / 'yes' alternating. The float model is right
# everywhere; the int8 model gets 4 of bob's first samples wrong (no, yes, no, yes):
#   int8 accuracy: alice 10/10, bob 6/10 -> change -0.4 for bob
#   int8 recall of 'yes': bob has yes at 11, 13, 15, 17, 19; 11 and 13 are wrong -> 3/5
# 'carol' is expected but has no samples.
Y = np.array([0, 1] * 10)
GROUPS = np.repeat(["alice", "bob"], 10)
FLOAT_OUT = np.eye(2)[Y]
INT8_OUT = FLOAT_OUT.copy()
INT8_OUT[10:14] = np.eye(2)[1 - Y[10:14]]


def report():
    return evaluate_report(y=Y, y_score=FLOAT_OUT, groups=GROUPS, class_names=["no", "yes"],
                           compare={"int8": INT8_OUT}, name="float", group_name="speaker",
                           expected_groups=["alice", "bob", "carol"])


def todo_markers(text):
    return text.count("<!-- TODO(user):")


def test_an_empty_card_has_every_section_and_marks_every_gap():
    card = model_card()
    md = card.to_markdown()
    assert [t for t, _ in card.sections] == list(SECTIONS)
    positions = [md.index(f"## {t}\n") for t in SECTIONS]
    assert positions == sorted(positions)                    # in the documented order
    assert todo_markers(md) == len(card.gaps) > 0
    for gap in card.gaps:
        assert f"<!-- TODO(user): {gap} -->" in md and f"_Not yet written: {gap}._" in md
    assert any("metrics" in g for g in card.gaps) and any("flash, RAM" in g for g in card.gaps)


def test_text_given_by_the_author_fills_its_gap():
    empty = model_card()
    card = model_card(intended_use="Counts physiotherapy repetitions on a wrist-worn watch.",
                      ethical_considerations="Not a medical device.",
                      details={"version": "1.0", "date": "2024-05-01", "authors": "A. Author",
                               "license": "MIT", "contact": "a@example.org"})
    md = card.to_markdown()
    assert "Counts physiotherapy repetitions" in md and "Not a medical device." in md
    assert "| license | MIT |" in md
    assert len(card.gaps) == len(empty.gaps) - 7               # intended use, ethics, 5 details
    assert not any("what the model is for" in g for g in card.gaps)


def test_metrics_per_group_and_float_vs_int8_are_shown():
    md = model_card(report()).to_markdown()
    metrics = md[md.index("## Metrics"):md.index("## Deployment")]
    # per speaker: alice 10 samples 1.000, bob 10 1.000, carol 0 undefined
    assert "| alice | 10 | 1.000 |" in metrics and "| carol | 0 | undefined |" in metrics
    # float vs int8: bob 1.000 -> 0.600, change -0.400, agreement 6/10
    assert "| bob | 1.000 | 0.600 | -0.400 | 0.600 |" in metrics
    assert "### Overall (int8)" in metrics
    data = md[md.index("## Data"):md.index("## Metrics")]
    assert "Evaluation set: 20 samples." in data and "| carol | 0 |" in data


def test_limitations_are_filled_from_the_measurements():
    md = model_card(report(), max_int8_drop=0.02).to_markdown()
    lim = md[md.index("## Limitations"):md.index("## Ethical considerations")]
    assert "int8 vs float: accuracy drops by more than 0.02 for speaker bob (-0.400)" in lim
    assert "int8 loses 0.200 accuracy against float overall" in lim          # 20/20 -> 16/20
    assert "Not evaluated (no samples): speaker carol" in lim
    assert "Few samples (< 30) for speaker alice, bob" in lim
    assert "TODO(user)" in lim                                  # the author's part stays open
    # the float model itself has no gap between speakers: nothing flagged about one
    assert "differs by" not in lim


def test_limitations_flag_weak_classes_and_groups():
    # int8 alone: recall of 'yes' 8/10 overall (0.8 < 0.9); bob's 3/5; accuracy alice 1.0, bob 0.6
    r = evaluate_report(y=Y, y_score=INT8_OUT, groups=GROUPS, class_names=["no", "yes"],
                        group_name="speaker")
    lim = model_card(r, min_metric=0.9).to_markdown()
    assert "Class `yes`: recall 0.800 (8 of 10 found), below 0.9." in lim
    assert "speaker bob, `yes`: 0.600 (3/5)" in lim
    assert "accuracy differs by 0.400 between speakers: 0.600 for speaker bob, 1.000 for speaker alice" in lim


def tiny_qmodel():
    t = {"x": QTensor("x", (2,), "int8", 0.05, 0),
         "w": QTensor("w", (2, 2), "int8", 0.01, 0, np.array([[100, -50], [-100, 50]])),
         "b": QTensor("b", (2,), "int32", 0.0005, 0, np.array([0, 10])),
         "y": QTensor("y", (2,), "int8", 1 / 256, -128)}
    return QModel("tiny_kws", t, [QOp("fully_connected", "fc", ["x", "w", "b"], ["y"], {"activation": "none"})],
                  ["x"], ["y"])


MANIFEST = {"header": "tiny_kws_model.h", "source": "tiny_kws_model.c", "model_hash": "ab" * 32,
            "weight_bytes": 12, "code_bytes_estimate": 300, "arena_bytes": 8, "macs": 4,
            "input_shape": [2], "output_shape": [2], "output_scale": 1 / 256, "output_zero_point": -128}


def test_deployment_from_manifest_firmware_and_power():
    firmware = {"target": "cortex-m4", "status": "ok", "instructions": 1234,
                "flash": {"used": 10240, "budget": 1048576}, "ram": {"static": 2048, "budget": 262144,
                                                                     "stack_used": 300}}
    est = power.estimate(2_700_000, "nano33ble", 1.0, battery="cr2032")
    # threshold: scores 0.9 0.8 0.7 0.1 for y 1 1 0 0, no false alarm -> 0.8; on the
    # logistic grid (1/256, -128): -128 + 0.8 * 256 = 76.8 -> q >= 77
    choice = threshold_for_fpr([1, 1, 0, 0], [0.9, 0.8, 0.7, 0.1], target_fpr=0.0)
    card = model_card(model=tiny_qmodel(), manifest=MANIFEST, firmware=firmware, power=est,
                      threshold=choice)
    md = card.to_markdown()
    dep = md[md.index("## Deployment"):md.index("## Limitations")]
    assert "| weights (flash) | 12 B |" in dep and "| activations arena (RAM) | 8 B |" in dep
    assert "| threshold in C | int8 output q >= 77 |" in dep
    assert "| flash used / budget | 10,240 / 1,048,576 B |" in dep
    assert "| instructions per inference | 1,234 |" in dep
    assert power.DISCLAIMER in dep and power.fmt_si(est.latency_s.typ, "s") in dep
    assert not any("flash, RAM" in g for g in card.gaps)
    details = md[:md.index("## Intended use")]
    assert "| operators | 1 (fully_connected) |" in details and "tiny_kws" in md.splitlines()[0]
    assert "fires when its score >= 0.8" in md
    assert "estimates from instruction counts" in md[md.index("## Limitations"):]


def test_deployment_from_a_real_codegen_manifest(tmp_path):
    pytest.importorskip("jinja2")
    from minitiny import codegen
    generated = codegen.generate(tiny_qmodel(), tmp_path / "c")
    md = model_card(manifest=generated).to_markdown()
    assert f"| weights (flash) | {generated.manifest['weight_bytes']:,} B |" in md
    assert f"| activations arena (RAM) | {generated.manifest['arena_bytes']:,} B |" in md


def test_write_model_card_is_atomic_and_json_is_clean(tmp_path):
    path = tmp_path / "MODEL_CARD.md"
    path.write_text("old")
    card = write_model_card(path, report(), intended_use="demo")
    assert path.read_text(encoding="utf-8") == card.to_markdown()
    assert os.listdir(tmp_path) == ["MODEL_CARD.md"]           # no temp file left behind
    # like every file minitiny writes (minitiny/files.py), a missing folder is created
    write_model_card(tmp_path / "new" / "card.md", report())
    assert sorted(os.listdir(tmp_path)) == ["MODEL_CARD.md", "new"]
    assert os.listdir(tmp_path / "new") == ["card.md"]
    d = json.loads(json.dumps(card.as_dict()))
    assert [s["title"] for s in d["sections"]] == list(SECTIONS) and d["gaps"] == card.gaps


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ModelCardError, match="EvaluationReport"):
        model_card({"accuracy": 0.9})
    with pytest.raises(ModelCardError, match="manifest"):
        model_card(manifest="build/tiny_manifest.json")
    with pytest.raises(ModelCardError, match="splits"):
        model_card(data={"splits": {"train": 0.8}})
