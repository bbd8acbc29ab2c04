"""The report as one self-contained HTML page: `write_html(report, path)`.

Everything is inline (CSS, the arena timeline as SVG, plots as PNG data URIs): the page
opens from a file, offline, and can be mailed or archived as one file. It has no
JavaScript at all, and a Content-Security-Policy that forbids any, so a model whose layer is
named `<script>...` cannot run code in the reader's browser: the template (report.html.j2)
is rendered with Jinja2's autoescape on, so every name from a model is escaped, and the
numbers for the SVG are computed here as plain floats.
"""
import base64
import functools
import os
import re
import shutil
import tempfile

import jinja2

from minitiny.files import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")


@functools.lru_cache(maxsize=None)
def _environment():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["n"] = lambda v: "-" if v is None else f"{v:,}"
    env.filters["shape"] = lambda s: "(" + ", ".join(str(d) for d in s) + ")"
    return env


# ---- the arena plan as a timeline ------------------------------------------------------
def timeline(report, width=1100, height=280, left=70, bottom=110, top=10, right=10):
    """Rectangles for the SVG: x = step (input copy, each op, output copy), y = arena offset.

    One rectangle per buffer: it spans the steps from the one that writes it to the last one
    that reads it, at its offset, as tall as its size. Tensors sharing a buffer (a reshape's
    alias, an in-place activation) are one rectangle labelled with all their names; an op
    that writes over its input with its output a little before it shows as two rectangles
    overlapping at that step. A streamed run of ops (computed band by band, its calls
    interleaved) keeps its window buffers alive from its first op to its last: their
    rectangles span the run, and its ops' labels say "streamed". The steps where the most
    bytes are alive are shaded."""
    plan, names = report.plan, report.op_names
    if not plan:
        return None
    arena = max(max(b["offset"] + b["size"] for b in plan), 1)
    steps = len(names) + 2                                  # -1 .. n
    sw = (width - left - right) / steps
    sy = (height - top - bottom) / arena
    rects = []
    for i, b in enumerate(plan):
        x = left + (b["first"] + 1) * sw
        w = (b["last"] - b["first"] + 1) * sw
        y = top + b["offset"] * sy
        h = max(b["size"] * sy, 3.0)            # a tiny buffer stays visible
        label = " = ".join(b["tensors"])
        rects.append({"x": round(x + 1, 2), "y": round(y, 2), "w": round(max(w - 2, 1), 2),
                      "h": round(h, 2), "color": PALETTE[i % len(PALETTE)],
                      "label": label if h >= 12 and w >= 8 * min(len(label), 40) * 0.6 else "",
                      "tip": f"{label}: {b['size']:,} B at offset {b['offset']:,}, alive from "
                             f"step {b['first']} to {b['last']}",
                      "tx": round(x + 4, 2), "ty": round(y + min(h, 24) / 2 + 4, 2)})
    peaks = [{"x": round(left + (r["step"] + 1) * sw, 2), "w": round(sw, 2),
              "tip": f"peak: {r['live_bytes']:,} B alive at step {r['step']} ({r['op']})"}
             for r in report.steps if r.get("peak")]
    streamed = {r["op"] for r in report.steps if r.get("streamed")}
    labels = ["input copy"] + [f"{n[:11]} (streamed)" if n in streamed else n for n in names] + ["output copy"]
    ticks = [{"x": round(left + (s + 0.5) * sw, 2), "label": lab}
             for s, lab in enumerate(labels)]
    yticks = [{"y": round(top + v * sy, 2), "label": f"{v:,}"}
              for v in sorted({0, arena // 2, arena})]
    return {"width": width, "height": height, "left": left, "top": top,
            "plot_h": height - top - bottom, "plot_w": width - left - right,
            "base": height - bottom, "rects": rects, "ticks": ticks, "yticks": yticks, "peaks": peaks,
            "arena": arena}


# ---- plots as data URIs --------------------------------------------------------------------
def plot_images(report, folder=None):
    """({title: PNG bytes}, note) for the plots this report has data for; without matplotlib
    no plots and a note saying how to get them. A plot that fails becomes a note too: the
    page is still written.

    folder: also keep the PNG files there (the command line's --plots DIR)."""
    from minitiny.reporting import plots
    if not plots.available():
        return {}, "plots need matplotlib: pip install 'minitiny[plots]'"
    a, tmp = report.arrays, tempfile.mkdtemp(prefix="minitiny-plots-")
    where = folder or tmp
    wanted = []                           # (title, file name, draw(path), shown on the page?)
    if report.history:
        wanted.append(("training curves", "history.png",
                       lambda p: plots.plot_history(report.history, p, title=report.name), True))
    if report.confusion and folder:       # the page shows it as a shaded table instead
        c = report.confusion
        wanted.append(("confusion matrix", "confusion.png", lambda p: plots.plot_confusion_matrix(
            c["matrix"], p, c["classes"], title=f"Confusion matrix ({c['model']})"), False))
    if report.task == "regression" and a.get("y") is not None:
        x = a["x"] if a["x"][0].size == 1 else None         # one feature: the sine plot
        wanted.append(("predicted vs true", "predictions.png",
                       lambda p: plots.plot_predictions(x, a["y"], p, a["outputs"]), True))
    if report.roc and a.get("scores"):
        wanted.append(("ROC", "roc.png", lambda p: plots.plot_roc(a["y"], a["scores"], p), True))
    out, failed = {}, []
    try:
        for title, fname, draw, shown in wanted:
            try:
                path = draw(os.path.join(where, fname))
            except (ValueError, RuntimeError) as e:
                failed.append(f"{title}: {e}")
                continue
            if shown:
                with open(path, "rb") as f:
                    out[title] = f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, ("some plots failed: " + "; ".join(failed)) if failed else None


# ---- the power section ---------------------------------------------------------------------
def power_rows(est):
    from minitiny.deploy.power import rows
    return rows(est)


def eval_tables(ev):
    """EvaluationReport.tables() with every cell formatted as text."""
    from minitiny.reporting.evaluation import fmt
    return [(title, [str(h) for h in head], [[fmt(c) for c in row] for row in rows])
            for title, head, rows in ev.tables()
            if not title.lower().startswith("confusion")]     # shown shaded, above


def confusion_cells(conf):
    """Each cell's count and a shade from its share of the true class (the row)."""
    out = []
    for row in conf["matrix"]:
        total = sum(row) or 1
        out.append([{"v": v, "alpha": round(0.85 * v / total, 3), "dark": v / total > 0.55}
                    for v in row])
    return out


def markdown_blocks(text):
    """Just enough Markdown for the model card: headings, tables and paragraphs, as text.

    The text is escaped by the template like everything else; HTML comments (the card's
    TODO(user) markers) are dropped and emphasis markers removed."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    blocks, table, para = [], None, []

    def clean(s):
        return re.sub(r"(\*\*|__|(?<![\w])_|_(?![\w])|`)", "", s).strip()

    def flush():
        nonlocal table
        if table is not None:
            blocks.append(table)
            table = None
        if para:
            blocks.append({"kind": "p", "text": clean(" ".join(para))})
            para.clear()
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|"):
            if para:
                flush()
            cells = [clean(c.replace("\\|", "|")) for c in re.split(r"(?<!\\)\|", s.strip("|"))]
            table = table or {"kind": "table", "head": None, "rows": []}
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):     # the |---| line
                if len(table["rows"]) == 1:
                    head = table["rows"].pop()
                    table["head"] = head if any(head) else None
            else:
                table["rows"].append(cells)
        elif s.startswith("#"):
            flush()
            blocks.append({"kind": "h", "text": clean(s.lstrip("#"))})
        elif not s:
            flush()
        elif s.startswith("- "):                       # a list item: its own paragraph
            flush()
            para.append("• " + s[2:])
            flush()
        else:
            if table is not None:
                flush()
            para.append(s)
    flush()
    return blocks


def render(report, plots_dir=None, with_plots=True):
    images, plots_note = plot_images(report, plots_dir) if with_plots else ({}, None)
    budget_rows = []
    if report.budget:
        b = report.budget
        for what in ("flash", "ram"):
            used, have = b[f"{what}_used"], b[f"{what}_budget"]
            share = used / have if have else 0
            budget_rows.append({"what": "flash" if what == "flash" else "RAM", "used": used,
                                "budget": have, "pct": round(100 * share, 2),
                                "width": round(min(100 * share, 100), 2), "fits": used <= have})
    fw = report.firmware
    context = {
        "r": report, "t": report.totals, "timeline": timeline(report),
        "int8": report.kind == "int8", "has_error": any(r.error for r in report.layers),
        "budget_rows": budget_rows,
        "confusion_cells": confusion_cells(report.confusion) if report.confusion else None,
        "eval_tables": eval_tables(report.evaluation) if report.evaluation is not None else [],
        "firmware_text": fw.table() if fw is not None else None,
        "power_rows": power_rows(report.power) if report.power is not None else None,
        "images": [(title, base64.b64encode(data).decode("ascii")) for title, data in images.items()],
        "plots_note": plots_note,
        "card": None if report.card is None else dict(
            report.card.as_dict(), blocks=[(t, markdown_blocks(body))
                                           for t, body in report.card.sections]),
    }
    return _environment().get_template("report.html.j2").render(context)


def write_html(report, path, plots_dir=None, with_plots=True):
    """Render and write atomically (temp file in the same folder + os.replace); return path."""
    return atomic_write(path, render(report, plots_dir, with_plots))
