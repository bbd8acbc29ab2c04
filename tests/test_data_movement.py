"""The data-movement ops (CONCATENATION, PACK, SPLIT, SPLIT_V, UNPACK, PAD/PADV2,
STRIDED_SLICE, SLICE, TRANSPOSE) and QUANTIZE int8 -> int8, against two oracles:

- TensorFlow Lite Micro, bit for bit: the QModel written as a .tflite (the writer), run by
  TFLM's interpreter (int8_oracle.check_against_tflm);
- NumPy's own indexing on the sample, written independently of the kernels: np.concatenate,
  np.stack, np.split, np.pad, np.transpose, and Python's slicing for STRIDED_SLICE (TF's
  begin/end/stride rules are Python's: negative indices from the end, clamping, a mask is
  an omitted bound, shrink an integer index). QUANTIZE: the real number to within one step.

Ops with several outputs (SPLIT, SPLIT_V, UNPACK) are checked output by output against NumPy,
and, since TFLM's runner returns one tensor, through a model that joins every output back
in reverse order (CONCATENATION / PACK). Hypothesis draws ranks, axes, sizes, masks,
strides, paddings, permutations and scales; a few large tensors per CI run, more under
HYPOTHESIS_PROFILE=thorough.
"""
import os
import re
import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import int8_oracle as O
import test_tflite_import as TI
from minitiny import codegen
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import UnsupportedTFLiteError, from_tflite, run_tflm_int8

KINDS = ("concatenation", "pack", "split", "split_v", "unpack", "pad", "strided_slice", "slice",
         "transpose", "quantize")
MULTI = ("split", "split_v", "unpack")
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
GCC = shutil.which("gcc") or shutil.which("clang")
HAVE_FIRMWARE = bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "data-movement ops vs TFLM")


# ---------------------------------------------------------------------------------------
# The drawer: one op of a kind, its configuration drawn with integers(lo, hi) / choice(xs)
# ---------------------------------------------------------------------------------------
def draw_shape(integers, rank, most=5):
    """Dimensions in [1, most]; for the large cases (most > 5) in [most // 4, most]."""
    return tuple(integers(1 if most <= 5 else most // 4, most) for _ in range(rank))


def movement_model(seed, kind, integers, choice, big=False):
    """(QModel, reference) for one op of `kind`; `reference(xs)` is the op computed by NumPy
    on the samples xs (a list of (N, ...) int8 arrays): one array, or a list for MULTI."""
    rng = np.random.default_rng(seed)
    most = 40 if big else 5
    scale, zp = O.log_uniform(rng, 1e-3, 10), O.zero_point(rng)
    tensors, names = {}, iter(f"t{i}" for i in range(10 ** 6))

    def tensor(shape, s=scale, z=zp):
        t = QTensor(next(names), shape, "int8", s, z)
        tensors[t.name] = t
        return t.name

    rank = integers(2, 3) if big else integers(1, 4)
    shape = draw_shape(integers, rank, most)
    options, ins, outs = {}, [], []
    if kind in ("concatenation", "pack"):
        axis = integers(0, rank - 1 + (kind == "pack"))
        n = integers(1, 10 if integers(0, 5) == 0 else 4)
        if kind == "pack":
            ins = [tensor(shape) for _ in range(n)]
            outs = [tensor(shape[:axis] + (n,) + shape[axis:])]
            reference = lambda xs: np.stack(xs, axis=axis + 1)                      # noqa: E731
        else:
            sizes = [integers(1, 4) for _ in range(n)]
            ins = [tensor(shape[:axis] + (s,) + shape[axis + 1:]) for s in sizes]
            outs = [tensor(shape[:axis] + (sum(sizes),) + shape[axis + 1:])]
            reference = lambda xs: np.concatenate(xs, axis=axis + 1)                # noqa: E731
        options = {"axis": axis}
    elif kind in MULTI:
        axis = integers(0, rank - 1)
        n = integers(1, 4)
        if kind == "split":
            sizes = [integers(1, 3)] * n
        elif kind == "split_v":
            sizes = [integers(1, 4) for _ in range(n)]
            options["sizes"] = tuple(sizes)
        else:
            sizes = [1] * n
        x_shape = shape[:axis] + (sum(sizes),) + shape[axis + 1:]
        ins = [tensor(x_shape)]
        outs = [tensor(shape[:axis] + ((s,) if kind != "unpack" else ()) + shape[axis + 1:]) for s in sizes]
        options["axis"] = axis
        cuts = np.cumsum(sizes)[:-1]
        reference = lambda xs: [p.reshape((len(p),) + tensors[o].shape)               # noqa: E731
                                for p, o in zip(np.split(xs[0], cuts, axis=axis + 1), outs)]
    elif kind == "pad":
        paddings = tuple((integers(0, 3), integers(0, 3)) for _ in range(rank))
        constant = None if integers(0, 1) else integers(-128, 127)
        ins = [tensor(shape)]
        outs = [tensor(tuple(d + b + a for d, (b, a) in zip(shape, paddings)))]
        options = {"paddings": paddings, "constant": constant}
        value = zp if constant is None else constant
        reference = lambda xs: np.pad(xs[0], ((0, 0),) + paddings, constant_values=value)  # noqa: E731
    elif kind == "strided_slice":
        rank = min(rank, 3)                     # TFLM: at most 4 dimensions with the batch
        shape = shape[:rank]
        begin, end, strides, masks, index = [], [], [], [0, 0, 0], []
        for d, size in enumerate(shape):
            stride = choice([1, 1, 2, 3, -1, -2, -3])
            b, e = integers(-size - 2, size + 2), integers(-size - 2, size + 2)
            shrink = integers(0, 4) == 0
            if shrink:
                b, stride = integers(-size, size - 1), abs(stride)
                masks[2] |= 1 << d
                index.append(b)
            else:
                bm, em = integers(0, 2) == 0, integers(0, 2) == 0
                if not len(range(*slice(None if bm else b, None if em else e, stride).indices(size))):
                    bm = em = True              # a non-empty slice: the whole axis
                masks[0] |= bm << d
                masks[1] |= em << d
                index.append(slice(None if bm else b, None if em else e, stride))
            begin.append(b)
            end.append(e)
            strides.append(stride)
        ins = [tensor(shape)]
        sliced = np.zeros(shape)[tuple(index)]
        outs = [tensor(sliced.shape)]
        options = dict(begin=tuple(begin), end=tuple(end), strides=tuple(strides), begin_mask=masks[0],
                       end_mask=masks[1], shrink_axis_mask=masks[2])
        reference = lambda xs: xs[0][(slice(None),) + tuple(index)]                 # noqa: E731
    elif kind == "slice":
        begin = [integers(0, d - 1) for d in shape]
        size = [choice([-1, integers(1, d - b)]) for d, b in zip(shape, begin)]
        ins = [tensor(shape)]
        full = [d - b if s == -1 else s for d, b, s in zip(shape, begin, size)]
        outs = [tensor(tuple(full))]
        options = {"begin": tuple(begin), "size": tuple(size)}
        index = (slice(None),) + tuple(slice(b, b + s) for b, s in zip(begin, full))
        reference = lambda xs: xs[0][index]                                           # noqa: E731
    elif kind == "transpose":
        perm = tuple(int(p) for p in rng.permutation(rank))
        ins = [tensor(shape)]
        outs = [tensor(tuple(shape[p] for p in perm))]
        options = {"perm": perm}
        reference = lambda xs: np.transpose(xs[0], (0,) + tuple(p + 1 for p in perm))  # noqa: E731
    elif kind == "quantize":
        ins = [tensor(shape)]
        s_out = np.float32(scale * O.log_uniform(rng, 1e-3, 1e3))
        outs = [tensor(shape, s_out, O.zero_point(rng))]
        reference = None                        # the real number: check_quantize_semantics
    else:
        raise ValueError(kind)
    ops = [QOp(kind, kind, ins, outs, options)]
    model_outputs = outs
    if kind in MULTI:                           # join the outputs back, last first
        joined = tensor(tensors[ins[0]].shape)
        ops.append(QOp("pack" if kind == "unpack" else "concatenation", "join", outs[::-1], [joined],
                       {"axis": options["axis"]}))
        model_outputs = [joined]
    return QModel(kind, tensors, ops, ins, model_outputs), reference


def config_from(data):
    return (lambda lo, hi: data.draw(st.integers(lo, hi))), (lambda xs: data.draw(st.sampled_from(xs)))


def config_from_rng(rng):
    return (lambda lo, hi: int(rng.integers(lo, hi + 1))), (lambda xs: xs[int(rng.integers(len(xs)))])


def check_numpy_semantics(model, reference, xs):
    """The op's output(s) in minitiny's NumPy reference == NumPy's own indexing."""
    op = model.ops[0]
    values = dict(zip(model.inputs, xs))
    for name, a in zip(op.inputs, xs):
        values[name] = a
    got = O.run_all(model, xs)
    if op.kind == "quantize":
        check_quantize_semantics(model, xs[0], got[op.outputs[0]])
        return
    want = reference(xs)
    for name, w in zip(op.outputs, want if isinstance(want, list) else [want]):
        np.testing.assert_array_equal(got[name], w, err_msg=f"{op.kind} output {name} {op.options}")


def check_quantize_semantics(model, x, y):
    """Dequantized, the output is the input's real number to within half an output step,
    plus the first of gemmlowp's two roundings (half a step of 2^-right_shift output steps:
    216 * 0.45033 = 97.27 becomes 194.55 -> 195, then 195 / 2 -> 98), wherever it is inside
    the output's range; outside it saturates."""
    t_in, t_out = model.tensors[model.inputs[0]], model.tensors[model.ops[0].outputs[0]]
    real = t_in.dequantize(x).astype(np.float64)
    got = t_out.dequantize(y).astype(np.float64)
    inside = (real > t_out.dequantize(-128)) & (real < t_out.dequantize(127))
    step = float(t_out.scale)
    right_shift = max(-model.ops[0].params["output_shift"], 0)
    err = np.abs(got - real)[inside]
    bound = 0.5 * step * (1 + 2.0 ** -right_shift) + 1e-6 * np.abs(real).max() + 1e-9
    assert err.size == 0 or err.max() <= bound, (err.max(), step)
    assert np.all(y[~inside & (real >= t_out.dequantize(127))] == 127)
    assert np.all(y[~inside & (real <= t_out.dequantize(-128))] == -128)


def check(model, reference, seed, n=8, label=None):
    xs = O.random_inputs(model, seed, n)
    check_numpy_semantics(model, reference, xs)
    if O.tflm.available():
        O.check_against_tflm(model, xs, label=label or model.ops[0].kind)


# ---------------------------------------------------------------------------------------
# Drawn by hypothesis, a fixed sweep, and large tensors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_movement_op_matches_numpy_and_tflm(kind, data):
    seed = data.draw(O.seeds, label="seed")
    model, reference = movement_model(seed, kind, *config_from(data))
    check(model, reference, seed)


@pytest.mark.parametrize("kind", KINDS)
def test_movement_op_sweep(kind):
    """40 fixed configurations per kind, 4 samples each."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    for i in range(40):
        model, reference = movement_model(int(rng.integers(2 ** 32)), kind, *config_from_rng(rng))
        check(model, reference, i, n=4)


@pytest.mark.parametrize("kind", KINDS)
def test_large_tensors(kind):
    """Where users go: dimensions of 10 to 40 (up to 64,000 values), 2 per CI run."""
    rng = np.random.default_rng(1000 + KINDS.index(kind))
    for i in range(12 if THOROUGH else 2):
        model, reference = movement_model(int(rng.integers(2 ** 32)), kind, *config_from_rng(rng), big=True)
        check(model, reference, i, n=2, label=f"{kind} (large)")


@O.requires_tflm
def test_quantize_at_extreme_scale_ratios_matches_tflm():
    """Every int8 input, through scale ratios from 2^-20 to 2^20 and every zero point pair
    at the ends."""
    x = np.tile(O.ALL_INT8, (2, 1))
    for ratio in 2.0 ** np.arange(-20, 21, 3) * 1.37:
        for z_in, z_out in ((-128, 127), (127, -128), (0, 0), (5, -9)):
            t = {"x": QTensor("x", (256,), "int8", 0.01, z_in),
                 "y": QTensor("y", (256,), "int8", np.float32(0.01 / ratio), z_out)}
            model = QModel("q", t, [QOp("quantize", "q", ["x"], ["y"])], ["x"], ["y"])
            O.check_against_tflm(model, x, label="quantize (extreme ratios)")
            check_quantize_semantics(model, x, model.predict_int8(x))


# ---------------------------------------------------------------------------------------
# Through the .tflite writer and reader: the same graph comes back
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=10)
@given(data=st.data())
def test_round_trip_through_the_file(kind, data):
    seed = data.draw(O.seeds, label="seed")
    q, _ = movement_model(seed, kind, *config_from(data))
    r = from_tflite(to_tflite(q))
    assert [(op.kind, op.options, len(op.outputs)) for op in r.ops] == \
        [(op.kind, op.options, len(op.outputs)) for op in q.ops]
    xs = O.random_inputs(q, seed)
    np.testing.assert_array_equal(O.run_reference(r, xs), O.run_reference(q, xs))


# ---------------------------------------------------------------------------------------
# Bad input: refused in prepare (GraphError) or at import (UnsupportedTFLiteError), by name
# ---------------------------------------------------------------------------------------
def _one(kind, in_shapes, out_shapes, options, in_q=(0.1, 3), out_q=(0.1, 3)):
    t = {f"x{i}": QTensor(f"x{i}", s, "int8", *in_q) for i, s in enumerate(in_shapes)}
    t.update({f"y{i}": QTensor(f"y{i}", s, "int8", *out_q) for i, s in enumerate(out_shapes)})
    return QModel(kind, t, [QOp(kind, "op", [f"x{i}" for i in range(len(in_shapes))],
                                [f"y{i}" for i in range(len(out_shapes))], options)],
                  [f"x{i}" for i in range(len(in_shapes))], ["y0"])


@pytest.mark.parametrize("kind, ins, outs, options, in_q, words", [
    ("concatenation", [(2, 3), (2, 3)], [(4, 3)], {"axis": 0}, (0.2, 3), "share scale and zero point"),
    ("concatenation", [(2, 3), (2, 4)], [(4, 3)], {"axis": 0}, (0.1, 3), "do not concatenate"),
    ("concatenation", [(2, 3)], [(2, 3)], {"axis": 2}, (0.1, 3), "not an axis"),
    ("split", [(5, 3)], [(2, 3), (2, 3)], {"axis": 0}, (0.1, 3), "equal parts"),
    ("split_v", [(5, 3)], [(2, 3), (2, 3)], {"axis": 0, "sizes": (2, 2)}, (0.1, 3), "summing to 5"),
    ("unpack", [(3, 3)], [(3,), (3,)], {"axis": 0}, (0.1, 3), "into 2 outputs"),
    ("pad", [(2, 3)], [(2, 3)], {"paddings": ((0, 0), (-1, 1))}, (0.1, 3), ">= 0"),
    ("pad", [(2, 3)], [(2, 3)], {"paddings": ((0, 0), (0, 0)), "constant": 300}, (0.1, 3), "int8 value"),
    ("strided_slice", [(4,)], [(2,)], {"begin": (0,), "end": (4,), "strides": (0,)}, (0.1, 3), "stride 0"),
    ("strided_slice", [(4,)], [(3,)], {"begin": (0,), "end": (4,), "strides": (2,)}, (0.1, 3), "has (2,)"),
    ("strided_slice", [(4, 2)], [(2,)], {"begin": (1, 0), "end": (2, 2), "strides": (-1, 1),
                                         "shrink_axis_mask": 1}, (0.1, 3), "copies nothing"),
    ("strided_slice", [(2, 2, 2, 2)], [(2, 2, 2, 2)], {"begin": (0,) * 4, "end": (2,) * 4, "strides": (1,) * 4},
     (0.1, 3), "at most 4"),
    ("slice", [(4,)], [(3,)], {"begin": (2,), "size": (3,)}, (0.1, 3), "leave the sample"),
    ("transpose", [(2, 3)], [(2, 3)], {"perm": (0, 0)}, (0.1, 3), "not an order"),
    ("transpose", [(2, 3)], [(2, 3)], {"perm": (1, 0)}, (0.1, 3), "gives (3, 2)"),
    ("quantize", [(2, 3)], [(2, 3)], {}, (1e30, 3), "out of range"),
])
def test_bad_ops_are_refused_by_name(kind, ins, outs, options, in_q, words):
    out_q = (0.1, 3) if kind != "quantize" else (1e-20, 3)
    with pytest.raises(GraphError, match=re.escape(words)) as e:
        _one(kind, ins, outs, options, in_q, out_q)
    assert "'op'" in str(e.value) and kind in str(e.value)


# ---------------------------------------------------------------------------------------
# Files TFLite's converter could write that minitiny (or TFLM) cannot run: one
# UnsupportedTFLiteError naming the operator, by index, and the item
# ---------------------------------------------------------------------------------------
def _file(kind, in_shapes, out_shapes, options):
    return to_tflite(_one(kind, in_shapes, out_shapes, options))


def set_constant(suffix, values):
    """Replace the int32 constant input whose name ends with `suffix` ('/perm', ...)."""
    def change(m, s):
        t = next(t for t in m.subgraphs[0].tensors if t.name.decode().endswith(suffix))
        a = np.array(values, dtype="<i4")
        m.buffers[t.buffer].data, t.shape = list(a.tobytes()), list(a.shape)
    return change


def set_shape(name, shape):
    def change(m, s):
        next(t for t in m.subgraphs[0].tensors if t.name.decode() == name).shape = list(shape)
    return change


def both(*changes):
    def change(m, s):
        for c in changes:
            c(m, s)
    return change


SLICE_OPTIONS = {"begin": (0, 0), "end": (2, 3), "strides": (1, 1)}
REFUSED = {      # name -> (kind, inputs, outputs, options, edit, fragment of the message)
    "ellipsis": ("strided_slice", [(2, 3)], [(2, 3)], SLICE_OPTIONS,
                 TI.set_options("ellipsisMask", 2, "STRIDED_SLICE"), "STRIDED_SLICE: ellipsis_mask 2"),
    "new axis": ("strided_slice", [(2, 3)], [(2, 3)], SLICE_OPTIONS,
                 TI.set_options("newAxisMask", 4, "STRIDED_SLICE"), "new_axis_mask 4"),
    "offset": ("strided_slice", [(2, 3)], [(2, 3)], SLICE_OPTIONS,
               TI.set_options("offset", True, "STRIDED_SLICE"), "offset=True"),
    "shrink, negative stride": ("strided_slice", [(2, 3)], [(2, 3)], SLICE_OPTIONS,
                                both(TI.set_options("shrinkAxisMask", 2, "STRIDED_SLICE"),
                                     set_constant("/strides", [1, -1, 1])), "leaves the output unwritten"),
    "slice of the batch": ("strided_slice", [(2, 3)], [(2, 3)], SLICE_OPTIONS,
                           set_constant("/begin", [1, 0, 0]), "batch dimension must be taken whole"),
    "strided_slice rank 5": ("strided_slice", [(2, 3)], [(2, 3)], SLICE_OPTIONS,
                             both(set_shape("x0", (1, 1, 1, 2, 3)), set_shape("y0", (1, 1, 1, 2, 3)),
                                  *(set_constant(f"/{k}", [0, 0, 0, 0, 0] if k == "begin" else [1, 1, 1, 2, 3]
                                                 if k == "end" else [1] * 5) for k in ("begin", "end", "strides"))),
                             "has 5 dimensions; TFLM's kernel takes at most 4"),
    "concatenation along the batch": ("concatenation", [(2, 3), (2, 3)], [(4, 3)], {"axis": 0},
                                      TI.set_options("axis", 0, "CONCATENATION"), "along the batch dimension"),
    "concatenation, fused relu": ("concatenation", [(2, 3), (2, 3)], [(4, 3)], {"axis": 0},
                                  TI.set_options("fusedActivationFunction", 1, "CONCATENATION"),
                                  "CONCATENATION: a fused activation"),
    "transpose of the batch": ("transpose", [(2, 3)], [(3, 2)], {"perm": (1, 0)},
                               set_constant("/perm", [1, 0, 2]), "moves the batch dimension"),
    "pad the batch": ("pad", [(2, 3)], [(3, 3)], {"paddings": ((1, 0), (0, 0))},
                      set_constant("/paddings", [[1, 0], [1, 0], [0, 0]]), "of the batch dimension"),
    "negative pad": ("pad", [(2, 3)], [(3, 3)], {"paddings": ((1, 0), (0, 0))},
                     set_constant("/paddings", [[0, 0], [2, -1], [0, 0]]), "negative paddings"),
    "split along the batch": ("split", [(2, 3)], [(1, 3), (1, 3)], {"axis": 0},
                              set_constant("/axis", 0), "along the batch dimension"),
    # (int8 <-> int16 imports: tests/test_int16_ops.py)
    "quantize to int32": ("quantize", [(2, 3)], [(2, 3)], {},
                          TI.set_tensor("type", lambda s: s.TensorType.INT32), "int8 -> int32 (a conversion)"),
}


@pytest.mark.parametrize("what", sorted(REFUSED))
def test_unsupported_options_are_refused_naming_the_operator(what):
    kind, ins, outs, options, change, fragment = REFUSED[what]
    data = TI.edit(_file(kind, ins, outs, options), change)
    with pytest.raises(UnsupportedTFLiteError) as e:
        from_tflite(data)
    assert "operator #0 " in str(e.value) and fragment in str(e.value), str(e.value)


@O.requires_tflm
def test_a_requantization_in_the_middle_of_a_file_imports_and_matches_tflm():
    """An int8 -> int8 QUANTIZE after a convolution (TFLite's converter writes one where two
    branches must meet at one scale) becomes a quantize op."""
    data = TI.edit(to_tflite(TI.one_op("conv_2d")), TI.requantize_in_the_middle)
    q = from_tflite(data)
    assert [op.kind for op in q.ops] == ["conv_2d", "quantize"]
    x = O.random_inputs(q, 3, 16)[0]
    np.testing.assert_array_equal(q.predict_int8(x), run_tflm_int8(data, x))


# ---------------------------------------------------------------------------------------
# The generated C: host C == NumPy (reference and scalar variants), the sanitizers, the M4
# ---------------------------------------------------------------------------------------
def movement_chain(seed):
    """One input, one output, every data-movement kind: pad -> transpose -> strided_slice ->
    split_v -> concatenation (parts swapped) -> quantize -> slice -> unpack -> pack (reversed)
    -> split -> concatenation. The strict compiles (tests/test_c_hygiene.py MODELS) and the
    emulated Cortex-M4 run it."""
    rng = np.random.default_rng(seed)
    s, z = O.log_uniform(rng, 1e-2, 1), O.zero_point(rng)
    t = {}

    def tensor(name, shape, scale=s, zp=z):
        t[name] = QTensor(name, shape, "int8", scale, zp)
        return name
    tensor("x", (6, 5, 4))
    ops = [QOp("pad", "pad", ["x"], [tensor("padded", (7, 7, 4))], {"paddings": ((1, 0), (0, 2), (0, 0)),
                                                                    "constant": -3}),
           QOp("transpose", "transpose", ["padded"], [tensor("hwc", (4, 7, 7))], {"perm": (2, 0, 1)}),
           QOp("strided_slice", "strided_slice", ["hwc"], [tensor("sliced", (4, 3, 7))],
               {"begin": (0, -1, 0), "end": (4, 0, 7), "strides": (1, -2, 1), "begin_mask": 4}),
           QOp("split_v", "split_v", ["sliced"], [tensor("a", (1, 3, 7)), tensor("b", (3, 3, 7))],
               {"axis": 0, "sizes": (1, 3)}),
           QOp("concatenation", "concatenation", ["b", "a"], [tensor("swapped", (4, 3, 7))], {"axis": 0}),
           QOp("quantize", "quantize", ["swapped"], [tensor("requantized", (4, 3, 7), np.float32(s * 0.37), -50)]),
           QOp("slice", "slice", ["requantized"], [tensor("cut", (2, 3, 7), np.float32(s * 0.37), -50)],
               {"begin": (1, 0, 0), "size": (2, -1, -1)}),
           QOp("unpack", "unpack", ["cut"], [tensor(f"row{i}", (2, 7), np.float32(s * 0.37), -50) for i in range(3)],
               {"axis": 1}),
           QOp("pack", "pack", ["row2", "row0", "row1"], [tensor("packed", (2, 7, 3), np.float32(s * 0.37), -50)],
               {"axis": 2}),
           QOp("split", "split", ["packed"], [tensor(f"half{i}", (1, 7, 3), np.float32(s * 0.37), -50) for i in range(2)],
               {"axis": 0}),
           QOp("concatenation", "join", ["half1", "half0"], [tensor("y", (2, 7, 3), np.float32(s * 0.37), -50)],
               {"axis": 0})]
    return QModel("data movement", t, ops, ["x"], ["y"])


def host_c(model, x, variant, sanitize=False):
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="mv", variant=variant)
        return codegen.load(d, sanitize=sanitize)(x)


def one_input_model(seed, kind, integers, choice):
    """A drawn model the C runs today (one model input): concatenation and pack of several
    inputs are reached through the split/unpack models, which join their outputs with them."""
    model, _ = movement_model(seed, kind, integers, choice)
    while len(model.inputs) > 1:
        seed += 1
        model, _ = movement_model(seed, kind, integers, choice)
    return model


@pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=4)           # each example compiles a model (about a second)
@given(data=st.data(), variant=st.sampled_from(("reference", "scalar")))
def test_host_c_matches_numpy(kind, data, variant):
    model = one_input_model(data.draw(O.seeds, label="seed"), kind, *config_from(data))
    x = O.random_inputs(model, 0, 4)[0]
    np.testing.assert_array_equal(host_c(model, x, variant), model.predict_int8(x))


@pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
def test_the_chain_in_c_under_asan_and_ubsan():
    model = movement_chain(0)
    x = O.random_inputs(model, 1, 16)[0]
    want = model.predict_int8(x)
    for variant in ("reference", "scalar"):
        np.testing.assert_array_equal(host_c(model, x, variant, sanitize=True), want)


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="arm-none-eabi-gcc or qemu-system-arm is missing")
def test_the_chain_on_the_emulated_cortex_m4(tmp_path):
    from minitiny import firmware
    model = movement_chain(1)
    x = O.random_inputs(model, 2, 8)[0]
    codegen.generate(model, tmp_path, name="mv", variant="auto")
    result = firmware.run(tmp_path, board="cortex-m4", inputs=x, profile=False)
    assert result.ok, result.message
    np.testing.assert_array_equal(result.outputs, model.predict_int8(x))


@O.requires_tflm
def test_the_chain_matches_tflm():
    for seed in range(3):
        O.check_against_tflm(movement_chain(seed), seed=seed, label="the data-movement chain")


# ---------------------------------------------------------------------------------------
# Time-major tensors: TF's converter reshapes a sequence to [T, 1, F] and UNPACKs axis 0
# before an unrolled GRU (tests/data/architectures/gru_unrolled.tflite, tests/test_architectures.py)
# ---------------------------------------------------------------------------------------
def _time_major_file(consumer):
    """x (1, 8, 3) -> RESHAPE -> [8, 1, 3] (time-major in the file) -> `consumer`."""
    t = {"x": QTensor("x", (8, 3), "int8", 0.1, 3), "tm": QTensor("tm", (8, 3), "int8", 0.1, 3)}
    ops = [QOp("reshape", "reshape", ["x"], ["tm"])]
    if consumer == "unpack":
        t.update({f"y{i}": QTensor(f"y{i}", (3,), "int8", 0.1, 3) for i in range(8)})
        ops.append(QOp("unpack", "unpack", ["tm"], [f"y{i}" for i in range(8)], {"axis": 0}))
        ops.append(QOp("pack", "pack", [f"y{i}" for i in range(8)][::-1], ["out"], {"axis": 0}))
        t["out"] = QTensor("out", (8, 3), "int8", 0.1, 3)
    else:
        t["out"] = QTensor("out", (8, 3), "int8", 0.1, 3)
        ops.append(QOp("relu6", "relu6", ["tm"], ["out"]))
    q = QModel("time major", t, ops, ["x"], ["out"])

    def change(m, s):
        sg = m.subgraphs[0]
        tm = next(x for x in sg.tensors if x.name.decode() == "tm")
        tm.shape = [8, 1, 3]
        reshape_shape = next(x for x in sg.tensors if x.name.decode() == "reshape/shape")
        m.buffers[reshape_shape.buffer].data = list(np.array([8, 1, 3], "<i4").tobytes())
        reshape_shape.shape = [3]
        if consumer == "unpack":            # the file's axis 0 of [8, 1, 3]
            TI.first_op(m, s, "UNPACK").builtinOptions.axis = 0
    return q, TI.edit(to_tflite(q), change)


@O.requires_tflm
def test_a_time_major_unpack_imports_and_matches_tflm():
    q, data = _time_major_file("unpack")
    r = from_tflite(data)
    assert [op.kind for op in r.ops] == ["reshape", "unpack", "pack"] and r.ops[1].options == {"axis": 0}
    x = O.random_inputs(r, 0, 8)[0]
    np.testing.assert_array_equal(r.predict_int8(x), run_tflm_int8(data, x))
    np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


def test_a_time_major_tensor_read_by_another_op_is_refused():
    _, data = _time_major_file("relu6")
    with pytest.raises(UnsupportedTFLiteError, match="is time-major") as e:
        from_tflite(data)
    assert "operator #1 RELU6" in str(e.value)
