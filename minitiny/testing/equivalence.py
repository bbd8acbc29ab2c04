"""assert_equivalent: NumPy int8 == the generated C == TFLite Micro, or the layer that is not.

    from minitiny.testing import assert_equivalent
    assert_equivalent(qmodel, "build/digits")                 # TFLM runs qmodel's own .tflite
    assert_equivalent(qmodel, "build/digits", tflite="digits.tflite")

The inputs, in the order they are tried (every one through every engine, in batches):
the special patterns (all -128, all 127, all zero point, checkerboards), the targeted
inputs (minitiny.testing.targets: accumulators on rounding ties and clamp bounds, solved for
the first weighted layer and, with search_steps, searched for the deeper ones), then
uniform random inputs with -128 and 127 planted, until `n` inputs or `budget` seconds; and
with `strategy`, hypothesis' own draws of it (e.g. int8_inputs(qmodel), or the user's).

On the first difference the input is shrunk (minitiny.testing.shrinking) and the error names:
the smallest differing input, which engines differ, the first layer whose integers
diverge (the C's per-layer outputs come from a probe build, minitiny.testing.probe; TFLM's
from each layer run alone), that layer's own inputs and its expected and actual values.
"""
import time

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from minitiny.quant import fixedpoint as fp, tflm
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import run_tflm_int8

from . import probe, targets
from .inputs import special_inputs
from .models import int8_input
from .shrinking import shrink


class Mismatch(AssertionError):
    """Two engines gave different int8 outputs. Attributes: input (the shrunk input),
    engines ('C' / 'TFLite Micro'), layer (index), op (its QOp), expected / actual (that
    layer's outputs from NumPy and the other engine), inputs (the layer's own inputs)."""


def unpack_inputs(qmodel, x):
    """Inputs (N, *input shape), or packed (N, total size) for several model inputs -> what
    the model functions take: the array itself, or one (N, *shape) array per model input."""
    dtype = qmodel.tensors[qmodel.inputs[0]].dtype       # int8, or int16 in a 16x8 model
    if len(qmodel.inputs) == 1:
        return np.asarray(x, dtype)
    x = np.asarray(x, dtype).reshape(len(x), -1)
    ends = np.cumsum([int(np.prod(qmodel.tensors[n].shape)) for n in qmodel.inputs])[:-1]
    return [part.reshape((len(x),) + qmodel.tensors[n].shape)
            for part, n in zip(np.split(x, ends, axis=1), qmodel.inputs)]


def packed_outputs(qmodel, y):
    """A model function's outputs (one array, or a list for several) -> (N, total size),
    every output's values back to back."""
    ys = list(y) if len(qmodel.outputs) > 1 else [np.asarray(y)]
    return np.concatenate([np.asarray(a).reshape(len(a), -1) for a in ys], axis=1)


class Engines:
    """One model, three ways: NumPy int8 (the reference), the C in c_dir, and TFLM."""

    def __init__(self, qmodel, c_dir, tflite=None, flags=(), use_tflm=None):
        if any(op.params is None for op in qmodel.ops):
            qmodel.prepare()
        self.qmodel, self.c_dir, self.flags = qmodel, c_dir, tuple(flags)
        self.c = probe.ProbedC(c_dir, flags)
        self.tflite = None
        if use_tflm is None:
            use_tflm = tflm.available()
        if use_tflm:
            if tflite is None:
                self.tflite = to_tflite(qmodel)
            elif isinstance(tflite, (bytes, bytearray)):
                self.tflite = bytes(tflite)
            else:
                with open(tflite, "rb") as f:
                    self.tflite = f.read()
        ins = [qmodel.tensors[n] for n in qmodel.inputs]
        # an input as the machinery here moves it: (*input shape), or packed (total size,)
        self.shape = tuple(ins[0].shape) if len(ins) == 1 else (sum(int(np.prod(t.shape)) for t in ins),)
        self.zero_point = (int(ins[0].zero_point) if len(ins) == 1 else
                           np.concatenate([np.full(int(np.prod(t.shape)), int(t.zero_point)) for t in ins]))

    @property
    def names(self):
        return ["C"] + (["TFLite Micro"] if self.tflite is not None else [])

    def unpack(self, x):
        return unpack_inputs(self.qmodel, x)

    def pack(self, drawn):
        """One drawn input (an array, or a tuple of arrays for several inputs) -> (*self.shape)."""
        dtype = self.qmodel.tensors[self.qmodel.inputs[0]].dtype
        if isinstance(drawn, (list, tuple)) and len(self.qmodel.inputs) > 1:
            return np.concatenate([np.asarray(a, dtype).reshape(-1) for a in drawn])
        return np.asarray(drawn, dtype).reshape(self.shape)

    def outputs(self, y):
        """A model function's outputs -> one list, in the model's order."""
        return list(y) if len(self.qmodel.outputs) > 1 else [np.asarray(y)]

    def run(self, x, which=None):
        """{engine: [outputs]} for x (N, *self.shape): 'NumPy' and each engine in `which`,
        every model output, in order."""
        args = self.unpack(x)
        out = {"NumPy": self.outputs(self.qmodel.predict_int8(args))}
        for name in which or self.names:
            got = self.outputs(self.c.model(args) if name == "C" else run_tflm_int8(self.tflite, args))
            out[name] = [g.reshape(w.shape) for g, w in zip(got, out["NumPy"])]
        return out

    def differs(self, x, which=None):
        """(N,) bool: does any engine disagree with NumPy on input n, in any output?"""
        out = self.run(x, which)
        want = out.pop("NumPy")
        bad = np.zeros(len(x), bool)
        for got in out.values():
            for g, w in zip(got, want):
                bad |= np.any(g.reshape(len(x), -1) != w.reshape(len(x), -1), axis=1)
        return bad


def standard_inputs(qmodel, n=256, seed=0, search_steps=0, deadline=None):
    """The batches assert_equivalent tries, in order: special patterns, targeted inputs
    (64 to 256, yielded as they are found; the search stops at time.monotonic()
    `deadline`), then uniform random ones (-128 and 127 planted) up to n in all. A model
    with several inputs gets them packed (Engines.unpack), without targeted ones."""
    yield special_inputs(qmodel)
    done = 5
    several = len(qmodel.inputs) > 1
    int16 = qmodel.tensors[qmodel.inputs[0]].dtype == "int16"     # 16x8: no int8 targets
    if not several and not int16:
        for aimed in targets.targeted_batches(qmodel, n=min(max(64, n // 4), 256), seed=seed,
                                              search_steps=search_steps, deadline=deadline):
            done += len(aimed)
            yield aimed
    shape = (sum(int(np.prod(qmodel.tensors[name].shape)) for name in qmodel.inputs),) if several \
        else qmodel.input.shape
    rng = np.random.default_rng(seed)
    while done < n:
        k = min(64, n - done)
        if int16:               # uniform int16, the extremes planted as int8_input plants its own
            x = rng.integers(-32768, 32768, size=(k,) + tuple(shape)).astype(np.int16)
            x.reshape(k, -1)[:, 0], x.reshape(k, -1)[:, -1] = -32768, 32767
            yield x
        else:
            yield int8_input(rng, shape, k)
        done += k


def _fmt_input(x, zp):
    """An input as text: whole when small, else the values away from the zero point."""
    if x.size <= 64:
        return np.array2string(x, max_line_width=100, threshold=100)
    away = np.argwhere(x != zp)
    parts = [f"[{', '.join(map(str, i))}]={int(x[tuple(i)])}" for i in away[:24]]
    more = f" ... ({len(away)} in all)" if len(away) > 24 else ""
    return f"all {zp} (the zero point) except " + ", ".join(parts) + more if len(away) else f"all {zp}"


def _fmt_diffs(expected, actual, limit=8):
    bad = np.argwhere(expected != actual)
    rows = [f"    at {tuple(int(v) for v in i)}: expected {int(expected[tuple(i)])}, got {int(actual[tuple(i)])}"
            for i in bad[:limit]]
    if len(bad) > limit:
        rows.append(f"    ... {len(bad)} values differ in all")
    return "\n".join(rows)


def _fmt_model_input(engines, x):
    """One (packed) input as text, each model input on its own when there are several."""
    q = engines.qmodel
    if len(q.inputs) == 1:
        return f"  {_fmt_input(x, engines.zero_point)}"
    parts = engines.unpack(x[None])
    return "\n".join(f"  input {name!r}: {_fmt_input(p[0], int(q.tensors[name].zero_point))}"
                     for name, p in zip(q.inputs, parts))


def _fmt_outputs(qmodel, want, got):
    """The differing values of every model output (lists, one sample each)."""
    if len(qmodel.outputs) == 1:
        return _fmt_diffs(want[0], got[0])
    return "\n".join(f"  output {name!r}:\n" + _fmt_diffs(w, g)
                     for name, w, g in zip(qmodel.outputs, want, got) if not np.array_equal(w, g))


def diagnose(engines, x, engine):
    """A Mismatch for one input x on which `engine` disagrees with NumPy: the first layer
    whose integers diverge, its inputs, expected and actual values."""
    qmodel = engines.qmodel
    args = engines.unpack(x[None])
    want = qmodel.predict_int8(args, return_all=True)
    if engine == "C":
        _, got = engines.c(args, qmodel)
        first = next((i for i, op in enumerate(qmodel.ops)
                      if not np.array_equal(got[op.outputs[0]], want[op.outputs[0]])), None)
        layer_out = lambda op: got[op.outputs[0]]
    else:
        first, outs = None, {}
        for i, op in enumerate(qmodel.ops):
            outs[i] = probe.tflm_layer(qmodel, op, want).reshape(want[op.outputs[0]].shape)
            if not np.array_equal(outs[i], want[op.outputs[0]]):
                first = i
                break
        layer_out = lambda op: outs[first]
    zp = engines.zero_point
    where = f"the zero point {zp}" if len(qmodel.inputs) == 1 else "each input's zero point"
    lines = [f"{engine} and NumPy int8 differ on model {qmodel.name!r} ({engines.c_dir}).",
             f"Smallest differing input (shrunk toward {where}):",
             _fmt_model_input(engines, x)]
    final = engines.run(x[None], [engine])
    lines.append("Model output:\n" + _fmt_outputs(qmodel, [y[0] for y in final["NumPy"]],
                                                  [y[0] for y in final[engine]]))
    err = Mismatch()
    err.input, err.engine, err.layer = x, engine, first
    if first is None:
        lines.append("Every layer's output agrees; the difference is in copying the output out.")
    else:
        op = qmodel.ops[first]
        expected, actual = want[op.outputs[0]][0], layer_out(op)[0]
        kernel = engines.c.manifest["layers"][first].get("c_name", op.name)
        channel = int(np.argwhere(expected != actual)[0][-1]) if expected.ndim else 0
        lines.append(f"First layer that diverges: layer {first} {op.name!r} ({op.kind}; C function {kernel})")
        if op.params:
            lines.append(f"  requantization of output channel {channel}: {_params_text(op, channel)}")
        if op.kind in targets.WEIGHTED:
            position = tuple(np.argwhere(expected != actual)[0])
            lines.append("  " + _accumulator_text(qmodel, op, want, int(np.ravel_multi_index(position, expected.shape))))
        for t in qmodel.activations(op):
            lines.append(f"  its input {t.name} {tuple(t.shape)} (scale {float(t.scale):.6g}, zero point "
                         f"{int(t.zero_point)}): {_fmt_input(want[t.name][0], int(t.zero_point))}")
        lines.append("  expected (NumPy) vs actual:\n" + _fmt_diffs(expected, actual))
        err.op, err.expected, err.actual = op, expected, actual
        err.inputs = {t.name: want[t.name][0] for t in qmodel.activations(op)}
    err.args = ("\n".join(lines),)
    return err


def _accumulator_text(qmodel, op, values, e):
    """The accumulator behind output e of a weighted layer and how its rounding goes."""
    layer = targets.LinearLayer(qmodel, op)
    acc = int(layer.acc(values[op.inputs[0]], e)[0])
    c = int(layer.channel[e])
    m, shift = int(op.params["output_multiplier"][c]), int(op.params["output_shift"][c])
    where = tuple(int(i) for i in np.unravel_index(e, qmodel.tensors[op.outputs[0]].shape))
    text = f"its accumulator at {where}: {acc}"
    if shift < 0 and not op.params["single_rounding"]:
        r = -shift
        x = int(fp.saturating_rounding_doubling_high_mul(acc, m))
        tie = (x & ((1 << r) - 1)) == 1 << (r - 1)
        text += (f"; SaturatingRoundingDoublingHighMul(acc, {m}) = {x}, and {x} / 2^{r} = {x / 2 ** r:g}"
                 + (": a rounding tie (away from zero: the sign decides)" if tie else ""))
    return text


def _params_text(op, channel):
    """The requantization of `op` for one output channel (per-channel arrays indexed)."""
    parts = []
    for k in ("input_offset", "output_offset", "act_min", "act_max", "output_multiplier", "output_shift"):
        if k in op.params:
            v = np.asarray(op.params[k]).reshape(-1)
            parts.append(f"{k} {int(v[channel] if v.size > 1 else v[0])}")
    return ", ".join(parts)


def _fail_on(engines, x, bad, deadline=None):
    """Shrink the first differing input (until time.monotonic() `deadline`, if given) and
    raise its Mismatch."""
    __tracebackhide__ = True            # pytest shows the report, not this frame
    first = x[int(np.argmax(bad))]
    engine = next(e for e in engines.names if engines.differs(first[None], [e])[0])
    small = shrink(first, lambda xs: engines.differs(xs, [engine]), engines.zero_point, deadline=deadline)
    raise diagnose(engines, small, engine)


def assert_equivalent(qmodel, c_dir, tflite=None, n=256, seed=0, budget=None, strategy=None,
                      max_examples=100, search_steps=0, flags=(), progress=None, use_tflm=None):
    """Assert NumPy int8 == the C in c_dir == TFLite Micro on the standard inputs
    (standard_inputs: n of them, or as many as `budget` seconds allow) and on `max_examples`
    draws of the hypothesis `strategy` (if given). Raises Mismatch (an AssertionError) with
    the shrunk input and the first diverging layer. Returns the number of inputs compared.

    flags: extra C compiler flags; progress: called with the running count after each
    batch; use_tflm: compare with TFLite Micro too (default: when it is installed).

    The budget, from the moment the C is built: the targeted search stops at half of it,
    the random inputs (and the strategy's draws) at three quarters, the shrinking of a
    difference at the whole; one batch already started finishes, so a run overshoots by
    at most a batch's time and the diagnosis of one input."""
    __tracebackhide__ = True
    engines = Engines(qmodel, c_dir, tflite, flags, use_tflm)
    start, done = time.monotonic(), 0
    at = (lambda share: None) if budget is None else (lambda share: start + share * budget)
    search_end = at(0.5 if strategy is not None else 0.75)
    for x in standard_inputs(qmodel, n if budget is None else 10 ** 9, seed, search_steps, at(0.5)):
        bad = engines.differs(x)
        done += len(x)
        if progress:
            progress(done)
        if bad.any():
            _fail_on(engines, x, bad, at(1.0))
        if search_end is not None and time.monotonic() > search_end:
            break
    if strategy is not None:
        done += _hypothesis_phase(engines, strategy, max_examples, at(0.75), at(1.0))
    return done


def _hypothesis_phase(engines, strategy, max_examples, deadline=None, shrink_deadline=None):
    """`max_examples` draws of `strategy` (those after time.monotonic() `deadline` are not
    run) -> how many were compared."""
    __tracebackhide__ = True
    found, ran = [], [0]

    # no shrinking by hypothesis: shrink() below does it toward the zero point, in batches
    @settings(max_examples=max_examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(strategy)
    def check(x):
        if deadline is not None and time.monotonic() > deadline:
            return
        ran[0] += 1
        x = engines.pack(x)
        if engines.differs(x[None])[0]:
            found.append(x)
            raise AssertionError("differs")

    try:
        check()
    except AssertionError:
        if not found:
            raise
        _fail_on(engines, found[-1][None], np.array([True]), shrink_deadline)   # hypothesis' shrunk input, last
    return ran[0]
