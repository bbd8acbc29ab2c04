"""Where does int8 lose accuracy? Per-op error of an int8 model against its float model.

    report = quantization_report(model, qmodel, x_test, y_test)
    print(report)                      # a table, one row per op, and the first op that diverges
    report.first_divergent             # the OpError that crossed the threshold, or None

Both models run on the same inputs x. For every op output (the int8 graph and the lowered
float graph share tensor names) the dequantized int8 value r = s * (q - z) is compared with
the float value:

    RMSE, max |error|          in real units
    LSB    = RMSE / scale      in steps of the int8 grid (rounding alone gives ~0.29 LSB)
    %range = RMSE / (max - min of the float tensor)
    SQNR   = 10 log10(sum f^2 / sum (r - f)^2) dB (signal-to-quantization-noise ratio;
             every bit of precision is worth about 6 dB)
    alone  = the LSB error of the op by itself: the float op run on the dequantized int8
             inputs (so earlier errors are not counted), as TFLite's quantization debugger does
    ch spread = the widest channel's range / the median channel's range: activations are
             quantized per tensor, so one wide channel costs all the others resolution

The error accumulates along the graph; the first op whose %range exceeds `threshold` is
where the int8 model starts to diverge: look at its range (an outlier activation?), its
"alone" error (weights that quantize badly?) or the op before it.
"""
from dataclasses import dataclass, field

import numpy as np

from ..tensor import Tensor, no_grad
from .calibrate import prepare_data
from .lower import lower, run_op
from .qat import QATModel
from .quantizer import FIXED_OUTPUT

OUTLIER_SPREAD = 10.0       # a channel range this many times the median is worth a warning


@dataclass
class OpError:
    index: int
    name: str
    kind: str
    layers: str
    scale: float
    zero_point: int
    float_min: float
    float_max: float
    rmse: float
    max_abs: float
    lsb: float              # RMSE / scale
    rel: float              # RMSE / (float_max - float_min)
    sqnr_db: float
    alone_lsb: float        # the op's own error, in LSB of its output
    spread: float           # largest channel range / median channel range (last axis)


@dataclass
class QuantizationReport:
    model: str
    n_samples: int
    threshold: float
    rows: list = field(default_factory=list)
    first_divergent: OpError = None
    metric: str = None
    float_metric: float = None
    int8_metric: float = None

    def __str__(self):
        head = ("#", "op", "kind", "layers", "scale", "zp", "RMSE", "max|err|", "LSB", "%range",
                "SQNR dB", "alone LSB", "ch spread")
        rows = [(str(r.index), r.name, r.kind, r.layers, f"{r.scale:.4g}", str(r.zero_point),
                 f"{r.rmse:.4g}", f"{r.max_abs:.4g}", f"{r.lsb:.2f}", f"{100 * r.rel:.2f}",
                 f"{r.sqnr_db:.1f}", f"{r.alone_lsb:.2f}", f"{r.spread:.1f}") for r in self.rows]
        width = [max(len(row[i]) for row in rows + [head]) for i in range(len(head))]
        left = (1, 2, 3)

        def line(row):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, width))).rstrip()
        out = [f"Quantization report: {self.model!r}, float vs int8 on {self.n_samples} samples",
               line(head), "-" * len(line(head))] + [line(r) for r in rows]
        d = self.first_divergent
        if d is None:
            out.append(f"No op exceeds the threshold ({100 * self.threshold:g}% of its range).")
        else:
            out.append(f"First op to diverge: {d.name!r} ({d.kind}, layer {d.layers}): RMSE "
                       f"{d.rmse:.4g} = {d.lsb:.1f} LSB = {100 * d.rel:.2f}% of its range "
                       f"[{d.float_min:.4g}, {d.float_max:.4g}] (threshold "
                       f"{100 * self.threshold:g}%); on its own it adds {d.alone_lsb:.2f} LSB.")
        wide = [r for r in self.rows if r.spread >= OUTLIER_SPREAD and r.kind not in FIXED_OUTPUT]
        if wide:
            out.append("Outlier channels (one channel's range >= "
                       f"{OUTLIER_SPREAD:g}x the median; per-tensor int8 leaves the others few "
                       "levels): " + ", ".join(f"{r.name!r} ({r.spread:.0f}x)" for r in wide)
                       + ". Quantization-aware training (quantize_aware) can adapt to it.")
        if self.metric is not None:
            out.append(f"{self.metric}: float {self.float_metric:.4f}, int8 {self.int8_metric:.4f}")
        return "\n".join(out)

    def __repr__(self):
        return str(self)


class _Sums:
    """Running sums for one tensor over the batches."""

    def __init__(self):
        self.n = 0
        self.sq_err = self.sq_sig = self.sq_alone = 0.0
        self.max_abs, self.lo, self.hi = 0.0, np.inf, -np.inf
        self.ch_lo = self.ch_hi = None              # per channel (last axis) min and max

    def add(self, f, r, alone):
        e = r - f
        self.n += e.size
        self.sq_err += float(np.sum(e * e))
        self.sq_sig += float(np.sum(f * f))
        self.sq_alone += float(np.sum((r - alone) ** 2))
        self.max_abs = max(self.max_abs, float(np.abs(e).max(initial=0.0)))
        self.lo, self.hi = min(self.lo, float(f.min())), max(self.hi, float(f.max()))
        per_channel = f.reshape(-1, f.shape[-1])
        lo, hi = per_channel.min(axis=0), per_channel.max(axis=0)
        self.ch_lo = lo if self.ch_lo is None else np.minimum(self.ch_lo, lo)
        self.ch_hi = hi if self.ch_hi is None else np.maximum(self.ch_hi, hi)

    def spread(self):
        span = self.ch_hi - self.ch_lo
        median = float(np.median(span))
        return float(span.max() / median) if median > 0 else (np.inf if span.max() > 0 else 1.0)


def _sqnr_db(signal, noise):
    """10 log10(signal / noise); +inf without noise, -inf for an all-zero signal."""
    if noise == 0:
        return np.inf
    return float(10 * np.log10(signal / noise)) if signal > 0 else -np.inf


def _metric(pred, y):
    """Accuracy for a classifier (class axis > 1), mean squared error otherwise."""
    y = np.asarray(y)
    if pred.shape[-1] > 1:
        labels = y.argmax(-1) if y.ndim == pred.ndim else y.reshape(len(y))
        return "accuracy", float(np.mean(pred.argmax(-1) == labels))
    return "mse", float(np.mean((pred.reshape(len(pred), -1) - y.reshape(len(y), -1)) ** 2))


def quantization_report(model, qmodel, x, y=None, threshold=0.02, batch_size=256):
    """Per-op error of `qmodel` (int8) against `model` (float, or quantization-aware) on x.

    threshold: the fraction of a tensor's float range above which its RMSE counts as
    divergence (0.02 = 2%, about 5 LSB; rounding alone costs ~0.1%).
    Returns a QuantizationReport; print it for the table.
    """
    graph = model.lowered(refresh=True) if isinstance(model, QATModel) else lower(model)
    missing = [op.name for op in qmodel.ops if op.outputs[0] not in
               {o.name for o in graph.ops}]
    if missing:
        raise ValueError(f"the int8 model does not come from this float model: its ops "
                         f"{missing[:5]} have no float counterpart")
    x = prepare_data(graph, x)
    sums = {op.name: _Sums() for op in qmodel.ops}
    float_out, int8_out = [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        floats = graph.run(xb)
        ints = qmodel.predict_int8(qmodel.quantize_input(xb), return_all=True)
        real = {name: qmodel.tensors[name].dequantize(q).astype(np.float64)
                for name, q in ints.items()}
        with no_grad():
            for qop in qmodel.ops:
                name = qop.outputs[0]
                fop = graph.op(name)
                args = [Tensor(real[n]) for n in fop.inputs]
                w = None if fop.weight is None else Tensor(fop.weight)
                b = None if fop.bias is None else Tensor(fop.bias)
                alone = run_op(fop, args, w, b).data
                sums[qop.name].add(floats[name], real[name], alone)
        float_out.append(floats[graph.output])
        int8_out.append(real[qmodel.outputs[0]])

    report = QuantizationReport(graph.name, len(x), float(threshold))
    for i, qop in enumerate(qmodel.ops):
        s, t = sums[qop.name], qmodel.tensors[qop.outputs[0]]
        rmse = np.sqrt(s.sq_err / s.n)
        scale = float(t.scale)
        span = s.hi - s.lo
        row = OpError(i, qop.name, qop.kind, graph.op(qop.name).layer_names.replace("'", ""),
                      scale, int(t.zero_point), s.lo, s.hi, float(rmse), s.max_abs,
                      float(rmse / scale), float(rmse / span) if span > 0 else 0.0,
                      _sqnr_db(s.sq_sig, s.sq_err),
                      float(np.sqrt(s.sq_alone / s.n) / scale), s.spread())
        report.rows.append(row)
        if report.first_divergent is None and row.rel > threshold:
            report.first_divergent = row
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        fo, io = np.concatenate(float_out), np.concatenate(int8_out)
        report.metric, report.float_metric = _metric(fo, y)
        report.int8_metric = _metric(io, y)[1]
    return report
