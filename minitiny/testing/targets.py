"""Targeted inputs: per layer, the accumulators where its requantization is on a knife edge.

A weighted layer (fully_connected, conv_2d, depthwise_conv_2d) computes, per output value e,

    acc[e] = bias[c] + sum over taps t of w[e, t] * (x[index[e, t]] - z_in)      (c: e's channel)
    out[e] = clamp(MultiplyByQuantizedMultiplier(acc[e], M[c], shift[c]) + z_out, lo, hi)

Random inputs rarely put acc[e] where the epilogue takes a rare branch: a rounding tie (the
remainder of RoundingDivideByPOT exactly one half, where only the sign correction decides),
the first and last accumulators the clamp lets through, the wrap of acc * 2^left for a
multiplier above one. `knife_edges` lists those accumulators for one channel (it evaluates
the exact integer requantization of minitiny.quant.fixedpoint around each estimate);
`LinearLayer` writes a layer as the linear form above (index, w, bias), so that

  - for a layer that reads the model input (the first weighted layer, maybe after a
    reshape), the input giving acc[e] = T is *solved* for: a greedy integer walk over the
    taps, large weights first, exact when a weight of 1 (or a gcd 1 chain) is among them;
  - for a deeper layer, `hill_climb` *searches*: it mutates model inputs and keeps those
    that bring acc[e] closer to T, with the whole model run in NumPy (QModel.predict_int8).

`targeted_inputs(qmodel, n)` gathers both into a batch of int8 model inputs.
"""
import time

import numpy as np

from minitiny.quant import fixedpoint as fp, kernels

WEIGHTED = ("fully_connected", "conv_2d", "depthwise_conv_2d")
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


# ---------------------------------------------------------------------------------------
# 1. The accumulators where one channel's epilogue is on an edge
# ---------------------------------------------------------------------------------------
def requantize(acc, multiplier, shift, out_offset, single_rounding=False):
    """The epilogue without the clamp: MultiplyByQuantizedMultiplier + output zero point."""
    return fp.multiply_by_quantized_multiplier(np.asarray(acc, np.int64), multiplier, shift,
                                               single_rounding) + out_offset


def _first_at_least(level, multiplier, shift, out_offset, single_rounding, acc_lo, acc_hi):
    """The smallest acc in [acc_lo, acc_hi] with requantize(acc) >= level, or None
    (requantize is non-decreasing in acc for a positive multiplier: a bisection)."""
    f = lambda a: int(requantize(a, multiplier, shift, out_offset, single_rounding))
    if f(acc_hi) < level:
        return None
    lo, hi = acc_lo, acc_hi
    while lo < hi:
        mid = (lo + hi) // 2
        if f(mid) >= level:
            hi = mid
        else:
            lo = mid + 1
    return lo


def knife_edges(multiplier, shift, out_offset, act_min, act_max, acc_lo, acc_hi, single_rounding=False):
    """Sorted accumulators in [acc_lo, acc_hi] where this epilogue is on an edge:
    - the clamp: the last acc clamped to act_min and the first one not, the last acc below
      act_max and the first clamped to it;
    - rounding steps next to the clamp bounds and around the zero point;
    - ties of RoundingDivideByPOT (remainder exactly 2^(e-1)) near the same outputs, on
      both sides of zero (the sign decides a tie);
    - the wrap of acc * 2^left (a multiplier above one) when it is reachable."""
    multiplier, shift = int(multiplier), int(shift)
    acc_lo, acc_hi = max(int(acc_lo), INT32_MIN), min(int(acc_hi), INT32_MAX)
    if acc_lo > acc_hi or multiplier <= 0:
        return np.zeros(0, np.int64)
    edges = set()
    levels = {act_min, act_min + 1, act_max, act_max + 1, out_offset, out_offset + 1}
    for level in levels:
        a = _first_at_least(level, multiplier, shift, out_offset, single_rounding, acc_lo, acc_hi)
        if a is not None:
            edges.update((a - 1, a))
    left, right = max(shift, 0), max(-shift, 0)
    if not single_rounding and right >= 1:
        # x = SaturatingRoundingDoublingHighMul(acc * 2^left, M) grows by < 1 per acc step
        # (M * 2^left < 2^31), so every x in range is hit: the ties x = q * 2^e + 2^(e-1).
        slope = multiplier * 2.0 ** left / 2.0 ** 31
        for q in {act_min - out_offset - 1, act_max - out_offset, -1, 0, -2, 1}:
            x_tie = q * 2 ** right + 2 ** (right - 1)
            guess = int(round(x_tie / slope))
            window = np.arange(guess - 3, guess + 4, dtype=np.int64)
            window = window[(window >= acc_lo) & (window <= acc_hi)]
            x = fp.saturating_rounding_doubling_high_mul(fp.wrap_int32(window << left), multiplier)
            edges.update(int(a) for a in window[x == x_tie])
    if left > 0:
        wrap = 2 ** (31 - left)                    # acc * 2^left leaves int32 here
        edges.update(a for a in (wrap - 1, wrap, -wrap - 1, -wrap) if acc_lo <= a <= acc_hi)
    return np.array(sorted(a for a in edges if acc_lo <= a <= acc_hi), np.int64)


# ---------------------------------------------------------------------------------------
# 2. A weighted layer as a linear form of its input
# ---------------------------------------------------------------------------------------
class LinearLayer:
    """acc[e] = bias[e] + sum_t w[e, t] * (x[index[e, t]] + input_offset); index -1 is a
    padded tap (it holds the zero point, so it adds nothing). e runs over the output in
    NHWC order; channel[e] picks the requantization."""

    def __init__(self, qmodel, op, input_bounds=None):
        """input_bounds: (lo, hi), the values each input can take (reach.tensor_bounds;
        default: all of int8), for the accumulators' reachable ranges."""
        p, t = op.params, qmodel.tensors
        w = t[op.inputs[1]].data.astype(np.int64)
        bias = t[op.inputs[2]].data.astype(np.int64) if len(op.inputs) > 2 else None
        self.op, self.p = op, p
        if op.kind == "fully_connected":
            n_in, n_out = p["in_features"], p["out_features"]
            self.index = np.broadcast_to(np.arange(n_in), (n_out, n_in))
            self.w, self.channel = w.reshape(n_out, n_in), np.arange(n_out)
        else:
            self.index, self.w, self.channel = self._windows(p, w, op.kind == "depthwise_conv_2d")
        self.bias = (np.zeros(len(self.channel), np.int64) if bias is None else bias[self.channel])
        self.offset = p["input_offset"]
        n_in = int(np.prod(t[op.inputs[0]].shape))
        lo, hi = (-128, 127) if input_bounds is None else input_bounds
        self.x_lo = np.broadcast_to(np.asarray(lo, np.int64).reshape(-1), (n_in,))
        self.x_hi = np.broadcast_to(np.asarray(hi, np.int64).reshape(-1), (n_in,))

    @staticmethod
    def _windows(p, w, depthwise):
        """index, w, channel of every output (out_y, out_x, out_channel): a naive loop's taps."""
        in_h, in_w, in_c = p["in_h"], p["in_w"], p["in_c"]
        index, weight, channel = [], [], []
        for out_y in range(p["out_h"]):
            for out_x in range(p["out_w"]):
                for out_c in range(p["out_c"]):
                    taps, ws = [], []
                    for fy in range(p["kernel_h"]):
                        for fx in range(p["kernel_w"]):
                            y = out_y * p["stride_h"] - p["pad_h"] + fy * p.get("dilation_h", 1)
                            x = out_x * p["stride_w"] - p["pad_w"] + fx * p.get("dilation_w", 1)
                            inside = 0 <= y < in_h and 0 <= x < in_w
                            channels = [out_c // p["depth_multiplier"]] if depthwise else range(in_c)
                            for c in channels:
                                taps.append((y * in_w + x) * in_c + c if inside else -1)
                                ws.append(w[0, fy, fx, out_c] if depthwise else w[out_c, fy, fx, c])
                    index.append(taps)
                    weight.append(ws)
                    channel.append(out_c)
        return np.array(index), np.array(weight, np.int64), np.array(channel)

    def acc(self, x, e=None):
        """x (N, *input shape) int8 -> acc (N, outputs) int64, or (N,) of output e only."""
        rows = slice(None) if e is None else e
        flat = np.asarray(x, np.int64).reshape(len(x), -1)
        padded = np.concatenate([flat + self.offset, np.zeros((len(x), 1), np.int64)], axis=1)
        return (padded[:, self.index[rows]] * self.w[rows]).sum(axis=-1) + self.bias[rows]  # -1: the 0

    def acc_range(self, rows=slice(None)):
        """(lo, hi) of acc[e] for the outputs e in `rows`, over the inputs in their bounds:
        each value at its low end where w > 0 and its high end where w < 0, or the other
        way round (a padded tap adds nothing)."""
        pad = np.zeros(1, np.int64)
        x_lo = np.concatenate([self.x_lo + self.offset, pad])[self.index[rows]]
        x_hi = np.concatenate([self.x_hi + self.offset, pad])[self.index[rows]]
        w = self.w[rows]
        return (np.where(w > 0, w * x_lo, w * x_hi).sum(axis=-1) + self.bias[rows],
                np.where(w > 0, w * x_hi, w * x_lo).sum(axis=-1) + self.bias[rows])

    def reachable(self, e):
        """[lo, hi] of acc[e] over all inputs in their bounds."""
        lo, hi = self.acc_range(e)
        return int(lo), int(hi)

    def output(self, e, acc):
        """The epilogue of output e on accumulators acc: requantize, clamp."""
        p, c = self.p, self.channel[e]
        y = requantize(acc, p["output_multiplier"][c], p["output_shift"][c], p["output_offset"],
                       p["single_rounding"])
        return np.clip(y, p["act_min"], p["act_max"])

    def edges(self, e):
        p, c = self.p, self.channel[e]
        return knife_edges(p["output_multiplier"][c], p["output_shift"][c], p["output_offset"],
                           p["act_min"], p["act_max"], *self.reachable(e), p["single_rounding"])

    def solve(self, e, target, base):
        """An int8 input (flat) near `base` with acc[e] == target, or None: a greedy walk
        over e's taps, largest |w| first, each moved as far toward the target as it can;
        what is left over is then closed exactly by one pair of taps (i, j) if it can be:
        every value of x[i], and the x[j] that makes the rest divisible."""
        return self.solve_many(e, target, np.asarray(base)[None])[0]

    def solve_many(self, e, target, bases):
        """`solve` from each of several starts (K, ...) at once -> [input or None] (K)."""
        x = np.asarray(bases, np.int64).reshape(len(bases), -1).copy()
        live = np.flatnonzero((self.index[e] >= 0) & (self.w[e] != 0))
        order = live[np.argsort(-np.abs(self.w[e][live]), kind="stable")]
        if len(order) > 256:              # the largest weights move far, the smallest finish
            order = np.concatenate([order[:128], order[-128:]])
        d = int(target) - self.acc(x, e)                                  # (K,) left to go
        for _ in range(3):
            for t in order:
                wt, i = int(self.w[e, t]), int(self.index[e, t])
                step = np.clip(np.round(d / wt).astype(np.int64), -128 - x[:, i], 127 - x[:, i])
                x[:, i] += step
                d -= step * wt
        values = np.arange(-128, 128, dtype=np.int64)
        rows = np.arange(len(x))
        for a in order[:16]:
            ia, wa = int(self.index[e, a]), int(self.w[e, a])
            rest = d[:, None] - wa * (values - x[:, ia, None])           # (K, 256): left for tap b
            for b in order[:16]:
                ib, wb = int(self.index[e, b]), int(self.w[e, b])
                if ib == ia or not d.any():
                    continue
                new_b = x[:, ib, None] + rest // wb
                ok = (rest % wb == 0) & (new_b >= -128) & (new_b <= 127) & (d != 0)[:, None]
                hit = ok.any(axis=1)
                k = np.argmax(ok, axis=1)[hit]
                x[hit, ia], x[hit, ib] = values[k], new_b[rows[hit], k]
                d[hit] = 0
                rest[hit] = 1                                        # closed: no more
        return [row if left == 0 else None for row, left in zip(x, d)]


# ---------------------------------------------------------------------------------------
# 3. Inputs: solved for the first layer, searched for the deeper ones
# ---------------------------------------------------------------------------------------
def reads_model_input(qmodel, op):
    """Does `op` read the model input directly (through reshapes only)?"""
    name = op.inputs[0]
    producers = {o.outputs[0]: o for o in qmodel.ops}
    while name in producers and producers[name].kind == "reshape":
        name = producers[name].inputs[0]
    return name == qmodel.inputs[0]


def _elements(layer, rng, limit):
    """Up to `limit` output positions, each channel once before any repeats, borders too."""
    n = len(layer.channel)
    order = rng.permutation(n)
    _, first = np.unique(layer.channel[order], return_index=True)
    head = set(order[first].tolist())
    rest = [int(e) for e in order[:limit + len(head)] if int(e) not in head]
    return [int(e) for e in order[first]] + rest[:max(0, limit - len(head))]


def _run(qmodel, values, ops):
    """Run `ops` (a part of qmodel.ops, in order) on `values` ({name: (N, ...)}), in place."""
    for o in ops:
        args = [values[n] if n in values else qmodel.tensors[n].data for n in o.inputs]
        values.update(zip(o.outputs, kernels.run_outputs(o, qmodel.tensors, args)))
    return values


def _outputs(qmodel, values, n):
    return np.concatenate([np.asarray(values[name]).reshape(n, -1) for name in qmodel.outputs], axis=1)


def sensitivity(qmodel, op, x, elements=None, steps=(1, -1)):
    """(N, len(elements)) bool: for each input in x and each output value e of `op` (flat
    index; default: all), does moving that value by one of `steps` (one up or down)
    change the model's output? A fault that moves one value by one step shows only where
    this holds: the layers after `op` (pooling, the next layer's rounding, a softmax)
    hide the rest. (The layers after `op` run once, on every moved copy stacked.)"""
    k = next(i for i, o in enumerate(qmodel.ops) if o is op)
    n = len(x)
    values = _run(qmodel, {qmodel.inputs[0]: np.asarray(x, np.int8)}, qmodel.ops[:k + 1])
    y = values[op.outputs[0]]
    flat = y.reshape(n, -1).astype(np.int64)
    elements = range(flat.shape[1]) if elements is None else list(elements)
    info = np.iinfo(y.dtype)
    copies = [flat]                                             # unmoved first
    for e in elements:
        for step in steps:
            moved = flat.copy()
            moved[:, e] = np.clip(moved[:, e] + step, info.min, info.max)
            copies.append(moved)
    m = len(copies)
    stacked = {name: np.concatenate([v] * m) for name, v in values.items() if name != op.outputs[0]}
    stacked[op.outputs[0]] = np.concatenate(copies).astype(y.dtype).reshape((m * n,) + y.shape[1:])
    out = _outputs(qmodel, _run(qmodel, stacked, qmodel.ops[k + 1:]), m * n).reshape(m, n, -1)
    changed = np.any(out[1:] != out[0], axis=2).reshape(len(elements), len(steps), n)
    return changed.any(axis=1).T


def solved_batches(qmodel, op, rng, limit=64, deadline=None, batch=16, tries=None):
    """Batches of model inputs that put accumulators of `op` (which reads the model input)
    exactly on their knife edges: up to `limit` inputs, round-robin over output positions
    (each channel early) and over each position's edges (those where the output steps
    first, in random order), until
    time.monotonic() passes `deadline`. A target is solved from the last good solution
    (of this position, of any), the zero point and up to `tries` random starts (default:
    as many as checking them costs about 30 ms); the first good solution is kept: one
    where the step the output takes next to the target (one accumulator up or down)
    reaches the model output (`sensitivity`)."""
    layer = LinearLayer(qmodel, op)
    zp, shape = int(qmodel.input.zero_point), qmodel.input.shape
    if tries is None:                   # as many as about 30 ms of checking buys, 1 to 31
        t = time.monotonic()
        sensitivity(qmodel, op, np.zeros((8,) + tuple(shape), np.int8), [0])
        tries = int(np.clip(0.03 / max((time.monotonic() - t) / 8, 1e-6), 1, 31))
    elements = _elements(layer, rng, limit)
    def order(e):           # popped from the end: last, the edges where the output steps
        edges = rng.permutation(layer.edges(e))
        y = layer.output(e, edges[:, None] + np.arange(-1, 2))
        return list(edges[np.argsort((y[:, 0] != y[:, 1]) | (y[:, 2] != y[:, 1]), kind="stable")])
    queues = [order(e) for e in elements]
    found, count = [], 0
    good = {}                   # element (None: any) -> its last sensitive solution, a start
    while count < limit and any(queues):
        for e, queue in zip(elements, queues):
            if (deadline is not None and time.monotonic() > deadline) or count >= limit:
                break
            if not queue:
                continue
            target, first = queue.pop(), None
            y = layer.output(e, np.array([target - 1, target, target + 1]))
            steps = [int(np.sign(v - y[1])) for v in (y[0], y[2]) if v != y[1]]
            starts = [good[k] for k in (e, None) if k in good] + [np.full(shape, zp)]
            # random starts in rounds of 1, 7, 24 (at most `tries` in all), until a good
            # one; none on a flat stretch (inside the clamp: no step to show)
            rounds = [min(k, max(0, tries - done)) for k, done in ((1, 0), (7, 1), (24, 8))]
            for more in ([r for r in rounds if r] or [0]) if steps else [0]:
                starts += list(rng.integers(-128, 128, size=(more,) + tuple(shape)))
                xs = [x for x in layer.solve_many(e, target, np.stack(starts)) if x is not None]
                starts = []
                if not xs:
                    continue
                xs = np.stack(xs).reshape((-1,) + tuple(shape)).astype(np.int8)
                ok = sensitivity(qmodel, op, xs, [e], steps or (1, -1))[:, 0]
                first = xs[int(np.argmax(ok))] if first is None or ok.any() else first
                if ok.any():
                    good[e] = good[None] = first
                    break
            if first is not None:
                found.append(first)
                count += 1
            if len(found) == batch:
                yield np.stack(found)
                found = []
        if deadline is not None and time.monotonic() > deadline:
            break
    if found:
        yield np.stack(found)


def solved_inputs(qmodel, op, rng, limit=64, deadline=None):
    """All of solved_batches as a list of inputs."""
    return [x for xs in solved_batches(qmodel, op, rng, limit, deadline) for x in xs]


def layer_input(qmodel, op, x):
    """The input of `op` for model inputs x (N, ...): the NumPy int8 reference run only as
    far as it needs (not the layers after it)."""
    values = {qmodel.inputs[0]: np.asarray(x, np.int8)}
    for o in qmodel.ops:
        if op.inputs[0] in values:
            break
        _run(qmodel, values, [o])
    return values[op.inputs[0]]


def climb(qmodel, score, x0, rng, steps=40, batch=16):
    """Search model inputs from x0 that bring score(xs) ((N,) ints, 0 = reached) down. Each
    step tries `batch` mutations, coarse (a few values moved by up to 32, or set to an
    extreme) and fine (one value moved by 1 to 3), and keeps the best.
    Returns (input, score reached)."""
    best = np.asarray(x0, np.int8).reshape(qmodel.input.shape)
    best_d = int(score(best[None])[0])
    size = best.size
    for _ in range(steps):
        if best_d == 0:
            break
        cands = np.repeat(best.reshape(1, -1), batch, axis=0).astype(np.int16)
        for j, row in enumerate(cands):
            if j % 2:                                   # fine: one value, a small step
                row[rng.integers(size)] += rng.choice([-3, -2, -1, 1, 2, 3])
                continue
            k = int(rng.integers(1, min(size, 8) + 1))
            idx = rng.integers(0, size, k)
            if rng.random() < 0.3:
                row[idx] = rng.choice([-128, 127], k)
            else:
                row[idx] += rng.integers(-32, 33, k)
        cands = np.clip(cands, -128, 127).astype(np.int8).reshape((batch,) + qmodel.input.shape)
        d = score(cands)
        i = int(np.argmin(d))
        if d[i] <= best_d:
            best, best_d = cands[i], int(d[i])
    return best, best_d


def hill_climb(qmodel, op, e, target, x0, rng, steps=40, batch=16, layer=None):
    """Search model inputs from x0 that bring acc[e] of `op` (any layer) onto `target` (one
    accumulator, or an array of them: the nearest counts): `climb` on the distance.
    Returns (input, distance reached). layer: `op`'s LinearLayer, if the caller has it."""
    layer = LinearLayer(qmodel, op) if layer is None else layer
    goals = np.sort(np.atleast_1d(np.asarray(target, np.int64)))

    def distance(xs):
        acc = layer.acc(layer_input(qmodel, op, xs), e)
        i = np.searchsorted(goals, acc)                 # goals[i - 1] < acc <= goals[i]
        below, above = goals[np.maximum(i - 1, 0)], goals[np.minimum(i, len(goals) - 1)]
        return np.minimum(np.abs(acc - below), np.abs(acc - above))

    return climb(qmodel, distance, x0, rng, steps, batch)


def targeted_batches(qmodel, n=64, seed=0, search_steps=0, deadline=None, batch=8):
    """Batches (k, *input shape) int8 of inputs aimed at the knife edges of every weighted
    layer, yielded as they are found (a caller can stop at the first that shows a fault):
    solved where the layer reads the model input (each on an input where a step of that
    output reaches the model output, when one is found), searched (hill_climb,
    `search_steps` steps per goal; 0: none) where it does not, until time.monotonic()
    passes `deadline`."""
    rng = np.random.default_rng(seed)
    if any(op.params is None for op in qmodel.ops):
        qmodel.prepare()
    weighted = [op for op in qmodel.ops if op.kind in WEIGHTED
                and op.params.get("rows", 1) == 1]      # a dense over rows: not a Linear form here
    per_layer = max(1, n // max(len(weighted), 1))
    late = lambda: deadline is not None and time.monotonic() > deadline
    # first the solved inputs (per_layer of each first layer), then the deeper layers
    # searched, then (with a deadline) the first layers' remaining edges, every channel's
    solving = []
    for op in weighted:
        if reads_model_input(qmodel, op):
            channels = len(np.unique(LinearLayer(qmodel, op).channel))
            more = per_layer if deadline is None else max(per_layer, 16 * channels)
            solving.append(solved_batches(qmodel, op, rng, more, deadline))
    for batches in solving:
        count = 0
        for xs in batches:
            yield xs
            count += len(xs)
            if count >= per_layer:
                break
    for op in [op for op in weighted if search_steps and not reads_model_input(qmodel, op)]:
        if late():
            return
        layer, found = LinearLayer(qmodel, op), []
        for e in _elements(layer, rng, max(1, per_layer // 4)):
            edges = layer.edges(e)
            # each of 4 edges in turn (a tie far from the start is not the nearest), then
            # any of them (the nearest)
            goals = [[t] for t in rng.permutation(edges)[:4]] + ([edges] if len(edges) else [])
            for goal in goals:
                if late():
                    break
                x0 = rng.integers(-128, 128, size=qmodel.input.shape).astype(np.int8)
                found.append(hill_climb(qmodel, op, e, goal, x0, rng, steps=search_steps, layer=layer)[0])
                if len(found) == batch:
                    yield np.stack(found)
                    found = []
        if found:
            yield np.stack(found)
    for batches in solving:
        yield from batches


def targeted_inputs(qmodel, n=64, seed=0, search_steps=0, deadline=None):
    """All of targeted_batches in one batch (k, *input shape) int8 (k may be 0)."""
    batches = list(targeted_batches(qmodel, n, seed, search_steps, deadline))
    if not batches:
        return np.zeros((0,) + tuple(qmodel.input.shape), np.int8)
    return np.concatenate(batches)
