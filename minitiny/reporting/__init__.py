"""Reports on a model, and the progress bar of long work.

    from minitiny.reporting import collect, format_report, write_html
    report = collect("build/digits", board="nano33ble", x=x_test, y=y_test,
                     float_model="model.npz", rate="1/s", battery="cr2032")
    print(format_report(report))                 # the text table
    write_html(report, "build/digits/report.html")   # one self-contained page

Files, in reading order:
    progress.py       a dependency-free progress bar (only on a terminal) and a fit callback
    model_report.py   what a report holds (ModelReport), gathered by collect() from a model,
                      the data and a firmware run
    text.py           the report as text
    html.py           the report as HTML (report.html.j2, autoescaped; the arena as SVG)
"""
from .model_report import LayerRow, ModelReport, ReportError, collect
from .html import render as render_html, write_html
from .progress import Progress, TrainingProgress, on_terminal
from .text import format_report

__all__ = ["collect", "format_report", "write_html", "render_html", "ModelReport", "LayerRow",
           "ReportError", "Progress", "TrainingProgress", "on_terminal"]
