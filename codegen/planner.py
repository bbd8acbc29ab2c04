"""Ahead-of-time memory planning: every activation gets an offset in one static arena.

The generated C has no malloc. All activations live in one `static int8_t arena[N]`, and this
file decides, in Python, where each tensor lives, so that N is as small as the graph allows.

1. Lifetimes. Steps are the op indices 0..n-1, plus -1 for copying the model input into the
   arena (the caller's buffer is const, and a copy keeps every kernel reading the arena) and
   n for copying the model output out. A tensor is live from the step that writes it to the
   last step that reads it; the model output stays live until step n.
2. Shared bytes. A reshape only renames bytes: its output is the same buffer as its input
   (no copy). An elementwise op (IN_PLACE_KINDS: activations, add, sub, mul, ...) writes its
   output over an input of its size whose bytes die at that op: output[i] depends on input[i]
   only (a broadcast operand is smaller), and the kernel reads input[i] before it writes
   output[i], visiting the output in order. Other kernels may write over a dying
   input too, with their output starting `shift` bytes before it (`in_place={step: InPlace}`,
   worked out per kernel in inplace.py): a convolution reads its input ahead of what it
   writes, so its output can trail the input by the few rows the windows still need. Tensors
   that share bytes form a group with fixed offsets relative to each other, placed as one.
3. Offsets: TFLite Micro's GreedyMemoryPlanner (tensorflow/lite/micro/memory_planner/
   greedy_memory_planner.cc): take groups largest first; put each at the lowest aligned
   offset where none of its tensors overlaps an already-placed tensor live at the same step
   (first fit in the gaps). The same first fit also runs in a few other orders (by first
   step, seeded shuffles), and the smallest arena is kept.

Lower bound: at every step all live tensors must be in memory at once, so
N >= max over steps of the bytes live then, bytes shared in place counted once. Without
in-place kernels that is max over layers of (input bytes + output bytes) for a chain;
with skip connections the tensors held for later count too. `live_bytes` gives it per op.

Streams (stream.py). A run of ops computed band by band keeps its intermediate tensors in
window buffers of a few rows: `streams=[Streamed]` gives each its window's bytes, adds the
windows the stream copies its inputs into, and keeps every tensor the stream touches alive
from its first op to its last (the ops' calls interleave). Inside a stream nothing is written
in place, except the stream's output over the one input it was checked to share.

Scratch. A kernel may need working memory while it runs (the DSP-SIMD conv_2d keeps int16
im2col columns): `scratch={step: bytes}` adds a buffer live at that one step only, placed
by the same greedy rule, so it reuses bytes no live tensor holds at that step. It is named
"<op name> scratch" in the plan and counted in the lower bound and the layer's bytes.
"""
import random
from dataclasses import dataclass, field

ALIAS_KINDS = ("reshape",)
IN_PLACE_KINDS = ("relu", "relu6", "logistic", "tanh", "add", "softmax", "sub", "mul", "maximum",
                  "minimum", "squared_difference", "leaky_relu", "prelu", "hard_swish", "elu", "abs",
                  "rsqrt", "neg", "square")
SHUFFLES = 32           # seeded shuffles of the greedy placement's order tried beside TFLM's


class PlanError(ValueError):
    """A graph the planner cannot lay out: names the op or tensor."""


@dataclass
class InPlace:
    """An op that may write its output over a dying input: the output starts `shift` bytes
    after the input's start (shift <= 0: before it), and `why` says why that is safe."""
    input: str
    shift: int
    why: str


@dataclass
class Streamed:
    """A stream as the planner sees it: ops first..last run interleaved, touching `tensors`;
    `windows` {buffer name: bytes} of its window buffers (intermediate tensors by their own
    name, resized; input windows new); the output may share `share`'s bytes; `why`."""
    first: int
    last: int
    tensors: list
    windows: dict
    share: str = None
    why: str = ""


@dataclass
class Buffer:
    tensors: list           # tensor names sharing these bytes, in the order they were written
    size: int               # bytes
    first: int              # step that writes it (-1: input copy)
    last: int               # last step that reads it (n: output copy)
    offset: int = None

    def live_at(self, step):
        return self.first <= step <= self.last

    def overlaps_in_time(self, other):
        return self.first <= other.last and other.first <= self.last

    def overlaps_in_space(self, other, offset, other_offset):
        return offset < other_offset + other.size and other_offset < offset + self.size


@dataclass
class ArenaPlan:
    buffers: list                                   # [Buffer], offsets set
    size: int                                       # arena bytes (a multiple of `align`)
    lower_bound: int                                # max over steps of live bytes
    offsets: dict = field(default_factory=dict)     # tensor name -> byte offset
    shared: dict = field(default_factory=dict)      # op name -> ('alias' | 'in place', input)
    in_place: dict = field(default_factory=dict)    # op name -> InPlace it runs with
    live_bytes: list = field(default_factory=list)  # per op: bytes of all live buffers
    layer_bytes: list = field(default_factory=list)  # per op: bytes of its inputs + output (+ scratch)
    scratch: dict = field(default_factory=dict)     # op index -> byte offset of its scratch buffer
    live: list = field(default_factory=list)        # per step -1..n: names of the live tensors
    ops: list = field(default_factory=list)         # op names, in execution order
    step_bytes: list = field(default_factory=list)  # per step -1..n: bytes alive (shared once)
    streamed: dict = field(default_factory=dict)    # op name -> why it runs streamed

    def steps(self):
        """Why the peak is what it is, step by step (-1: input copy, n: output copy): the
        bytes alive, the tensors alive, which op writes in place and why; JSON-ready."""
        n, rows = len(self.ops), []
        live = self.step_bytes
        for s in range(-1, n + 1):
            op = self.ops[s] if 0 <= s < n else ("copy in" if s < 0 else "copy out")
            chosen = self.in_place.get(op)
            rows.append({"step": s, "op": op, "live_bytes": live[s + 1], "tensors": self.live[s + 1],
                         "in_place": None if chosen is None else
                         {"input": chosen.input, "shift": chosen.shift, "why": chosen.why},
                         "streamed": self.streamed.get(op),
                         "peak": live[s + 1] == max(live)})
        return rows

    def rows(self):
        """The plan as JSON-ready rows, ordered by offset."""
        return [{"offset": b.offset, "size": b.size, "first": b.first, "last": b.last,
                 "tensors": list(b.tensors)}
                for b in sorted(self.buffers, key=lambda b: (b.offset, b.first))]


def _align(n, align):
    return (n + align - 1) // align * align


def outputs_of(step):
    """A step's output names: its `out` is one name, or a list for an op with several."""
    out = step[3]
    return [out] if isinstance(out, str) else list(out)


def lifetimes(steps, inputs, outputs):
    """steps: [(op_name, kind, [activation inputs], output or [outputs])] -> {tensor: [first, last]}."""
    n = len(steps)
    life = {name: [-1, -1] for name in inputs}
    for i, (op_name, _, ins, _) in enumerate(steps):
        for t in ins:
            if t not in life:
                raise PlanError(f"op {op_name!r}: input {t!r} is read before it is written")
            life[t][1] = max(life[t][1], i)
        for out in outputs_of(steps[i]):
            if out in life:
                raise PlanError(f"op {op_name!r}: tensor {out!r} is written twice")
            life[out] = [i, i]
    for t in outputs:
        life[t][1] = n
    return life


def _union(spans):
    """Bytes covered by the [lo, hi) spans."""
    total, end = 0, None
    for lo, hi in sorted(spans):
        if end is None or lo >= end:
            total, end = total + hi - lo, hi
        elif hi > end:
            total, end = total + hi - end, hi
    return total


def scratch_name(op_name):
    """The plan's name for an op's scratch buffer."""
    return f"{op_name} scratch"


class _Group:
    """Buffers at fixed offsets relative to each other (the bytes they share), placed as one."""

    def __init__(self, buffer):
        self.members = [[buffer, 0]]                # [Buffer, offset relative to the group]

    def rel(self, buffer):
        return next(r for b, r in self.members if b is buffer)

    def add(self, buffer, rel):
        """Add `buffer` at `rel`; shift everything so that the lowest offset is 0 again."""
        self.members.append([buffer, rel])
        low = min(r for _, r in self.members)
        for m in self.members:
            m[1] -= low

    def conflicts(self, buffer, rel, allowed):
        """Does `buffer` at `rel` overlap a member live at the same step (other than `allowed`)?"""
        return any(b is not allowed and b.overlaps_in_time(buffer) and buffer.overlaps_in_space(b, rel, r)
                   for b, r in self.members)

    def live_bytes(self, step):
        """Bytes of the union of the members live at `step`."""
        return _union([(r, r + b.size) for b, r in self.members if b.live_at(step)])


def _share(steps, sizes, life, inputs, outputs, scratch, in_place, streams=()):
    """Step 2: the buffers (tensors on the same bytes) and their groups, the scratch buffers,
    {op name: ('alias' | 'in place', input)} and {op name: InPlace used}."""
    inside = {i: (s.share if i == s.last else None) for s in streams for i in range(s.first, s.last + 1)}
    buffer_of, group_of = {}, {}                    # tensor -> Buffer, id(Buffer) -> _Group
    groups = []

    def new_buffer(t, first_last=None):
        b = Buffer([t], sizes[t], *(first_last or life[t]))
        buffer_of[t] = b
        return b

    def new_group(b):
        groups.append(_Group(b))
        group_of[id(b)] = groups[-1]

    for t in inputs:
        new_group(new_buffer(t))
    shared, chosen = {}, {}
    for i, (op_name, kind, ins, out) in enumerate(steps):
        if not isinstance(out, str):                # several outputs: bytes of their own each
            for t in out:
                new_group(new_buffer(t))
            continue
        if kind in ALIAS_KINDS:
            if sizes[ins[0]] != sizes[out]:
                raise PlanError(f"op {op_name!r} ({kind}): input has {sizes[ins[0]]} bytes, "
                                f"output {sizes[out]}")
            b = buffer_of[out] = buffer_of[ins[0]]
            b.tensors.append(out)
            b.first, b.last = min(b.first, life[out][0]), max(b.last, life[out][1])
            shared[op_name] = ("alias", ins[0])
            continue
        options = [in_place[i]] if i in in_place else []
        if kind in IN_PLACE_KINDS:                  # output[k] from input[k]: exactly over it
            options += [InPlace(t, 0, "elementwise: output[k] is written after input[k] is read")
                        for t in ins if sizes[t] == sizes[out]]
        if i in inside:                             # streamed: only over the input checked
            options = [InPlace(inside[i], 0, "streamed: each row of it is read for the last time "
                               "before the output row over it is written")] if inside[i] else []
        b = new_buffer(out)
        for option in options:
            source = buffer_of[option.input]
            if source.last != i or option.input in outputs:
                continue                            # still read later: cannot overwrite it
            group = group_of[id(source)]
            rel = group.rel(source) + option.shift
            if group.conflicts(b, rel, allowed=source):
                continue
            if option.shift == 0 and sizes[out] == source.size:    # exactly its bytes: one buffer
                source.tensors.append(out)
                source.last = life[out][1]
                buffer_of[out] = source
            else:
                group.add(b, rel)
                group_of[id(b)] = group
            shared[op_name], chosen[op_name] = ("in place", option.input), option
            break
        else:
            new_group(b)
    for s in streams:                               # the windows stream inputs are copied into
        for name in s.windows:
            if name not in buffer_of:
                new_group(new_buffer(name, (s.first, s.last)))
    scratch_of = {}                                 # step -> its scratch Buffer
    for i, nbytes in sorted((scratch or {}).items()):
        if nbytes > 0:                               # live at step i only
            name = scratch_name(steps[i][0])
            while name in buffer_of:                 # never shadow a tensor's name
                name += "'"
            sizes[name] = int(nbytes)
            scratch_of[i] = new_buffer(name, (i, i))
            new_group(scratch_of[i])
    return groups, buffer_of, scratch_of, shared, chosen


def _orders(groups, shuffles=SHUFFLES):
    """The orders the greedy placement tries, the smallest arena kept: TFLM's (largest
    first), by first step, then `shuffles` seeded shuffles (tied offsets make one fixed
    order miss a fit that another finds; the same seed gives the same plan every time)."""
    first = lambda g: min(b.first for b, _ in g.members)
    largest = lambda g: max(b.size for b, _ in g.members)
    yield sorted(groups, key=lambda g: (-largest(g), first(g)))
    yield sorted(groups, key=lambda g: (first(g), -largest(g)))
    rng, order = random.Random(0), list(groups)
    for _ in range(shuffles if len(groups) <= 200 else 2):
        rng.shuffle(order)
        yield list(order)


def _place(groups, align):
    """Greedy first fit of the groups in this order -> (arena end, offsets in the order of
    the members of `groups` as given to plan)."""
    placed, at = [], {}                             # [(Buffer, offset)], id(Buffer) -> offset
    for group in groups:
        near = [(o, off, r) for o, off in placed for b, r in group.members if o.overlaps_in_time(b)]
        for base in sorted({0} | {max(0, _align(off + o.size - r, align)) for o, off, r in near}):
            if not any(b.overlaps_in_time(o) and b.overlaps_in_space(o, base + r, off)
                       for b, r in group.members for o, off in placed):
                break
        placed += [(b, base + r) for b, r in group.members]
        at.update({id(b): base + r for b, r in group.members})
    return max([off + b.size for b, off in placed] + [0]), at


def _live(groups, n):
    """Bytes live at each step -1..n."""
    return [sum(g.live_bytes(s) for g in groups) for s in range(-1, n + 1)]


def _streamed(life, sizes, streams):
    """Lifetimes and sizes with the streams' windows: every tensor a stream touches alive
    from its first op to its last."""
    life, sizes = {t: list(span) for t, span in life.items()}, dict(sizes)
    for s in streams:
        sizes.update(s.windows)
        for t in list(s.tensors) + list(s.windows):
            first, last = life.get(t, (s.first, s.last))
            life[t] = [min(first, s.first), max(last, s.last)]
    return life, sizes


def peak(steps, sizes, inputs, outputs, scratch=None, in_place=None, streams=()):
    """The lower bound `plan` would report (the most bytes live at one step), without placing
    anything: cheap enough to compare many schedules."""
    life, sizes = _streamed(lifetimes(steps, inputs, outputs), sizes, streams)
    return max(_live(_share(steps, sizes, life, inputs, outputs, scratch, in_place or {}, streams)[0],
                     len(steps)) + [0])


def plan(steps, sizes, inputs, outputs, align=4, scratch=None, in_place=None, streams=()):
    """Lay out the activations of a graph.

    steps:    [(op_name, kind, [activation input names], output name)] in execution order
              (a list of output names for an op with several)
    sizes:    {tensor name: bytes}
    inputs, outputs: model input / output tensor names
    scratch:  {step index: bytes} of working memory an op needs while it runs (optional)
    in_place: {step index: InPlace}: where the step's kernel may write over its input
              (shift a multiple of `align`; used when that input dies at the step)
    streams:  [Streamed]: runs of ops computed band by band (stream.py)

    An in-place op whose output starts before its input, or ends after it, ties the two
    tensors' offsets, and a chain of them drifts further with each op: it is used only at
    the steps that need it, where the bytes live without it exceed the peak with it.
    """
    life, sizes = _streamed(lifetimes(steps, inputs, outputs), sizes, streams)
    in_place, n = in_place or {}, len(steps)
    free = {i: o for i, o in in_place.items()      # on the input's own bytes: ties nothing
            if o.shift == 0 and sizes[outputs_of(steps[i])[0]] <= sizes[o.input]}
    top = max(_live(_share(steps, sizes, life, inputs, outputs, scratch, in_place, streams)[0], n))
    plain = _live(_share(steps, sizes, life, inputs, outputs, scratch, free, streams)[0], n)
    needed = {i: o for i, o in in_place.items() if i in free or plain[i + 1] > top}
    groups, buffer_of, scratch_of, shared, chosen = _share(steps, sizes, life, inputs, outputs,
                                                           scratch, needed, streams)
    buffers = [b for g in groups for b, _ in g.members]

    # -- 3. greedy: largest first, lowest offset where no tensor overlaps a live one -------
    best = min((_place(order, align) for order in _orders(groups)), key=lambda o: o[0])
    for b in buffers:
        b.offset = best[1][id(b)]

    size = _align(max([b.offset + b.size for b in buffers] + [0]), align)
    live = _live(groups, n)
    layer_bytes = []
    for i, (_, _, ins, _) in enumerate(steps):
        used = {id(buffer_of[t]): buffer_of[t] for t in list(ins) + outputs_of(steps[i])}
        layer_bytes.append(_union([(b.offset, b.offset + b.size) for b in used.values()])
                           + (scratch_of[i].size if i in scratch_of else 0))
    result = ArenaPlan(buffers, size, max(live + [0]), shared=shared, in_place=chosen,
                       live_bytes=live[1:n + 1], layer_bytes=layer_bytes, ops=[s[0] for s in steps],
                       step_bytes=live, streamed={steps[i][0]: s.why for s in streams
                                                  for i in range(s.first, s.last + 1)})
    result.offsets = {t: buffer_of[t].offset for t in buffer_of}
    result.scratch = {i: b.offset for i, b in scratch_of.items()}
    span = {**life, **{b.tensors[0]: (i, i) for i, b in scratch_of.items()}}
    result.live = [[t for t in buffer_of if span[t][0] <= s <= span[t][1]] for s in range(-1, n + 1)]
    return result


def qmodel_steps(qmodel):
    """(steps, sizes) of a QModel for plan and peak: activations only (constants live in flash)."""
    steps = []
    for op in qmodel.ops:
        ins = [t.name for t in qmodel.activations(op)]
        steps.append((op.name, op.kind, ins, op.outputs[0] if len(op.outputs) == 1 else list(op.outputs)))
    sizes = {name: t.nbytes for name, t in qmodel.tensors.items() if not t.is_constant}
    return steps, sizes


def plan_qmodel(qmodel, align=4, scratch=None, in_place=None, streams=()):
    """The arena plan of a QModel, plus any scratch={op index: bytes} the kernels need, the
    in_place={op index: InPlace} their loops allow (inplace.py) and the streams (stream.py).
    State (QModel.states, an LSTM's) persists from one invoke to the next: planned as live
    from the input copy to the output copy, so no other tensor ever shares its bytes."""
    steps, sizes = qmodel_steps(qmodel)
    states = list(getattr(qmodel, "states", ()))
    return plan(steps, sizes, qmodel.inputs + states, qmodel.outputs + states, align, scratch, in_place, streams)
