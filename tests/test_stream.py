"""Streamed (row-band) execution of convolution chains (codegen/stream.py) and --ram-budget.

Oracles, none of them the schedule under test:
  - the plain NumPy int8 reference (QModel.run_ops computes every tensor whole): the stream's
    actions replayed in NumPy, window by window, must give its output bit for bit, on
    window buffers that start full of garbage (a row read before it was written shows);
  - the generated C, streamed, against the NumPy reference on the host under ASan/UBSan
    (reference, scalar and, through the ACLE shim, DSP kernels: a band reading a row outside
    its window is an out-of-bounds read of the arena or a wrong value) and on the emulated
    Cortex-M4 (ResNet-8 at half of TFLite Micro's arena);
  - the planner's own rule: an unreachable budget names the smallest arena it reached, and
    that arena then generates.
Hypothesis draws the chains that make streaming tempting and wrong: stride 2, 'same' and
'valid' padding, dilation, depth multipliers, residual branches that keep the input alive,
pools (whose padded taps do not count), and heights no band divides.
"""
import json
import os
import re
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
from dsp_host import host_dsp, inputs_for, requires_gcc, requires_qemu, run_on  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.codegen import generator, stream  # noqa: E402
from minitiny.codegen.output import CodegenError  # noqa: E402
from minitiny.quant.tflite_read import from_tflite  # noqa: E402
from minitiny.testing.models import Builder  # noqa: E402

MLPERF = os.path.join(os.path.dirname(__file__), "data", "mlperf")
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
SCALE = 10 if THOROUGH else 1


def mlperf(name):
    return from_tflite(open(os.path.join(MLPERF, name + ".tflite"), "rb").read(), name=name)


@st.composite
def chains(draw):
    """Chains of convolutions with residual blocks: (model, the ops that may stream)."""
    seed = draw(st.integers(0, 2 ** 16))
    big = 48 if THOROUGH else 16
    h, w = draw(st.integers(4, big)), draw(st.integers(3, 12))
    b = Builder(seed, (h, w, draw(st.integers(1, 6))), "chain")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv_2d", "depthwise_conv_2d", "residual", "relu", "pool"]))
        hh, ww, c = b.t.shape
        stride = draw(st.sampled_from([(1, 1), (1, 1), (2, 2), (2, 1)]))
        k = draw(st.sampled_from([(1, 1), (3, 3), (2, 2), (5, 3)]))
        dilation = draw(st.sampled_from([(1, 1), (1, 1), (2, 2)]))
        if dilation != (1, 1):
            stride = (1, 1)                                # TFLite: no stride with dilation
        padding = draw(st.sampled_from(["same", "valid"]))
        if padding == "valid" and ((k[0] - 1) * dilation[0] + 1 > hh or (k[1] - 1) * dilation[1] + 1 > ww):
            padding = "same"
        if kind == "conv_2d":
            b.conv(draw(st.integers(1, 8)), k, stride, padding, draw(st.sampled_from(["none", "relu"])),
                   dilation=dilation)
        elif kind == "depthwise_conv_2d":
            b.depthwise(draw(st.sampled_from([1, 1, 2])), k, stride, padding, "relu6", dilation=dilation)
        elif kind == "residual":                            # the block's input stays alive for the add
            skip = b.cur
            b.conv(c, (3, 3), (1, 1), "same", "relu").depthwise(1, (3, 3), (1, 1), "same")
            b.add(skip, "relu")
        elif kind == "pool" and min(hh, ww) >= 2:                # 'same' at an odd height: padded
            b.pool(draw(st.sampled_from(["max_pool_2d", "average_pool_2d"])), (2, 2), (2, 2), padding)
        else:
            b.relu()
    return b.model()


def runs(model):
    """Every run of ops that builds as a stream, with every band that divides its rows."""
    n = len(model.ops)
    for a in range(n):
        for b in range(a, min(n, a + stream.MAX_OPS)):
            for a2, b2, band in stream.candidates(model, b):
                if (a2, b2) == (a, b):
                    try:
                        yield stream.build(model, list(range(a, b + 1)), band)
                    except stream.StreamError:
                        pass


@given(chains(), st.integers(0, 2 ** 16))
@settings(max_examples=30 * SCALE)
def test_streamed_schedule_equals_the_plain_one_in_numpy(model, seed):
    x = inputs_for(model, seed, n=1)
    values = model.run_ops({model.inputs[0]: x})
    built = list(runs(model))
    for s in built:
        got = stream.replay(model, s, {t: values[t][0] for t in s.inputs})
        np.testing.assert_array_equal(got, values[s.output][0], err_msg=f"ops {s.ops} band {s.band}")
        assert s.extra_macs == 0 and all(rows >= 1 for rows in s.windows.values())


def test_residual_block_streams_over_its_input():
    # ResNet-8's first block: the add writes each row over the block input it has read for
    # the last time; windows of a few rows instead of two 16 KB tensors
    model = mlperf("ic_resnet8")
    s = stream.build(model, [1, 2, 3], 1)
    assert s.share == model.ops[1].inputs[0]
    assert sum(s.windows.values()) <= 8                          # rows, of 32
    values = model.run_ops({model.inputs[0]: inputs_for(model, 3, n=1)})
    np.testing.assert_array_equal(stream.replay(model, s, {t: values[t][0] for t in s.inputs}),
                                  values[s.output][0])


def test_what_cannot_stream_is_refused_by_name():
    model = mlperf("ic_resnet8")
    with pytest.raises(stream.StreamError, match="read after the stream"):
        stream.build(model, [0, 1], 4)                            # x is read again by the add
    with pytest.raises(stream.StreamError, match="does not divide"):
        stream.build(model, [1, 2, 3], 5)
    with pytest.raises(stream.StreamError, match="flatten_2_1.: its tensors are not all int8 \\(H, W, C\\)"):
        stream.build(model, [12, 13, 14], 1)


def test_a_pool_streams_only_where_no_window_is_padded():
    # 'same' 2x2 pooling of 7 rows pads the last window: its max and count leave the padded
    # row out, which a zero-point row would not
    for h, padding, ok in [(8, "same", True), (7, "same", False), (7, "valid", True)]:
        b = Builder(0, (h, 5, 3), "pool")
        model = b.conv(4, (3, 3), (1, 1), "same").pool("average_pool_2d", (2, 2), (2, 2), padding).model()
        if ok:
            s = stream.build(model, [0, 1], 1)
            values = model.run_ops({model.inputs[0]: inputs_for(model, 5, n=1)})
            np.testing.assert_array_equal(stream.replay(model, s, {t: values[t][0] for t in s.inputs}),
                                          values[s.output][0])
        else:
            with pytest.raises(stream.StreamError, match="a pool whose windows reach past the image"):
                stream.build(model, [0, 1], 1)


def budget_or_smallest(model, budget, **options):
    """Generate's context under `budget`; when it cannot be met, the error must name the
    smallest arena reached, and that arena must then generate."""
    try:
        return generator.build_context(model, "m", ram_budget=budget, **options)
    except CodegenError as e:
        reached = int(re.search(r"the smallest arena reachable is (\d+) B", str(e)).group(1))
        assert reached > budget
        ctx = generator.build_context(model, "m", ram_budget=reached, **options)
        assert ctx["arena"].size <= reached
        return ctx


@given(chains(), st.sampled_from(["reference", "dsp"]))
@settings(max_examples=20 * SCALE)
def test_a_budget_reaches_the_arena_its_error_names(model, variant):
    plain = generator.build_context(model, "m", variant)["arena"].size
    budget_or_smallest(model, plain - 4, variant=variant)


def one_stream(model, data):
    """One of the model's streams, drawn: [(first op, last op, band)] for generate."""
    built = list(runs(model))
    assume(built)
    s = data.draw(st.sampled_from(built))
    return [(s.ops[0], s.ops[-1], s.band)]


@requires_gcc
@given(chains(), st.sampled_from(["reference", "scalar"]), st.data())
@settings(max_examples=10 * SCALE)
def test_streamed_c_equals_numpy_under_asan(model, variant, data):
    host_dsp(model, inputs_for(model, 0, n=2), [], sanitize=True, variant=variant,
             streams=one_stream(model, data))


@requires_gcc
@given(chains(), st.data())
@settings(max_examples=8 * SCALE)
def test_streamed_dsp_c_on_the_host_under_asan(shim_flags, model, data):
    host_dsp(model, inputs_for(model, 1, n=2), shim_flags, sanitize=True, variant="dsp",
             streams=one_stream(model, data))


@requires_gcc
@pytest.mark.parametrize("variant", ["reference", "scalar"])
def test_resnet8_at_half_of_tflms_arena_on_the_host(variant):
    # TFLM's minimum arena for this file is 56,528 B (bench/arena.py measures it by bisection)
    model = mlperf("ic_resnet8")
    ctx = generator.build_context(model, "m", variant, ram_budget=56528 // 2)
    assert ctx["streams"] and ctx["arena"].size <= 56528 // 2
    host_dsp(model, inputs_for(model, 2, n=2), [], sanitize=True, variant=variant, ram_budget=56528 // 2)


@requires_qemu
def test_resnet8_streamed_on_the_m4(tmp_path):
    model = mlperf("ic_resnet8")
    plain = run_on(model, "dsp", "cortex-m4", tmp_path, n=2)
    streamed = run_on(model, "dsp", "cortex-m4", tmp_path, n=2, ram_budget=56528 // 2)
    np.testing.assert_array_equal(streamed.outputs, plain.outputs)
    assert streamed.instructions <= 1.05 * plain.instructions     # the copies cost little


@requires_qemu
def test_micro_speech_dsp_at_half_of_tflms_arena_on_the_m4(tmp_path):
    # TFLM's minimum arena 10,112 B; the DSP conv's 2,296 B of scratch sets the peak and no
    # stream removes it: under the budget that layer runs the scalar kernel (no scratch)
    model = mlperf("micro_speech")
    g = codegen.generate(model, tmp_path / "c", variant="dsp", ram_budget=10112 // 2)
    assert g.manifest["arena_bytes"] <= 10112 // 2
    assert [layer.get("scalar_for_ram", False) for layer in g.manifest["layers"]] == [True, False, False, False]
    assert "computed with the scalar kernel" in open(g.source).read()
    run_on(model, "dsp", "cortex-m4", tmp_path, n=2, ram_budget=10112 // 2)


@pytest.mark.parametrize("budget", [0, -1, 2.5, "1k", True])
def test_a_budget_that_is_no_byte_count_is_refused(budget, tmp_path):
    with pytest.raises(CodegenError, match=r"ram_budget=.*positive number of bytes"):
        codegen.generate(mlperf("micro_speech"), tmp_path / "c", ram_budget=budget)


def test_a_float_model_refuses_a_budget(tmp_path):
    from minitiny import keras
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(CodegenError, match="ram_budget= and streams= plan the arena of an int8 QModel"):
        codegen.generate(model, tmp_path / "c", ram_budget=1000)
    assert not (tmp_path / "c").exists()


def test_an_unreachable_budget_names_the_smallest_arena_and_writes_nothing(tmp_path):
    with pytest.raises(CodegenError, match=r"ram_budget=1000 B cannot be met: the smallest arena "
                                           r"reachable is \d+ B \(peak \d+ B at op \d+ "):
        codegen.generate(mlperf("ic_resnet8"), tmp_path / "c", ram_budget=1000)
    assert not (tmp_path / "c").exists()


def test_a_budget_already_met_streams_nothing():
    model = mlperf("ic_resnet8")
    plain = generator.build_context(model, "m")
    met = generator.build_context(model, "m", ram_budget=plain["arena"].size)
    assert met["streams"] == [] and met["arena"].size == plain["arena"].size


def test_the_plan_explains_the_stream(tmp_path):
    model = mlperf("ic_resnet8")
    g = codegen.generate(model, tmp_path / "c", name="rn", ram_budget=28000)
    m = g.manifest
    assert len(m["streams"]) >= 1 and m["arena_bytes"] <= 28000
    s = m["streams"][0]
    assert s["extra_macs"] == 0 and s["calls"] > len(s["ops"])
    assert m["macs"] == sum(op.params["macs"] for op in model.ops)     # the MACs of the plain schedule
    rows = [r for r in m["steps"] if r["streamed"]]
    assert {r["op"] for r in rows} == set(s["ops"])
    # every window buffer is alive at every streamed step
    for r in rows:
        assert all(t in r["tensors"] or t + " window" in r["tensors"] for t in s["windows"])
    src = open(g.source).read()
    assert "streamed in bands of" in src and "stream_copy(" in src
    assert json.loads(open(os.path.join(g.dir, "rn_manifest.json")).read())["streams"] == m["streams"]


def test_cli_ram_budget(tmp_path, capsys):
    from minitiny.cli import main
    path = os.path.join(MLPERF, "ic_resnet8.tflite")
    assert main(["import", path, "--out", str(tmp_path / "c"), "--ram-budget", "28000"]) == 0
    assert "streamed:" in capsys.readouterr().out
    assert main(["import", path, "--out", str(tmp_path / "d"), "--ram-budget", "1000"]) != 0
    assert "smallest arena reachable" in capsys.readouterr().err


def test_the_report_shows_the_stream(tmp_path):
    from minitiny.reporting import collect, render_html
    model = mlperf("ic_resnet8")
    g = codegen.generate(model, tmp_path / "c", name="rn", variant="reference", ram_budget=28000)
    m = g.manifest
    # the bytes alive at each step add up from the plan's own rows, windows included
    for s in m["steps"]:
        covered = np.zeros(m["arena_bytes"], bool)
        for r in m["plan"]:
            if r["first"] <= s["step"] <= r["last"]:
                covered[r["offset"]:r["offset"] + r["size"]] = True
        assert s["live_bytes"] == covered.sum()
    page = render_html(collect(str(tmp_path / "c"), run_firmware=False), with_plots=False)
    streamed = [s for s in m["steps"] if s["streamed"]]
    assert streamed and streamed[0]["streamed"] in page and "(streamed)" in page
