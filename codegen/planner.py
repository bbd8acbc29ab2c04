"""Ahead-of-time memory planning: every activation gets an offset in one static arena.

The generated C has no malloc. All activations live in one `static int8_t arena[N]`, and this
file decides, in Python, where each tensor lives, so that N is as small as the graph allows.

1. Lifetimes. Steps are the op indices 0..n-1, plus -1 for copying the model input into the
   arena (the caller's buffer is const, and a copy keeps every kernel reading the arena) and
   n for copying the model output out. A tensor is live from the step that writes it to the
   last step that reads it; the model output stays live until step n.
2. Shared buffers. A reshape only renames bytes: its output is the same buffer as its input
   (no copy). An elementwise op (relu, relu6, logistic, tanh, add, softmax) writes its output
   over an input whose buffer dies at that op: output[i] depends on input[i] only, and the
   kernel reads input[i] before it writes output[i]. Tensors that share bytes form one
   buffer whose lifetime is the union of theirs.
3. Offsets: TFLite Micro's GreedyMemoryPlanner (tensorflow/lite/micro/memory_planner/
   greedy_memory_planner.cc): take buffers largest first; put each at the lowest aligned
   offset where it overlaps no already-placed buffer that is live at the same time
   (first fit in the gaps).

Lower bound: at every step all live buffers must be in memory at once, so
N >= max over steps of the sum of live buffer sizes. For a chain of layers that is
max over layers of (input bytes + output bytes), with an in-place output counted once;
with skip connections the tensors held for later count too.

Scratch. A kernel may need working memory while it runs (the DSP-SIMD conv_2d keeps int16
im2col columns): `scratch={step: bytes}` adds a buffer live at that one step only, placed
by the same greedy rule, so it reuses bytes no live tensor holds at that step. It is named
"<op name> scratch" in the plan and counted in the lower bound and the layer's bytes.
"""
from dataclasses import dataclass, field

ALIAS_KINDS = ("reshape",)
IN_PLACE_KINDS = ("relu", "relu6", "logistic", "tanh", "add", "softmax")


class PlanError(ValueError):
    """A graph the planner cannot lay out: names the op or tensor."""


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


@dataclass
class ArenaPlan:
    buffers: list                                   # [Buffer], offsets set
    size: int                                       # arena bytes (a multiple of `align`)
    lower_bound: int                                # max over steps of live bytes
    offsets: dict = field(default_factory=dict)     # tensor name -> byte offset
    shared: dict = field(default_factory=dict)      # op name -> 'alias' | 'in place' (of input)
    live_bytes: list = field(default_factory=list)  # per op: bytes of all live buffers
    layer_bytes: list = field(default_factory=list)  # per op: bytes of its inputs + output (+ scratch)
    scratch: dict = field(default_factory=dict)     # op index -> byte offset of its scratch buffer

    def rows(self):
        """The plan as JSON-ready rows, ordered by offset."""
        return [{"offset": b.offset, "size": b.size, "first": b.first, "last": b.last,
                 "tensors": list(b.tensors)}
                for b in sorted(self.buffers, key=lambda b: (b.offset, b.first))]


def _align(n, align):
    return (n + align - 1) // align * align


def lifetimes(steps, inputs, outputs):
    """steps: [(op_name, kind, [activation inputs], output)] -> {tensor: [first, last]}."""
    n = len(steps)
    life = {name: [-1, -1] for name in inputs}
    for i, (op_name, _, ins, out) in enumerate(steps):
        for t in ins:
            if t not in life:
                raise PlanError(f"op {op_name!r}: input {t!r} is read before it is written")
            life[t][1] = max(life[t][1], i)
        if out in life:
            raise PlanError(f"op {op_name!r}: tensor {out!r} is written twice")
        life[out] = [i, i]
    for t in outputs:
        life[t][1] = n
    return life


def scratch_name(op_name):
    """The plan's name for an op's scratch buffer."""
    return f"{op_name} scratch"


def plan(steps, sizes, inputs, outputs, align=4, scratch=None):
    """Lay out the activations of a graph.

    steps:   [(op_name, kind, [activation input names], output name)] in execution order
    sizes:   {tensor name: bytes}
    inputs, outputs: model input / output tensor names
    scratch: {step index: bytes} of working memory an op needs while it runs (optional)
    """
    life = lifetimes(steps, inputs, outputs)
    # -- 2. group tensors that share bytes ------------------------------------------------
    group_of = {}                                   # tensor -> Buffer
    buffers = []

    def new_buffer(t):
        b = Buffer([t], sizes[t], *life[t])
        buffers.append(b)
        group_of[t] = b

    def join(b, t):
        b.tensors.append(t)
        b.first, b.last = min(b.first, life[t][0]), max(b.last, life[t][1])
        group_of[t] = b

    for t in inputs:
        new_buffer(t)
    shared = {}
    for i, (op_name, kind, ins, out) in enumerate(steps):
        if kind in ALIAS_KINDS:
            if sizes[ins[0]] != sizes[out]:
                raise PlanError(f"op {op_name!r} ({kind}): input has {sizes[ins[0]]} bytes, "
                                f"output {sizes[out]}")
            join(group_of[ins[0]], out)
            shared[op_name] = ("alias", ins[0])
            continue
        if kind in IN_PLACE_KINDS:
            # an input of the same size whose buffer is read for the last time here
            dying = [t for t in ins if sizes[t] == sizes[out] and group_of[t].last == i]
            if dying:
                join(group_of[dying[0]], out)
                shared[op_name] = ("in place", dying[0])
                continue
        new_buffer(out)
    scratch_of = {}                                 # step -> its scratch Buffer
    for i, nbytes in sorted((scratch or {}).items()):
        if nbytes > 0:                               # live at step i only
            name = scratch_name(steps[i][0])
            while name in group_of:                  # never shadow a tensor's name
                name += "'"
            scratch_of[i] = group_of[name] = Buffer([name], int(nbytes), i, i)
            buffers.append(scratch_of[i])

    # -- 3. greedy: largest first, lowest offset that fits --------------------------------
    for b in sorted(buffers, key=lambda b: (-b.size, b.first)):
        taken = sorted((o for o in buffers if o.offset is not None and o.overlaps_in_time(b)),
                       key=lambda o: o.offset)
        offset = 0
        for o in taken:
            if offset + b.size <= o.offset:
                break                                # fits in the gap before `o`
            offset = max(offset, _align(o.offset + o.size, align))
        b.offset = offset

    n = len(steps)
    size = _align(max([b.offset + b.size for b in buffers] + [0]), align)
    live = [sum(b.size for b in buffers if b.live_at(s)) for s in range(-1, n + 1)]
    layer_bytes = [sum({id(group_of[t]): group_of[t].size for t in list(ins) + [out]}.values())
                   + (scratch_of[i].size if i in scratch_of else 0)
                   for i, (_, _, ins, out) in enumerate(steps)]
    result = ArenaPlan(buffers, size, max(live + [0]), shared=shared,
                       live_bytes=live[1:n + 1], layer_bytes=layer_bytes)
    result.offsets = {t: group_of[t].offset for t in group_of}
    result.scratch = {i: b.offset for i, b in scratch_of.items()}
    return result


def plan_qmodel(qmodel, align=4, scratch=None):
    """The arena plan of a QModel (activations only; constants live in flash), plus any
    scratch={op index: bytes} the kernels need."""
    steps = []
    for op in qmodel.ops:
        ins = [t.name for t in qmodel.activations(op)]
        steps.append((op.name, op.kind, ins, op.outputs[0]))
    sizes = {name: t.nbytes for name, t in qmodel.tensors.items() if not t.is_constant}
    return plan(steps, sizes, qmodel.inputs, qmodel.outputs, align, scratch)

