"""The report as text for the terminal: `format_report(report)` (a ModelReport from collect.py).

The same sections as the HTML page, in the same order: the layer table, totals and the
board's budget, float vs int8 on the data, the firmware run, the power estimate.
"""


def _n(v):
    return "-" if v is None else f"{v:,}"


def _shape(s):
    """(28, 28, 1); several tensors' shapes (a tuple of tuples) joined by ' and '."""
    if s and isinstance(s[0], tuple):
        return " and ".join(_shape(t) for t in s)
    return "(" + ", ".join(str(d) for d in s) + ")"


def layer_table(report):
    int8 = report.kind == "int8"
    has_error = any(r.error for r in report.layers)
    head = ["#", "layer", "kind", "output", "params", "MACs", "weight B", "act B"]
    if int8:
        head += ["scale", "zp"]
    if has_error:
        head += ["err LSB", "SQNR dB"]
    rows = []
    for r in report.layers:
        row = [str(r.index), r.name, r.kind + ("+" + r.activation if r.activation not in
                                                ("", "none", "linear") else ""),
               _shape(r.output_shape), _n(r.params), _n(r.macs), _n(r.weight_bytes),
               _n(r.activation_bytes)]
        if int8:
            row += [f"{r.scale:.4g}", str(r.zero_point)]
        if has_error:
            row += ([f"{r.error['lsb']:.2f}", f"{r.error['sqnr_db']:.1f}"] if r.error
                    else ["-", "-"])
        rows.append(row)
    t = report.totals
    total = ["", "total", "", "", _n(t.get("params")), _n(t.get("macs")),
             _n(t.get("weight_bytes")), ""] + [""] * (len(head) - 8)
    return _table(head, rows + [total], left={1, 2, 3})


def _table(head, rows, left=()):
    width = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]

    def line(row):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(row, width))).rstrip()
    return [line(head), "-" * len(line(head))] + [line(r) for r in rows]


def _bar(used, budget, width=30):
    share = used / budget if budget else 0
    filled = min(int(round(share * width)), width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {100 * share:5.1f}%"


def format_report(report):
    r = report
    out = [f"minitiny report: model {r.name!r} ({r.kind}) from {r.source}",
           f"input {_shape(r.input_shape)} -> output {_shape(r.output_shape)}", ""]
    out += layer_table(r)
    t = r.totals
    out.append("")
    if r.kind == "int8":
        out.append(f"flash (model): {_n(t['flash_estimate'])} B = weights {_n(t['weight_bytes'])} "
                   f"+ code ~{_n(t['code_bytes_estimate'])} (estimate)")
        out.append(f"RAM (model):   {_n(t['arena_bytes'])} B arena (lower bound "
                   f"{_n(t['arena_lower_bound'])}: the most bytes alive at one step)")
    else:
        out.append(f"float32 weights {_n(t['float_bytes'])} B; as int8 about "
                   f"{_n(t['flash_estimate'])} B of weights (flash) and {_n(t['ram_estimate'])} B "
                   "of activations (RAM)")
    b = r.budget
    if b:
        how = "measured by the firmware build" if b["measured"] else "model only, estimated"
        out += ["", f"budget of {b['board']} ({b['what']}), {how}: "
                    f"{'fits' if b['fits'] else 'DOES NOT FIT'}",
                f"  flash {_bar(b['flash_used'], b['flash_budget'])}  {_n(b['flash_used'])} of "
                f"{_n(b['flash_budget'])} B",
                f"  RAM   {_bar(b['ram_used'], b['ram_budget'])}  {_n(b['ram_used'])} of "
                f"{_n(b['ram_budget'])} B"]
    if r.metrics:
        m = r.metrics
        vals = ", ".join(f"{k} {m[k]:.4f}" for k in ("float", "int8") if k in m)
        out += ["", f"{m['metric']} on {m['n']:,} samples: {vals}"]
        if "float" in m and "int8" in m:
            d = m["int8"] - m["float"]
            out[-1] += f" (int8 - float = {d:+.4f})"
    if r.confusion:
        out += ["", f"confusion matrix ({r.confusion['model']}; rows true, columns predicted):"]
        names = r.confusion["classes"]
        rows = [[names[i]] + [str(v) for v in row] for i, row in enumerate(r.confusion["matrix"])]
        out += ["  " + line for line in _table(["true\\pred"] + names, rows, left={0})]
    if r.roc and r.task != "anomaly":
        out += ["", "ROC AUC (" + r.roc["score"] + "): " +
                ", ".join(f"{k} {v:.4f}" for k, v in r.roc["auc"].items())]
    if r.firmware is not None:
        out += ["", r.firmware.table()]
    elif r.firmware_note:
        out += ["", r.firmware_note]
    if r.power is not None:
        out += ["", str(r.power)]
    elif r.power_note:
        out += ["", r.power_note]
    if r.sanity:
        out += ["", r.sanity]
    if r.notes:
        out += [""] + [f"note: {n}" for n in r.notes]
    return "\n".join(out)
