"""The model report: what it holds (against numbers computed here independently), the HTML
page's safety (names are escaped, no script at all), the arena drawing, the power section,
and the page rendered in a real headless browser (Debian's chromium), when installed.
"""
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import minitiny as mt
from minitiny.deploy import boards
from minitiny.layers import Dense
from minitiny.reporting import collect, format_report, render_html, write_html
from minitiny.reporting.html import timeline

EVIL = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """A tiny classifier whose layer and model names try to inject HTML."""
    d = tmp_path_factory.mktemp("evil")
    mt.random.seed(3)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 240)
    x = (np.eye(3, 5, dtype=np.float32)[y] * 2 + 0.3 * rng.standard_normal((240, 5))).astype(np.float32)
    model = mt.Sequential([Dense(6, activation="relu", input_shape=[5], name=EVIL),
                           Dense(3, activation="softmax", name='q"&<b>')], name="<i>evil</i>")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=20, verbose=0)
    model.save(str(d / "evil.npz"))
    qmodel = mt.quantize(model, x[:200])
    mt.codegen.generate(qmodel, str(d / "c"), name="evil")
    return d, model, qmodel, x, y


@pytest.fixture(scope="module")
def evil_report(evil):
    d, model, qmodel, x, y = evil
    return collect(str(d / "c"), x=x[200:], y=y[200:], float_model=str(d / "evil.npz"),
                   board="tiny", run_firmware=False)


def test_layer_table_holds_the_models_numbers(evil, evil_report):
    _, model, qmodel, _, _ = evil
    r = evil_report
    assert [row.name for row in r.layers] == [op.name for op in qmodel.ops]
    first = r.layers[0]
    # Dense 5 -> 6: 30 weights + 6 biases; 30 multiply-accumulates; output 6 int8 bytes
    assert (first.params, first.macs, first.activation_bytes) == (36, 30, 6)
    assert first.output_shape == (6,)
    assert first.kind == "fully_connected" and first.activation == "relu"
    out = qmodel.tensors[qmodel.ops[0].outputs[0]]
    assert first.scale == pytest.approx(float(out.scale)) and first.zero_point == int(out.zero_point)
    assert r.totals["params"] == 36 + 21
    assert r.totals["macs"] == 30 + 18


def test_per_layer_error_is_small_for_a_well_calibrated_model(evil_report):
    errors = [row.error for row in evil_report.layers]
    assert all(e is not None for e in errors)
    # an int8 grid step is 1 LSB; rounding alone gives ~0.29 LSB, a few layers add a little
    assert all(0 <= e["lsb"] < 3 for e in errors)


def test_accuracy_and_confusion_matrix_against_a_naive_count(evil, evil_report):
    _, model, qmodel, x, y = evil
    xt, yt = x[200:], y[200:]
    pred_int8 = qmodel.predict(xt).argmax(-1)
    naive = [[0] * 3 for _ in range(3)]
    for t, p in zip(yt, pred_int8):
        naive[int(t)][int(p)] += 1
    assert evil_report.confusion["matrix"] == naive
    assert evil_report.metrics["int8"] == pytest.approx(np.mean(pred_int8 == yt))
    assert evil_report.metrics["float"] == pytest.approx(np.mean(model.predict(xt).argmax(-1) == yt))


def test_budget_against_the_board_table(evil_report):
    b = evil_report.budget
    tiny = boards.get("tiny")
    assert (b["flash_budget"], b["ram_budget"]) == (tiny.flash_bytes, tiny.ram_bytes)
    t = evil_report.totals
    assert b["flash_used"] == t["weight_bytes"] + t["code_bytes_estimate"]
    assert b["fits"] == (b["flash_used"] <= tiny.flash_bytes and b["ram_used"] <= tiny.ram_bytes)


def test_html_escapes_every_name_and_has_no_script(evil_report):
    page = render_html(evil_report, with_plots=False)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<i>evil</i>" not in page and "&lt;i&gt;evil&lt;/i&gt;" in page
    assert "<b>" not in page and "q&#34;&amp;&lt;b&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")   # nothing fetched
    assert "https://" not in page


def test_html_parses_and_its_svg_is_well_formed(evil_report):
    page = render_html(evil_report, with_plots=False)
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    root = ET.fromstring(svg)                      # raises on malformed XML
    rects = [e for e in root.iter("{http://www.w3.org/2000/svg}rect")]
    peaks = [s for s in evil_report.steps if s["peak"]]
    assert peaks                                   # the steps that set the arena are shaded
    assert len(rects) == 1 + len(evil_report.plan) + len(peaks)  # the frame, one per buffer and peak


def test_text_report_names_every_layer(evil_report):
    text = format_report(evil_report)
    for row in evil_report.layers:
        assert row.name in text
    assert "budget of tiny" in text


def _overlap(a, b, eps=0.05):
    """Do two rectangles share area (touching edges, within rounding, do not count)?"""
    return (a["x"] + eps < b["x"] + b["w"] and b["x"] + eps < a["x"] + a["w"]
            and a["y"] + eps < b["y"] + b["h"] and b["y"] + eps < a["y"] + a["h"])


def test_arena_timeline_geometry():
    """Rectangles follow the plan: x from the step range, y from the offset; buffers alive at
    the same time are drawn apart, and the top edge of offset 0 is the plot's top."""
    from minitiny.reporting.model_report import ModelReport
    plan = [{"offset": 0, "size": 100, "first": -1, "last": 0, "tensors": ["in"]},
            {"offset": 100, "size": 50, "first": 0, "last": 1, "tensors": ["a"]},
            {"offset": 0, "size": 40, "first": 1, "last": 2, "tensors": ["b", "b2"]}]
    r = ModelReport(name="m", source="-", kind="int8", plan=plan, op_names=["op0", "op1", "op2"])
    t = timeline(r, width=500, height=300, left=50, bottom=100, top=10, right=10)
    rects = t["rects"]
    step_w = (500 - 50 - 10) / 5                     # 5 steps: input copy, 3 ops, output copy
    # (coordinates are rounded to 0.01 px in the SVG)
    byte_h = (300 - 10 - 100) / 150                  # the arena is 150 bytes
    assert rects[0]["y"] == pytest.approx(10)
    assert rects[1]["y"] == pytest.approx(10 + 100 * byte_h, abs=0.01)
    assert rects[1]["h"] == pytest.approx(50 * byte_h, abs=0.01)
    assert rects[2]["x"] == pytest.approx(50 + 2 * step_w + 1, abs=0.01)     # first step 1 -> column 2
    assert rects[2]["w"] == pytest.approx(2 * step_w - 2, abs=0.01)
    assert "b = b2" in rects[2]["tip"]
    live = lambda b, s: b["first"] <= s <= b["last"]
    for i in range(3):
        for j in range(i + 1, 3):
            together = any(live(plan[i], s) and live(plan[j], s) for s in range(-1, 4))
            if together:
                assert not _overlap(rects[i], rects[j])


def test_regression_report_mse(tmp_path):
    (x, y), _ = mt.datasets.load_sine(n=300)
    mt.random.seed(0)
    model = mt.Sequential([Dense(8, activation="relu", input_shape=[1]), Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")
    model.fit(x, y, epochs=30, verbose=0)
    model.save(str(tmp_path / "sine.npz"))
    r = collect(str(tmp_path / "sine.npz"), x=x, y=y)          # quantized here, on x
    assert r.task == "regression" and r.kind == "int8"
    assert any("quantized here" in n for n in r.notes)
    pred = r.qmodel.predict(x).reshape(-1)
    assert r.metrics["int8"] == pytest.approx(float(np.mean((pred - y.reshape(-1)) ** 2)))


def test_power_says_why_without_the_toolchain(evil, monkeypatch):
    from minitiny.reporting import model_report
    d = evil[0]
    monkeypatch.setattr(model_report.shutil, "which", lambda name: None)
    r = collect(str(d / "c"), board="nano33ble", rate="1/s", battery="cr2032")
    assert r.power is None
    assert "unavailable" in r.power_note and "arm-none-eabi-gcc" in r.power_note
    page = render_html(r, with_plots=False)
    assert "latency, energy and battery life are unavailable" in page


TOOLCHAIN = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")


@pytest.mark.skipif(not TOOLCHAIN, reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_power_section_from_a_firmware_run(evil):
    d = evil[0]
    r = collect(str(d / "c"), board="nano33ble", rate="1/s", battery="cr2032", firmware_inputs=2)
    assert r.firmware is not None and r.firmware.ok
    board = boards.get("nano33ble")
    # latency = instructions x CPI / clock, from the board table's figures
    assert r.power.latency_s.typ == pytest.approx(r.firmware.instructions * board.cpi.typ
                                                  / board.clock_hz)
    assert r.budget["measured"] and r.budget["flash_used"] == r.firmware.flash["used"]
    page = render_html(r, with_plots=False)
    assert "battery life (cr2032)" in page and "Assumptions" in page
    assert "MLPerf Tiny" in page                     # the sanity table of a Cortex-M4 board
    text = format_report(r)
    assert "Power estimate: nano33ble" in text


def test_write_html_is_atomic_and_complete(evil_report, tmp_path):
    path = write_html(evil_report, tmp_path / "sub" / "r.html", with_plots=False)
    assert os.listdir(tmp_path / "sub") == ["r.html"]      # no temporary file left behind
    assert open(path, encoding="utf-8").read().rstrip().endswith("</html>")


# ---- a real browser ------------------------------------------------------------------------
def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium: apt-get install -y "
                    "--no-install-recommends chromium")
def test_page_renders_in_headless_chromium(evil_report, tmp_path):
    """Chromium renders the page to a screenshot; the page is long and not blank, and the
    escaped script never ran (a script would be blocked by the CSP and is not there)."""
    from minitiny.reporting import plots
    html = write_html(evil_report, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
           "--window-size=1280,2400", f"--screenshot={shot}", f"file://{html}"]
    subprocess.run(cmd, capture_output=True, timeout=90)
    assert shot.exists() and shot.stat().st_size > 10_000
    if plots.available():                     # Pillow comes with matplotlib
        from PIL import Image
        im = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
        assert im.shape == (2400, 1280)
        assert im.std() > 10                  # text, tables and the SVG, not a blank page
        dark_rows = np.mean(im < 128, axis=1) > 0.002
        assert dark_rows[:1200].sum() > 100   # content fills the first half of the page
