"""The C generator without the heavy compiling: names, the arena planner, the files written,
the manifest and header, errors, the compile cache, and the generated C used from a C program
(two models linked together, the layer hook, the float helpers).

Bit-exactness over random models and every op kind is in tests/test_codegen_models.py.
Oracles here are independent of the code under test: a byte-level simulation of the arena
(every read checks the bytes still hold the value written), the C compiler itself (does a
comment swallow the next line?), and QTensor.quantize / dequantize for the float helpers.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402
from test_codegen_models import random_model, renamed  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.codegen import names, planner  # noqa: E402
from minitiny.quant.graph import QModel  # noqa: E402

GCC = shutil.which("gcc")
requires_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def small_model(seed=0, name="small"):
    """conv -> relu -> reshape -> dense -> softmax: every buffer trick of the planner."""
    return random_model(seed, ["conv_2d", "relu", "reshape", "fully_connected", "softmax"],
                        input_shape=(6, 5, 2), name=name)


# ---------------------------------------------------------------------------------------
# names: identifiers and comments
# ---------------------------------------------------------------------------------------
IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@given(st.text())
def test_c_identifier_is_a_valid_unreserved_identifier(text):
    ident = names.c_identifier(text)
    assert IDENT.match(ident), ident
    assert "__" not in ident and not ident.endswith("__")
    assert ident not in names.C_KEYWORDS and ident not in names.LIBC_NAMES
    assert ident not in names.STDINT_NAMES


def test_c_identifier_examples():
    # expected values written by hand from the rules in names.py
    assert names.c_identifier("dense 1") == "dense_1"
    assert names.c_identifier("1st") == "n1st"
    assert names.c_identifier("int") == "int_"
    assert names.c_identifier("tanh") == "tanh_"          # a gcc built-in
    assert names.c_identifier("int32_t") == "int32_t_"
    assert names.c_identifier("__secret") == "secret"
    assert names.c_identifier("*/") == "unnamed"


@given(st.lists(st.text(max_size=6), min_size=1, max_size=20))
def test_namer_gives_unique_names_with_their_derived_names(texts):
    namer = names.Namer({"arena"})
    suffixes = ("", "_weight", "_bias")
    claimed = [namer.claim(t, suffixes) for t in texts]
    everything = [c + s for c in claimed for s in suffixes]
    assert len(set(everything)) == len(everything)
    assert "arena" not in everything


@given(st.text())
def test_c_comment_cannot_end_or_nest_or_splice(text):
    safe = names.c_comment(text)
    assert "*/" not in safe and "/*" not in safe and "??" not in safe
    assert all(32 <= ord(ch) < 127 for ch in safe)
    assert not safe.endswith("\\")


NASTY = ["*/ int injected; /*", "a\\", "x ??/", "//", "/*", "*", "end *", "é ü 中", "tab\there",
         "new\nline", "??=define", "\\", "\x00", "'\"", "*/*/*/"]


@requires_gcc
def test_escaped_comments_compile_and_swallow_nothing(tmp_path):
    """The compiler is the oracle: every nasty string inside /* */ and after // must leave the
    next line alone (a splice or an early */ would break `int kept_i`)."""
    lines = []
    for i, text in enumerate(NASTY):
        lines += [f"/* {names.c_comment(text)} */", f"int kept_block_{i};",
                  f"// {names.c_comment(text)}", f"int kept_line_{i};"]
    uses = " + ".join(f"kept_block_{i} + kept_line_{i}" for i in range(len(NASTY)))
    lines.append(f"int use(void);\nint use(void) {{ return {uses}; }}")
    src = tmp_path / "comments.c"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([GCC] + STRICT + ["-Wcomment", "-Wtrigraphs", "-fsyntax-only", str(src)], check=True)


# ---------------------------------------------------------------------------------------
# the arena planner
# ---------------------------------------------------------------------------------------
def simulate(result, steps, sizes, inputs, outputs):
    """Run the plan on a byte-level arena: every write stamps its bytes with a fresh value,
    every read checks its bytes still hold the value it expects. An op's output must be
    disjoint from its inputs, except an elementwise op writing exactly over a dying input."""
    mem = np.full(result.size, -1, dtype=np.int64)
    value = {}
    fresh = iter(range(10 ** 9))

    def region(t):
        off = result.offsets[t]
        assert off >= 0 and off + sizes[t] <= result.size, f"{t} outside the arena"
        return slice(off, off + sizes[t])

    def check(t, where):
        assert np.all(mem[region(t)] == value[t]), f"{where}: {t!r} was overwritten"

    for t in inputs:
        value[t] = next(fresh)
        mem[region(t)] = value[t]
    touched = []
    for i, (name, kind, ins, out) in enumerate(steps):
        for t in ins:
            check(t, f"step {i} ({name})")
        touched.append(sum({(result.offsets[t], sizes[t]) : sizes[t] for t in ins + [out]}.values()))
        if kind == "reshape":
            value[out] = value[ins[0]]           # no code: the bytes must already be there
            check(out, f"step {i} ({name}) alias")
            continue
        o_lo, o_hi = result.offsets[out], result.offsets[out] + sizes[out]
        for t in ins:
            lo, hi = result.offsets[t], result.offsets[t] + sizes[t]
            if lo < o_hi and o_lo < hi:          # overlap: allowed only as an exact in-place
                assert kind in planner.IN_PLACE_KINDS and (lo, hi) == (o_lo, o_hi), \
                    f"step {i} ({name}): output overlaps input {t!r}"
                assert all(s[2].count(t) == 0 for s in steps[i + 1:]) and t not in outputs, \
                    f"step {i} ({name}): wrote over {t!r}, which is read later"
        value[out] = next(fresh)
        mem[region(out)] = value[out]
    for t in outputs:
        check(t, "copy out")
    return max(touched + [0])


@st.composite
def graphs(draw):
    """Random DAGs: ops read live tensors (skip connections), some elementwise, some reshape."""
    n = draw(st.integers(1, 12))
    sizes = {"x": draw(st.integers(1, 64))}
    tensors, steps = ["x"], []
    for i in range(n):
        kind = draw(st.sampled_from(["conv_2d", "relu", "add", "reshape", "tanh", "softmax"]))
        a = draw(st.sampled_from(tensors[-4:]))
        out = f"t{i}"
        if kind == "add":
            b = draw(st.sampled_from([t for t in tensors if sizes[t] == sizes[a]]))
            ins, sizes[out] = [a, b], sizes[a]
        elif kind == "conv_2d":
            ins, sizes[out] = [a], draw(st.integers(1, 64))
        else:
            ins, sizes[out] = [a], sizes[a]
        steps.append((f"op{i}", kind, ins, out))
        tensors.append(out)
    outputs = [tensors[-1]]
    return steps, sizes, ["x"], outputs


@given(graphs())
def test_planner_never_overwrites_a_live_tensor(graph):
    steps, sizes, inputs, outputs = graph
    result = planner.plan(steps, sizes, inputs, outputs)
    layer_bound = simulate(result, steps, sizes, inputs, outputs)
    assert result.size >= result.lower_bound >= layer_bound
    assert result.size % 4 == 0 and all(b.offset % 4 == 0 for b in result.buffers)
    # no two buffers live at the same step share a byte
    for a in result.buffers:
        for b in result.buffers:
            if a is not b and a.overlaps_in_time(b):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset


def test_planner_runs_relu_in_place_and_reshape_for_free():
    # x(10) -> dense -> y(100) -> relu -> z(100) -> reshape -> r(100) -> dense -> w(12)
    steps = [("d0", "fully_connected", ["x"], "y"), ("r", "relu", ["y"], "z"),
             ("flat", "reshape", ["z"], "r"), ("d1", "fully_connected", ["r"], "w")]
    sizes = {"x": 10, "y": 100, "z": 100, "r": 100, "w": 12}
    result = planner.plan(steps, sizes, ["x"], ["w"])
    assert result.shared == {"r": ("in place", "y"), "flat": ("alias", "z")}
    assert result.offsets["y"] == result.offsets["z"] == result.offsets["r"]
    # without sharing, the relu step alone needs y + z = 200 bytes; with it the most live at
    # once is at dense_1: r (= y) + w = 112 (dense_0 needs x + y = 110)
    assert result.lower_bound == 112 and result.size == 112


def test_planner_keeps_a_tensor_read_later():
    # relu may not overwrite y: the add reads y after the relu
    steps = [("d0", "conv_2d", ["x"], "y"), ("r", "relu", ["y"], "z"), ("sum", "add", ["z", "y"], "s")]
    sizes = {"x": 8, "y": 40, "z": 40, "s": 40}
    result = planner.plan(steps, sizes, ["x"], ["s"])
    assert "r" not in result.shared
    assert result.shared["sum"] in (("in place", "z"), ("in place", "y"))
    simulate(result, steps, sizes, ["x"], ["s"])
    assert result.size == 80 == result.lower_bound


def test_planner_reuses_dead_buffers_on_a_chain():
    # 100 -> 50 -> 100 -> 10: x and t1 are never live together, so they share offset 0
    steps = [("a", "conv_2d", ["x"], "t0"), ("b", "conv_2d", ["t0"], "t1"), ("c", "conv_2d", ["t1"], "t2")]
    sizes = {"x": 100, "t0": 50, "t1": 100, "t2": 10}
    result = planner.plan(steps, sizes, ["x"], ["t2"])
    assert result.size == 152 and result.lower_bound == 150      # 150 = x + t0 = t0 + t1
    assert result.offsets["x"] == result.offsets["t1"] == 0


def test_plan_of_a_qmodel_matches_the_manifest(tmp_path):
    model = small_model()
    result = codegen.plan_qmodel(model)
    steps = [(op.name, op.kind, [t.name for t in model.activations(op)], op.outputs[0]) for op in model.ops]
    sizes = {n: t.nbytes for n, t in model.tensors.items() if not t.is_constant}
    simulate(result, steps, sizes, model.inputs, model.outputs)
    info = codegen.generate(model, tmp_path / "m", in_place=False).manifest   # the plain schedule
    assert info["arena_bytes"] == result.size and info["arena_lower_bound"] == result.lower_bound
    assert info["plan"] == result.rows()


# ---------------------------------------------------------------------------------------
# the files: contents, manifest, header, determinism, atomic writing, errors
# ---------------------------------------------------------------------------------------
def test_generate_writes_the_four_files(tmp_path):
    model = small_model(name="sine")
    g = codegen.generate(model, tmp_path / "sine")
    assert sorted(os.listdir(tmp_path / "sine")) == ["sine.qmodel.npz", "sine_manifest.json",
                                                     "sine_model.c", "sine_model.h"]
    back = QModel.load(tmp_path / "sine" / "sine.qmodel.npz")
    x = o.int8_input(np.random.default_rng(0), model.input.shape)
    np.testing.assert_array_equal(back.predict_int8(x), model.predict_int8(x))
    src = open(g.source).read()
    assert "do not edit" in src and codegen.model_hash(model) in src
    assert re.search(r"static const int8_t conv_2d_0_weight\[\d+\]\[\d+\]\[\d+\]\[\d+\] = \{", src)
    assert re.search(r"static const int8_t fully_connected_3_weight\[\d+\]\[\d+\] = \{", src)
    assert "static int8_t arena[" in src and "__attribute__((aligned(4)))" in src
    # the layer table has one row per op, in order
    rows = re.findall(r"^ \*\s+(\d+)  (\S+)", src, flags=re.M)
    assert [(int(i), n) for i, n in rows[:len(model.ops)]] == [(i, op.name) for i, op in enumerate(model.ops)]
    # the int8 path needs no library: one #include (the header), no calls into libc
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", src, flags=re.S)
    assert re.findall(r"#include .*", code) == ['#include "sine_model.h"']
    for banned in ("malloc", "memcpy", "printf", "float", "double"):
        assert banned not in code.split("#ifdef MINITINY_FLOAT_HELPERS")[0]
    # weights: one output channel per line, the counts match the tensor
    w = model.tensors[model.ops[3].inputs[1]].data
    block = src.split("fully_connected_3_weight")[1].split("};")[0]
    assert block.count("\n") - 1 == w.shape[0]


def test_manifest_describes_the_model(tmp_path):
    model = small_model()
    g = codegen.generate(model, tmp_path / "m")
    with open(os.path.join(g.dir, "small_manifest.json")) as f:
        info = json.load(f)
    assert info == g.manifest
    x, y = model.input, model.output
    assert info["name"] == "small" and info["model_hash"] == codegen.model_hash(model)
    assert info["input_shape"] == list(x.shape) and info["output_shape"] == list(y.shape)
    assert info["input_scale"] == float(x.scale) and info["input_zero_point"] == int(x.zero_point)
    assert info["output_scale"] == float(y.scale) and info["output_zero_point"] == int(y.zero_point)
    assert [l["kind"] for l in info["layers"]] == [op.kind for op in model.ops]
    assert [l["macs"] for l in info["layers"]] == [op.params["macs"] for op in model.ops]
    assert [l["output_shape"] for l in info["layers"]] == [list(model.tensors[op.outputs[0]].shape)
                                                          for op in model.ops]
    # weight bytes: the constants, plus 8 bytes per channel for per-channel multiplier/shift
    consts = sum(t.nbytes for t in model.tensors.values() if t.is_constant)
    assert info["weight_bytes"] == sum(l["weight_bytes"] for l in info["layers"]) >= consts
    assert info["arena_bytes"] >= info["arena_lower_bound"] >= info["max_layer_bytes"] > 0
    for key in ("generator", "plan", "arena_lower_bound"):
        assert key in info


def test_header_macros_match_the_manifest(tmp_path):
    model = small_model(name="Sine Model")
    g = codegen.generate(model, tmp_path / "m")
    assert g.name == "sine_model"
    header = open(g.header).read()
    macros = dict(re.findall(r"^#define (\w+)\s+(.+?)\s*(?:/\*.*)?$", header, flags=re.M))
    m = g.manifest
    assert macros["SINE_MODEL_INPUT_SIZE"] == str(int(np.prod(m["input_shape"])))
    assert macros["SINE_MODEL_OUTPUT_SIZE"] == str(int(np.prod(m["output_shape"])))
    assert macros["SINE_MODEL_ARENA_SIZE"] == str(m["arena_bytes"])
    assert np.float32(macros["SINE_MODEL_INPUT_SCALE"].rstrip("f")) == np.float32(model.input.scale)
    assert np.float32(macros["SINE_MODEL_OUTPUT_SCALE"].rstrip("f")) == np.float32(model.output.scale)
    assert int(macros["SINE_MODEL_INPUT_ZERO_POINT"].strip("()")) == int(model.input.zero_point)
    assert int(macros["SINE_MODEL_OUTPUT_ZERO_POINT"].strip("()")) == int(model.output.zero_point)
    assert "int sine_model_invoke(const int8_t *input, int8_t *output);" in header
    assert "#ifndef SINE_MODEL_MODEL_H" in header and "#include <stdint.h>" in header


def test_output_is_deterministic_and_the_hash_follows_the_weights(tmp_path):
    model = small_model()
    a = codegen.generate(model, tmp_path / "a")
    b = codegen.generate(model, tmp_path / "b")
    for fname in ("small_model.c", "small_model.h", "small_manifest.json"):
        assert open(os.path.join(a.dir, fname)).read() == open(os.path.join(b.dir, fname)).read()
    before = codegen.model_hash(model)
    w = model.tensors[model.ops[0].inputs[1]]
    w.data[0, 0, 0, 0] = -w.data[0, 0, 0, 0] if w.data[0, 0, 0, 0] else 1
    assert codegen.model_hash(model) != before


def test_a_failed_generate_leaves_nothing_behind(tmp_path, monkeypatch):
    model = small_model()
    target = tmp_path / "out"

    def broken_save(path):
        open(path, "wb").write(b"half a file")
        raise OSError("disk full")
    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        codegen.generate(model, target)
    assert os.listdir(tmp_path) == []                       # no directory, no temp files
    # an existing directory keeps its old files when a later generate fails
    monkeypatch.undo()
    codegen.generate(model, target)
    before = {f: open(target / f, "rb").read() for f in os.listdir(target)}
    other = small_model(seed=1)
    monkeypatch.setattr(other, "save", broken_save)
    with pytest.raises(OSError):
        codegen.generate(other, target)
    assert {f: open(target / f, "rb").read() for f in os.listdir(target)} == before
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_unsupported_op_kind_is_named(tmp_path):
    model = small_model()
    model.ops[1].kind = "gelu"               # bypasses QOp's own check, as a future kind would
    with pytest.raises(codegen.CodegenError) as e:
        codegen.generate(model, tmp_path / "m")
    assert "gelu" in str(e.value) and "fully_connected" in str(e.value) and "softmax" in str(e.value)
    assert not (tmp_path / "m").exists()


@requires_gcc
def test_models_without_computation(tmp_path):
    """No ops at all, or only a reshape: the C copies the input to the output."""
    from minitiny.quant.graph import QOp, QTensor
    x = QTensor("x", (5,), "int8", np.float32(0.1), np.int32(3))
    y = QTensor("y", (1, 5), "int8", np.float32(0.1), np.int32(3))
    xs = np.arange(-128, 127, 51, dtype=np.int8).reshape(1, 5)
    for model in (QModel("empty", {"x": x}, [], ["x"], ["x"]),
                  QModel("only reshape", {"x": x, "y": y}, [QOp("reshape", "r", ["x"], ["y"])], ["x"], ["y"])):
        fn = codegen.load(codegen.generate(model, tmp_path / model.name).dir)
        np.testing.assert_array_equal(fn(xs), model.predict_int8(xs))


def test_two_input_models_run_in_c(tmp_path):
    """An ADD of two model inputs: NAME_invoke(input0, input1, output) (tests/test_multi_io.py
    has the graphs with several inputs and outputs)."""
    model = o.single_op_model(0, "add", (10,))
    xs = [o.int8_input(np.random.default_rng(i), (10,), 9) for i in range(2)]
    fn = codegen.load(codegen.generate(model, tmp_path / "m").dir)
    np.testing.assert_array_equal(fn(xs), model.predict_int8(xs))


def test_generate_refuses_other_objects(tmp_path):
    with pytest.raises(codegen.CodegenError, match="QModel"):
        codegen.generate("not a model", tmp_path / "m")


# ---------------------------------------------------------------------------------------
# names that would break the C
# ---------------------------------------------------------------------------------------
@requires_gcc
def test_hostile_names_compile_and_stay_unique(tmp_path):
    model = renamed(small_model(), op_names=["int", "*/ evil(); /*", "dense 0", "dense_0", "tanh"],
                    tensor_names=["x */ #error", "a\\", "??/", "é", "out put", "//"],
                    model_name='my "model" */ #include <stdio.h>')
    g = codegen.generate(model, tmp_path / "m")
    assert g.name == "my_model_include_stdio_h"
    c_names = [layer["c_name"] for layer in g.manifest["layers"]]
    assert c_names == ["int_", "evil", "dense_0", "dense_0_2", "tanh_"]
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", open(g.source).read(), flags=re.S)   # comments out
    for injected in ("evil();", "#error", "<stdio.h>", "??/", "\\"):
        assert injected not in code
    fn = codegen.load(g.dir)                     # compiles with -Werror -pedantic
    x = o.int8_input(np.random.default_rng(1), model.input.shape, 16)
    np.testing.assert_array_equal(fn(x), model.predict_int8(x))


def test_layer_names_avoid_the_generated_identifiers(tmp_path):
    model = renamed(small_model(), op_names=["arena", "out_y", "MultiplyByQuantizedMultiplier",
                                             "small_invoke", "input"])
    g = codegen.generate(model, tmp_path / "m")
    c_names = [layer["c_name"] for layer in g.manifest["layers"]]
    assert c_names == ["arena_2", "out_y_2", "MultiplyByQuantizedMultiplier_2", "small_invoke_2", "input_2"]


# ---------------------------------------------------------------------------------------
# the loader: cache, errors
# ---------------------------------------------------------------------------------------
@requires_gcc
def test_compiles_once_per_source_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("MINITINY_CACHE", str(tmp_path / "cache"))
    model = small_model()
    codegen.generate(model, tmp_path / "a")
    codegen.generate(model, tmp_path / "b")               # the same sources elsewhere
    fn = codegen.load(tmp_path / "a")
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or real_run(cmd, **kw))
    fn2 = codegen.load(tmp_path / "b")
    assert calls == [] and fn2.path == fn.path
    codegen.load(tmp_path / "a", flags=["-O0"])           # other flags: another build
    assert len(calls) == 1 and len(os.listdir(tmp_path / "cache")) == 2


@requires_gcc
def test_callable_checks_its_input_and_null_pointers(tmp_path):
    model = small_model()
    fn = codegen.load(codegen.generate(model, tmp_path / "m").dir)
    x = o.int8_input(np.random.default_rng(2), model.input.shape, 3)
    np.testing.assert_array_equal(fn(x[0]), model.predict_int8(x)[0])      # one sample
    np.testing.assert_array_equal(fn(x.astype(np.int32)), model.predict_int8(x))
    with pytest.raises(ValueError, match="does not fit"):
        fn(np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="out of range"):
        fn(np.full((1,) + model.input.shape, 200))
    with pytest.raises(ValueError, match="int8"):
        fn(np.zeros((1,) + model.input.shape, np.float32))
    assert fn.invoke(fn.ffi.NULL, fn.ffi.NULL) == 1                        # SMALL_ERROR_NULL_POINTER
    buffer = np.zeros(int(np.prod(model.input.shape)), np.int8)
    assert fn.invoke(fn.ffi.from_buffer(buffer), fn.ffi.NULL) == 1


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no generated model"):
        codegen.load(tmp_path)
    codegen.generate(small_model(name="a"), tmp_path)
    codegen.generate(small_model(name="b"), tmp_path)
    with pytest.raises(ValueError, match="several models"):
        codegen.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="'c'"):
        codegen.load(tmp_path, name="c")


@requires_gcc
def test_compile_errors_carry_the_compiler_message(tmp_path):
    g = codegen.generate(small_model(), tmp_path / "m")
    with open(g.source, "a") as f:
        f.write("\nstatic int unused_thing;\n")
    with pytest.raises(codegen.CompileError, match="unused_thing"):
        codegen.load(g.dir)


# ---------------------------------------------------------------------------------------
# the generated C from a C program: two models, the layer hook, the float helpers
# ---------------------------------------------------------------------------------------
MAIN_C = r"""
#include <stdio.h>
#include "first_model.h"
#include "second_model.h"

static int hooks[64], n_hooks;
void record_hook(int layer_index);
void record_hook(int layer_index) { if (n_hooks < 64) hooks[n_hooks++] = layer_index; }

int main(void)
{
    int8_t in1[FIRST_INPUT_SIZE], out1[FIRST_OUTPUT_SIZE];
    int8_t in2[SECOND_INPUT_SIZE], out2[SECOND_OUTPUT_SIZE];
    int i;
    for (i = 0; i < FIRST_INPUT_SIZE; ++i) in1[i] = (int8_t)(i * 37 % 256 - 128);
    for (i = 0; i < SECOND_INPUT_SIZE; ++i) in2[i] = (int8_t)(i * 91 % 256 - 128);
    if (first_invoke(in1, out1) != FIRST_OK || second_invoke(in2, out2) != SECOND_OK) return 1;
    for (i = 0; i < FIRST_OUTPUT_SIZE; ++i) printf("%d ", out1[i]);
    printf("\n");
    for (i = 0; i < SECOND_OUTPUT_SIZE; ++i) printf("%d ", out2[i]);
    printf("\n");
    for (i = 0; i < n_hooks; ++i) printf("%d ", hooks[i]);
    printf("\n");
    return 0;
}
"""


@requires_gcc
def test_two_models_link_into_one_program_and_call_the_hook(tmp_path):
    first, second = small_model(3, name="first"), small_model(4, name="second")
    d = tmp_path / "both"
    codegen.generate(first, d)
    codegen.generate(second, d)
    (d / "main.c").write_text(MAIN_C)
    (d / "hook.h").write_text("void record_hook(int layer_index);\n")
    exe = d / "main"
    subprocess.run([GCC] + STRICT + ["-include", str(d / "hook.h"),
                                     "-DMINITINY_LAYER_HOOK(i)=record_hook(i)", "-I", str(d),
                                     str(d / "main.c"), str(d / "first_model.c"), str(d / "second_model.c"),
                                     "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    x1 = (np.arange(int(np.prod(first.input.shape))) * 37 % 256 - 128).astype(np.int8)
    x2 = (np.arange(int(np.prod(second.input.shape))) * 91 % 256 - 128).astype(np.int8)
    for line, model, x in ((lines[0], first, x1), (lines[1], second, x2)):
        assert [int(v) for v in line.split()] == model.predict_int8(x.reshape(model.input.shape)).ravel().tolist()
    n1, n2 = len(first.ops), len(second.ops)
    assert [int(v) for v in lines[2].split()] == list(range(n1 + 1)) + list(range(n2 + 1))


@requires_gcc
def test_float_helpers_match_qtensor_quantize_and_dequantize(tmp_path):
    model = small_model()
    fn = codegen.load(codegen.generate(model, tmp_path / "m").dir)
    rng = np.random.default_rng(5)
    n = int(np.prod(model.input.shape))
    s = float(model.input.scale)
    x = np.concatenate([rng.normal(0, 100 * s, 40 * n),
                        (rng.integers(-300, 300, 40 * n) + 0.5) * s,     # near ties
                        [np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0]])
    x = np.resize(x, (len(x) // n + 1) * n).astype(np.float32).reshape((-1,) + model.input.shape)
    np.testing.assert_array_equal(fn.quantize_input(x), model.quantize_input(x))
    q = np.resize(np.arange(-128, 128, dtype=np.int8), (4,) + model.output.shape)
    expected = model.dequantize_output(q)
    got = fn.dequantize_output(q)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.int32), expected.view(np.int32))
