"""Streamed (row-band) execution of convolution chains: only the rows the next layer needs
are alive.

In a chain of convolutions (a ResNet's stem and first residual block, a MobileNet's first
stages) every intermediate tensor is written whole before the next layer reads it, so the
arena holds two or three full feature maps at once. MCUNetV2 (Lin et al. 2021, "Memory-
efficient patch-based inference") computes the first layers patch by patch instead. Here the
patches are bands of whole rows, and rows a later band needs again are kept, not
recomputed (a line buffer, as image-signal processors stream): no extra MACs.

A stream is a run of consecutive ops (STREAMABLE, or ROW_WISE element-wise ops on equal
shapes) whose intermediate tensors are read only inside the run. Each op computes `band`
output rows per call, with the same kernel as the plain schedule, rendered for a band:

    output rows [r0, r0 + band) of a convolution read input rows
        [r0 * stride - pad_h, r0 * stride - pad_h + window_rows(band))
    window_rows(band) = (band - 1) * stride + (kernel_h - 1) * dilation + 1

so the band's kernel is the layer's own with in_h = window_rows(band), out_h = band and
pad_h = 0 (band_params): the rows of zero padding above and below the image are written out
as the input's zero point, which adds w * (Z - Z) = 0 to every sum as the skipped taps do,
so the bits are the plain schedule's. The columns keep their padding (pad_w). A pool leaves
padded taps out of its max and its average's count, so it streams only where no window
reaches past the image's top or bottom.

Each intermediate tensor lives in a window buffer of a few rows, and so does each stream
input that a convolution reads (its rows are copied in, with the padding rows). The order of
the calls is pulled from the last op: to compute band j, compute or copy first every input row
it reads (`build`). A window holds the rows from the lowest one any later action still reads
up to the highest one written so far, and slides down (a forward copy) when the next rows
would not fit; its size is the most rows it ever holds. The stream's output is written whole
and may share the bytes of a stream input when every row of that input is read for the last
time before the output row over it is written (`output_may_share`, e.g. the residual add of
a ResNet block over the block's input).

planner.py counts every window, the inputs and the output as alive for the whole stream;
generator.py chooses the streams under a RAM budget (`choose`) and writes the actions as
straight-line C (`c_actions`); `replay` runs the same actions in NumPy.
"""
from dataclasses import dataclass, field

import numpy as np

from minitiny.quant import kernels
from minitiny.quant.graph import QTensor

STREAMABLE = ("conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d")
POOLS = ("max_pool_2d", "average_pool_2d")     # only where no window reaches past the image
ROW_WISE = ("add", "sub", "mul", "maximum", "minimum", "squared_difference", "relu", "relu6",
            "logistic", "tanh", "leaky_relu", "hard_swish", "elu")
MAX_OPS = 8             # the longest run of ops `choose` tries as one stream


class StreamError(ValueError):
    """A run of ops that cannot be streamed, or a RAM budget no schedule meets (then with
    `chosen`, the streams that got closest, and `peak_step`, the op where the peak stays)."""

    def __init__(self, message, chosen=None, peak_step=None):
        super().__init__(message)
        self.chosen, self.peak_step = chosen or [], peak_step


@dataclass
class Stream:
    ops: list               # op indices, consecutive
    band: int               # output rows per call, of every op
    inputs: list            # tensors read from outside the stream (whole, in the arena)
    output: str             # the last op's output (whole, in the arena)
    windows: dict           # tensor -> rows its window holds
    names: dict             # tensor -> the plan's name of its window buffer
    row_bytes: dict         # tensor -> bytes of one row
    actions: list = field(default_factory=list)   # see build()
    share: str = None       # the stream input the output may be written over
    copied_bytes: int = 0   # bytes copied into windows and slid inside them
    extra_macs: int = 0     # MACs computed twice: 0, rows are kept, not recomputed

    def window_bytes(self):
        return {self.names[t]: rows * self.row_bytes[t] for t, rows in self.windows.items()}

    def why(self):
        return (f"streamed in bands of {self.band} row{'s' if self.band > 1 else ''}: "
                + ", ".join(f"{t} {rows} rows" for t, rows in self.windows.items())
                + f" alive, not whole; {self.extra_macs} extra MACs")


def _rows_read(op, p, r0, band):
    """The input rows [lo, hi) output rows [r0, r0 + band) of `op` read (lo < 0: padding)."""
    if op.kind in STREAMABLE:
        lo = r0 * p["stride_h"] - p["pad_h"]
        return lo, lo + window_rows(p, band)
    return r0, r0 + band


def window_rows(p, band):
    """Input rows a convolution's (or pool's) band of output rows reads."""
    kernel = p["kernel_h"] if "kernel_h" in p else p["pool_h"]
    return (band - 1) * p["stride_h"] + (kernel - 1) * p.get("dilation_h", 1) + 1


def band_params(op, p, band, height):
    """op.params for `band` of the `height` output rows of op, its padding rows written out
    (module doc)."""
    if op.kind in STREAMABLE:
        return dict(p, in_h=window_rows(p, band), out_h=band, pad_h=0,
                    macs=p["macs"] // p["out_h"] * band)
    q = dict(p, size=p["size"] // height * band)
    if "output_shape" in p:                     # (1, H, W, C) of the element-wise kinds
        shape = tuple(p["output_shape"])
        band_shape = (shape[0], band) + shape[2:]
        q.update(input1_shape=band_shape, input2_shape=band_shape, output_shape=band_shape)
    return q


def via_window(op, t, stream_inputs):
    """Does `op` read tensor t from a window (else from the whole tensor)? A convolution
    always does; a row-wise op only for an intermediate (a stream input is whole)."""
    return op.kind in STREAMABLE or t not in stream_inputs


def eligible(qmodel, op):
    """Why op cannot be part of a stream (a string), or None when it can."""
    p, acts = op.params, qmodel.activations(op)
    out = qmodel.tensors[op.outputs[0]]
    if p is None or len(op.outputs) != 1 or not acts:
        return "not one output from activations"
    if any(t.dtype != "int8" for t in acts + [out]) or len(out.shape) != 3:
        return "its tensors are not all int8 (H, W, C)"
    if op.kind in POOLS and (p["pad_h"] or window_rows(p, p["out_h"]) > p["in_h"]):
        # a pool leaves padded taps out of its max and its count: no zero-point rows for it
        return "a pool whose windows reach past the image's top or bottom"
    if op.kind in STREAMABLE:
        return None if len(acts) == 1 else "more than one activation input"
    if op.kind in ROW_WISE:
        if len(acts) != len(op.inputs) or any(t.shape != out.shape for t in acts):
            return "a constant or broadcast operand"
        return None
    return f"{op.kind} is not streamed"


def build(qmodel, op_indices, band):
    """The Stream of ops `op_indices` (consecutive) in bands of `band` rows; StreamError
    says why it cannot be one."""
    ops = [qmodel.ops[i] for i in op_indices]
    for op in ops:
        why = eligible(qmodel, op)
        if why:
            raise StreamError(f"op {op.name!r}: {why}")
        if qmodel.tensors[op.outputs[0]].shape[0] % band:
            raise StreamError(f"op {op.name!r}: {band} does not divide its output rows")
    producer = {op.outputs[0]: k for k, op in enumerate(ops)}
    output = ops[-1].outputs[0]
    later = [t for op in qmodel.ops[op_indices[-1] + 1:] for t in op.inputs]
    for t in producer:
        if t != output and (t in later or t in qmodel.outputs):
            raise StreamError(f"tensor {t!r} is read after the stream: it must be whole")
    inputs = []
    for op in ops:
        inputs += [t.name for t in qmodel.activations(op) if t.name not in producer and t.name not in inputs]
    windowed = [t for t in producer if t != output]
    windowed += [t for t in inputs if any(op.kind in STREAMABLE and op.inputs[0] == t for op in ops)]
    if output in [t for op in ops for t in op.inputs]:
        raise StreamError(f"the stream's output {output!r} is read inside it")
    shape = {t: qmodel.tensors[t].shape for t in windowed + inputs + [output]}

    # -- the order: pull band j of the last op, computing or copying what it reads first -----
    low = {t: min([0] + [_rows_read(op, op.params, 0, band)[0] for op in ops if t in op.inputs])
           for t in windowed}
    ready = dict(low)                  # the next (virtual) row of each window not yet present
    steps = []                         # (kind, tensor or op position, rows) in order
    accesses = {t: [] for t in windowed}   # t -> [(step, lo, hi)]

    def ensure(t, hi):
        height = shape[t][0]
        while ready[t] < hi:
            r = ready[t]
            if r < 0 or r >= height:   # padding rows: the zero point
                end = min(0, hi) if r < 0 else hi
                accesses[t].append((len(steps), r, end))
                steps.append(("fill", t, (r, end)))
            elif t in producer:
                compute(producer[t], r // band)
                continue
            else:
                end = min(height, hi)
                accesses[t].append((len(steps), r, end))
                steps.append(("copy", t, (r, end)))
            ready[t] = end

    def compute(k, j):
        op, r0 = ops[k], j * band
        reads = []
        for t in [t.name for t in qmodel.activations(op)]:
            lo, hi = _rows_read(op, op.params, r0, band)
            if via_window(op, t, inputs):
                ensure(t, hi)
            reads.append((t, lo, hi))
        out = op.outputs[0]
        for t, lo, hi in reads:
            if via_window(op, t, inputs):
                accesses[t].append((len(steps), lo, hi))
        if out in accesses:
            accesses[out].append((len(steps), r0, r0 + band))
            ready[out] = r0 + band
        steps.append(("call", k, (r0, reads)))

    for j in range(shape[output][0] // band):
        compute(len(ops) - 1, j)

    # -- the windows: the most rows alive at once, slid only when the next rows do not fit -----
    windows = {}
    for t, seen in accesses.items():
        future = np.minimum.accumulate([lo for _, lo, _ in seen][::-1])[::-1]
        high = np.maximum.accumulate([hi for _, _, hi in seen])
        windows[t] = int((high - future).max())
    row_bytes = {t: int(np.prod(s[1:])) for t, s in shape.items()}
    stream = Stream(list(op_indices), band, inputs, output, windows,
                    {t: (t if t in producer else f"{t} window") for t in windowed}, row_bytes)
    stream.actions = _actions(stream, steps, accesses, ops, qmodel)
    stream.share = output_may_share(stream, qmodel)
    return stream


def _actions(stream, steps, accesses, ops, qmodel):
    """The steps with window slots: ('fill', t, slot, rows, zero point), ('copy', t, slot,
    row, rows), ('slide', t, from slot, rows), ('call', op index, r0, [(t, where, row)], (t,
    where, row)) with where 'window' (row = a slot) or 'whole' (row of the whole tensor)."""
    top = {t: accesses[t][0][1] for t in accesses}
    high = dict(top)
    future = {t: np.minimum.accumulate([lo for _, lo, _ in seen][::-1])[::-1].tolist()
              for t, seen in accesses.items()}
    index = {t: {} for t in accesses}            # t -> {step: its first access at that step}
    for t, seen in accesses.items():
        for n, (step, _, _) in enumerate(seen):
            index[t].setdefault(step, n)
    actions, copied = [], 0

    def fit(t, step, hi):
        nonlocal copied
        if hi > top[t] + stream.windows[t]:
            new = future[t][index[t][step]]
            keep = max(0, high[t] - new)
            if keep:
                actions.append(("slide", t, new - top[t], keep))
                copied += keep * stream.row_bytes[t]
            top[t] = new
        high[t] = max(high[t], hi)

    for step, (kind, what, rows) in enumerate(steps):
        if kind in ("fill", "copy"):
            t, (lo, hi) = what, rows
            fit(t, step, hi)
            if kind == "fill":
                zero = int(qmodel.tensors[t].zero_point)
                actions.append(("fill", t, lo - top[t], hi - lo, zero))
            else:
                actions.append(("copy", t, lo - top[t], lo, hi - lo))
                copied += (hi - lo) * stream.row_bytes[t]
            continue
        k, (r0, reads) = what, rows
        op = ops[k]
        out = op.outputs[0]
        windowed = [(t, lo, hi) for t, lo, hi in reads if via_window(op, t, stream.inputs)]
        for t, lo, hi in windowed + ([(out, r0, r0 + stream.band)] if out in accesses else []):
            fit(t, step, hi)
        ins = [(t, "window", lo - top[t]) if via_window(op, t, stream.inputs) else (t, "whole", lo)
               for t, lo, _ in reads]
        dest = (out, "window", r0 - top[out]) if out in accesses else (out, "whole", r0)
        actions.append(("call", stream.ops[k], r0, ins, dest))
    stream.copied_bytes = copied
    return actions


def output_may_share(stream, qmodel):
    """The stream input whose bytes the output may take (same shape), or None: every row of
    it is read (copied, or read whole by a row-wise op) for the last time no later than the
    call that writes the output's row over it, and not after."""
    out_shape = qmodel.tensors[stream.output].shape
    for t in stream.inputs:
        if qmodel.tensors[t].shape != out_shape:
            continue
        last_read = {}
        for n, action in enumerate(stream.actions):
            if action[0] == "copy" and action[1] == t:
                for r in range(action[3], action[3] + action[4]):
                    last_read[r] = n
            if action[0] == "call":
                for name, where, row in action[3]:
                    if name == t and where == "whole":
                        for r in range(row, row + stream.band):
                            last_read[r] = n
        written = {}
        for n, action in enumerate(stream.actions):
            if action[0] == "call" and action[4][0] == stream.output:
                for r in range(action[4][2], action[4][2] + stream.band):
                    written[r] = n
        same_call_ok = lambda r: any(a[0] == "call" and qmodel.ops[a[1]].kind in ROW_WISE
                                     for a in [stream.actions[written[r]]])
        if all(last_read.get(r, -1) < written[r] or
               (last_read.get(r) == written[r] and same_call_ok(r)) for r in written):
            return t
    return None


def band_tensors(qmodel, stream, index):
    """{name: QTensor} of op `index` of the stream as its band kernel sees them: a window's
    rows (band input of a convolution, a band of rows otherwise), under the names of the
    buffers it reads and writes."""
    op, band = qmodel.ops[index], stream.band
    tensors, names = {}, {}
    for t in [t.name for t in qmodel.activations(op)] + [op.outputs[0]]:
        full = qmodel.tensors[t]
        rows = window_rows(op.params, band) if op.kind in STREAMABLE and t == op.inputs[0] else band
        name = stream.names[t] if t in stream.names and via_window(op, t, stream.inputs) else t
        tensors[name] = QTensor(name, (rows,) + full.shape[1:], full.dtype, full.scale, full.zero_point)
        names[t] = name
    return tensors, names


def replay(qmodel, stream, values):
    """Run the stream's actions in NumPy on values {tensor: (H, W, C) int8} of its inputs;
    returns the output (H, W, C). Checks the schedule, not the kernels: each call runs the
    NumPy kernel with the band's params, on the rows the C would pass."""
    window = {t: np.full((rows,) + qmodel.tensors[t].shape[1:], 99, np.int8)
              for t, rows in stream.windows.items()}    # 99: garbage a wrong slot would read
    whole = {t: np.array(values[t]) for t in stream.inputs}     # copies: the output may share one
    shape = qmodel.tensors[stream.output].shape
    whole[stream.output] = np.full(shape, 77, np.int8) if stream.share is None else whole[stream.share]
    for action in stream.actions:
        kind, t = action[0], action[1]
        if kind == "fill":
            window[t][action[2]:action[2] + action[3]] = action[4]
        elif kind == "copy":
            window[t][action[2]:action[2] + action[4]] = whole[t][action[3]:action[3] + action[4]]
        elif kind == "slide":
            window[t][:action[3]] = window[t][action[2]:action[2] + action[3]].copy()
        else:
            index, r0, ins, (out, where, row) = action[1:]
            op = qmodel.ops[index]
            p = band_params(op, op.params, stream.band, qmodel.tensors[op.outputs[0]].shape[0])
            tensors, names = band_tensors(qmodel, stream, index)
            args = []
            for name, src, at in ins:
                rows = tensors[names[name]].shape[0]
                buf = window[name] if src == "window" else whole[name]
                args.append(buf[at:at + rows][None])
            consts = {n: qmodel.tensors[n] for n in op.inputs if qmodel.tensors[n].is_constant}
            band_op = type(op)(op.kind, op.name, [names.get(n, n) for n in op.inputs],
                               [names[op.outputs[0]]], op.options, p)
            full_args, it = [], iter(args)
            for n in op.inputs:
                full_args.append(qmodel.tensors[n].data if n in consts else next(it))
            result = kernels.run(band_op, {**qmodel.tensors, **tensors}, full_args)[0]
            target = window[out] if where == "window" else whole[out]
            target[row:row + stream.band] = result
    return whole[stream.output]


def candidates(qmodel, peak_step):
    """Runs of ops [a, b] around `peak_step` (a <= peak_step <= b, at most MAX_OPS) that may
    stream, with every band size that divides their rows: [(a, b, band)], largest bands first."""
    n, found = len(qmodel.ops), []
    for a in range(max(0, peak_step - MAX_OPS + 1), peak_step + 1):
        for b in range(peak_step, min(n, a + MAX_OPS)):
            if any(eligible(qmodel, qmodel.ops[i]) for i in range(a, b + 1)):
                continue
            heights = [qmodel.tensors[qmodel.ops[i].outputs[0]].shape[0] for i in range(a, b + 1)]
            bands = [d for d in range(min(heights), 0, -1) if all(h % d == 0 for h in heights)]
            found += [(a, b, d) for d in bands if d < max(heights)]
    return found


def c_actions(stream, offset_of, layer_name, qmodel):
    """The C statements of a stream, one per action, with a comment: (code, comment) pairs.
    offset_of(buffer name) -> its arena offset."""
    lines = []
    for action in stream.actions:
        kind, t = action[0], action[1]
        if kind == "fill":
            at = offset_of(stream.names[t]) + action[2] * stream.row_bytes[t]
            lines.append((f"stream_fill(arena + {at}, {action[4]}, {action[3] * stream.row_bytes[t]});",
                          f"{t}: {action[3]} row(s) of padding"))
        elif kind == "copy":
            at = offset_of(stream.names[t]) + action[2] * stream.row_bytes[t]
            src = offset_of(t) + action[3] * stream.row_bytes[t]
            lines.append((f"stream_copy(arena + {at}, arena + {src}, {action[4] * stream.row_bytes[t]});",
                          f"{t}: rows {action[3]}..{action[3] + action[4] - 1} into its window"))
        elif kind == "slide":
            base = offset_of(stream.names[t])
            lines.append((f"stream_copy(arena + {base}, arena + {base + action[2] * stream.row_bytes[t]}, "
                          f"{action[3] * stream.row_bytes[t]});",
                          f"{t}: slide the window {action[2]} row(s) down"))
        else:
            index, r0, ins, out = action[1:]

            def ptr(ref):
                name, where, row = ref
                base = offset_of(stream.names[name]) if where == "window" else offset_of(name)
                return f"arena + {base + row * stream.row_bytes[name]}"
            args = ", ".join(ptr(r) for r in ins + [out])
            lines.append((f"{layer_name(index)}({args});",
                          f"{qmodel.ops[index].name}: rows {r0}..{r0 + stream.band - 1}"))
    return lines


def planned(qmodel, s):
    """The planner's view of Stream s (planner.Streamed)."""
    from .planner import Streamed
    tensors = list(s.inputs) + [s.output] + [t for t in s.windows if t in s.names and s.names[t] == t]
    return Streamed(s.ops[0], s.ops[-1], tensors, s.window_bytes(), s.share, s.why())


def choose(qmodel, budget, arena_of, peak_of, chosen=()):
    """The streams that bring the arena to `budget` bytes or below: [Stream].

    Greedy, as the planner: while the arena is over budget, take the step where the most
    bytes are alive, try every run of ops around it that may stream with every band size
    (`candidates`; a run that overlaps streams already chosen replaces them), and keep the
    one with the largest band (fewest calls) whose peak meets the budget, else the one with
    the lowest peak. arena_of(streams) -> the plan's arena
    bytes, peak_of(streams) -> its lower bound (cheaper, to compare the candidates).
    StreamError names the smallest arena reached when no more streaming lowers the peak.
    `chosen`: streams already decided."""
    chosen = list(chosen)
    while True:
        size, plan = arena_of(chosen)
        if size <= budget:
            return chosen
        live = plan.live_bytes
        peak_step = max(range(len(live)), key=lambda i: live[i]) if live else 0
        best, best_key = None, None
        for a, b, band in candidates(qmodel, peak_step):
            try:
                s = build(qmodel, list(range(a, b + 1)), band)
            except StreamError:
                continue
            streams = [c for c in chosen if c.ops[-1] < a or c.ops[0] > b] + [s]
            lower = peak_of(streams)
            key = (lower > budget, -band if lower <= budget else lower, b - a, -band)
            if best_key is None or key < best_key:
                best, best_key = streams, key
        if best is None or peak_of(best) >= peak_of(chosen):
            where = qmodel.ops[peak_step].name if qmodel.ops else "-"
            raise StreamError(f"ram_budget={budget} B cannot be met: the smallest arena reachable "
                              f"is {size} B (peak {max(live + [0])} B at op {peak_step} {where!r}, "
                              f"which no streamed run of convolutions lowers further)",
                              chosen, peak_step if qmodel.ops else None)
        chosen = sorted(best, key=lambda s: s.ops[0])
