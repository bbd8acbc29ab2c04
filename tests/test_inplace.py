"""Kernels that write over their own input (codegen/inplace.py) and the planner that uses them.

Oracles, none of them the formula under test:
  - a byte-level replay of TFLM's reference loops (out_y, out_x, channel, taps) on a
    labelled memory: every tap must still hold the input value it reads, at the shift
    inplace.py allows (and overlap must really happen: shifts derived by hand for 1x1 and
    3x3 'same' convolutions);
  - a replay of the whole plan: every op's inputs still hold their values when it runs;
  - the generated C, in place and plain, against the NumPy int8 reference bit for bit, on
    the host under ASan/UBSan (reference, scalar and, through the ACLE shim, DSP kernels)
    and on the emulated Cortex-M4.
Hypothesis draws the shapes that make in place tempting and wrong: stride 2, padding,
depth multipliers, residual branches that keep the input alive.
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
from dsp_host import host_dsp, inputs_for, requires_gcc, requires_qemu, run_on  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.codegen import generator, inplace, planner  # noqa: E402
from minitiny.geometry import out_size, pad_before  # noqa: E402
from minitiny.quant.tflite_read import from_tflite  # noqa: E402
from minitiny.testing.models import Builder  # noqa: E402

MLPERF = os.path.join(os.path.dirname(__file__), "data", "mlperf")
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"      # 10x the examples, larger images
SCALE = 10 if THOROUGH else 1


# ---------------------------------------------------------------------------------------
# one kernel: TFLM's loop order replayed byte by byte
# ---------------------------------------------------------------------------------------
def window_params(h, w, k, stride, padding, dilation=1):
    out_h = out_size(padding, h, k[0], stride[0], dilation)
    out_w = out_size(padding, w, k[1], stride[1], dilation)
    return dict(in_h=h, in_w=w, out_h=out_h, out_w=out_w, kernel_h=k[0], kernel_w=k[1],
                stride_h=stride[0], stride_w=stride[1], dilation_h=dilation, dilation_w=dilation,
                pad_h=pad_before(padding, h, k[0], stride[0], dilation),
                pad_w=pad_before(padding, w, k[1], stride[1], dilation))


def replay_reference(kind, p, in_c, out_c, shift):
    """Run the reference kernel's reads and writes with the output `shift` bytes after the
    input; return the first (pixel, channel) whose tap was already overwritten, or None."""
    base = max(0, -shift)                               # the input's address
    in_bytes = p["in_h"] * p["in_w"] * in_c
    size = max(base + in_bytes, base + shift + p["out_h"] * p["out_w"] * out_c)
    clobbered = np.zeros(size, bool)
    for out_y in range(p["out_h"]):
        for out_x in range(p["out_w"]):
            for channel in range(out_c):
                in_channels = range(in_c) if kind == "conv_2d" else [channel // (out_c // in_c)]
                for fy in range(p["kernel_h"]):
                    for fx in range(p["kernel_w"]):
                        y = out_y * p["stride_h"] - p["pad_h"] + fy * p.get("dilation_h", 1)
                        x = out_x * p["stride_w"] - p["pad_w"] + fx * p.get("dilation_w", 1)
                        if 0 <= y < p["in_h"] and 0 <= x < p["in_w"]:
                            for c in in_channels:
                                if clobbered[base + (y * p["in_w"] + x) * in_c + c]:
                                    return out_y, out_x, channel
                clobbered[base + shift + (out_y * p["out_w"] + out_x) * out_c + channel] = True
    return None


windows = st.tuples(st.integers(1, 7), st.integers(1, 7), st.sampled_from([(1, 1), (2, 2), (3, 3), (2, 3), (3, 1)]),
                    st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1), (3, 3)]), st.sampled_from(["same", "valid"]))


@given(st.sampled_from(["conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d"]), windows,
       st.integers(1, 4), st.integers(1, 5), st.sampled_from([1, 1, 2]))
@settings(max_examples=60 * SCALE)
def test_reference_kernels_never_read_what_they_overwrote(kind, window, in_c, factor, dilation):
    h, w, k, stride, padding = window
    dilation = dilation if kind in ("conv_2d", "depthwise_conv_2d") else 1    # the convolutions'
    span = [(n - 1) * dilation + 1 for n in k]
    assume(padding == "same" or (span[0] <= h and span[1] <= w))
    p = window_params(h, w, k, stride, padding, dilation)
    out_c = {"conv_2d": factor, "depthwise_conv_2d": in_c * factor}.get(kind, in_c)
    p["depth_multiplier"] = out_c // in_c
    for kernel in ("reference", "scalar"):              # the scalar kernels walk the same order
        shift = inplace.kernel_shift(kind, p, (h, w, in_c), (p["out_h"], p["out_w"], out_c), kernel)
        assert shift is not None and shift <= 0
        assert replay_reference(kind, p, in_c, out_c, shift) is None, (kind, p, shift)


@pytest.mark.parametrize("h, w, c", [(5, 4, 3), (6, 6, 8), (25, 5, 64)])
def test_shifts_derived_by_hand(h, w, c):
    small = h * w * c < 400                              # replayed in Python: small ones only
    # 1x1 conv, stride 1, c -> c channels: the kernel reads pixel q again after writing its
    # channel 0, so the output trails the input by exactly one pixel
    p = window_params(h, w, (1, 1), (1, 1), "same")
    assert inplace.kernel_shift("conv_2d", p, (h, w, c), (h, w, c), "reference") == -c
    if small:
        assert replay_reference("conv_2d", p, c, c, -c) is None
        assert replay_reference("conv_2d", p, c, c, 0) is not None       # channel 1 reads channel 0's write
    # 3x3 'same', stride 1: an inner pixel's window starts one row and one column back, and
    # its own output pixel is written whole: W + 2 pixels
    p = window_params(h, w, (3, 3), (1, 1), "same")
    for kind, out_c in (("conv_2d", c), ("depthwise_conv_2d", c)):
        assert inplace.kernel_shift(kind, dict(p, depth_multiplier=1), (h, w, c), (h, w, out_c),
                                    "reference") == -(w + 2) * c
    if small:                                            # a pixel closer, the window's corner is gone
        assert replay_reference("conv_2d", p, c, c, -(w + 2) * c) is None
        assert replay_reference("conv_2d", p, c, c, -(w + 1) * c) is not None


def test_dsp_depthwise_only_on_its_own_channel():
    # one band, one output channel per input channel: exactly over the input
    p = window_params(25, 5, (3, 3), (1, 1), "same")
    assert inplace.kernel_shift("depthwise_conv_2d", dict(p, depth_multiplier=1, in_c=64, out_c=64),
                                (25, 5, 64), (25, 5, 64), "dsp") == 0
    # a depth multiplier writes channel c * m + k over other channels' input: never
    assert inplace.kernel_shift("depthwise_conv_2d", dict(p, depth_multiplier=2, in_c=8, out_c=16),
                                (25, 5, 8), (25, 5, 16), "dsp") is None


# ---------------------------------------------------------------------------------------
# the planner: never aliases a tensor still read
# ---------------------------------------------------------------------------------------
def replay_plan(result, steps, sizes, inputs, outputs):
    """Every write stamps fresh values on its bytes; every read checks its bytes still hold
    the values written. An output may overlap only the input its InPlace names, at its shift."""
    mem = np.full(result.size, -1, np.int64)
    fresh = iter(range(1, 10 ** 9))
    stamp = {}

    def write(t):
        lo = result.offsets[t]
        assert 0 <= lo and lo + sizes[t] <= result.size, f"{t} outside the arena"
        stamp[t] = np.arange(sizes[t]) + next(fresh) * 10 ** 6
        mem[lo:lo + sizes[t]] = stamp[t]

    def intact(t, where):
        lo = result.offsets[t]
        assert np.array_equal(mem[lo:lo + sizes[t]], stamp[t]), f"{where}: {t!r} was overwritten"

    for t in inputs:
        write(t)
    for i, (name, kind, ins, out) in enumerate(steps):
        for t in ins:
            intact(t, f"step {i} ({name})")
        if kind in planner.ALIAS_KINDS:
            stamp[out] = stamp[ins[0]]
            intact(out, f"step {i} alias")
            continue
        o_lo = result.offsets[out]
        for t in ins:
            lo = result.offsets[t]
            if lo < o_lo + sizes[out] and o_lo < lo + sizes[t]:
                chosen = result.in_place.get(name)
                assert chosen is not None, f"step {i}: output overlaps {t!r}"
                on = chosen.input
                assert (lo, sizes[t]) == (result.offsets[on], sizes[on]), \
                    f"step {i}: output overlaps {t!r}, which is not {on!r} (nor a reshape of it)"
                assert o_lo - lo == chosen.shift, f"step {i}: shift {o_lo - lo}, not {chosen.shift}"
        write(out)
    for t in outputs:
        intact(t, "copy out")


@st.composite
def graphs_with_in_place(draw):
    """Random DAGs (skip connections keep inputs alive) where windowed ops offer random shifts."""
    n = draw(st.integers(1, 10))
    sizes, tensors, steps, offers = {"x": draw(st.integers(1, 64)) * 4}, ["x"], [], {}
    for i in range(n):
        kind = draw(st.sampled_from(["conv_2d", "conv_2d", "relu", "add", "reshape", "fully_connected"]))
        a = draw(st.sampled_from(tensors[-3:]))
        out = f"t{i}"
        if kind == "add":
            ins, sizes[out] = [a, draw(st.sampled_from([t for t in tensors if sizes[t] == sizes[a]]))], sizes[a]
        elif kind in ("conv_2d", "fully_connected"):
            ins, sizes[out] = [a], draw(st.integers(1, 64)) * 4
            if kind == "conv_2d" and draw(st.booleans()):
                offers[i] = planner.InPlace(a, -4 * draw(st.integers(0, 20)), "drawn")
        else:
            ins, sizes[out] = [a], sizes[a]
        steps.append((f"op{i}", kind, ins, out))
        tensors.append(out)
    outputs = draw(st.sampled_from([[tensors[-1]], tensors[-2:]])) if len(tensors) > 2 else [tensors[-1]]
    return steps, sizes, ["x"], outputs, offers


@given(graphs_with_in_place())
@settings(max_examples=150 * SCALE)
def test_planner_never_aliases_a_tensor_still_read(graph):
    steps, sizes, inputs, outputs, offers = graph
    result = planner.plan(steps, sizes, inputs, outputs, in_place=offers)
    replay_plan(result, steps, sizes, inputs, outputs)
    assert result.size >= result.lower_bound and result.size % 4 == 0
    for name, chosen in result.in_place.items():
        i = next(j for j, s in enumerate(steps) if s[0] == name)
        assert all(chosen.input not in s[2] for s in steps[i + 1:]) and chosen.input not in outputs


def test_an_op_with_several_outputs_gets_bytes_for_each():
    # x(40) -> split -> a(20), b(20); a dies at the relu, b lives on to the add
    steps = [("s", "split", ["x"], ["a", "b"]), ("r", "relu", ["a"], "c"), ("sum", "add", ["c", "b"], "y")]
    sizes = {"x": 40, "a": 20, "b": 20, "c": 20, "y": 20}
    result = planner.plan(steps, sizes, ["x"], ["y"])
    lo = sorted((result.offsets[t], result.offsets[t] + 20) for t in ("a", "b"))
    assert lo[0][1] <= lo[1][0] and result.layer_bytes[0] == 80 and result.lower_bound == 80
    for t in ("a", "b"):                              # neither overlaps the split's input
        assert result.offsets[t] + 20 <= result.offsets["x"] or result.offsets["x"] + 40 <= result.offsets[t]
    assert result.shared == {"r": ("in place", "a"), "sum": ("in place", "c")}


def test_in_place_used_only_where_it_lowers_the_peak():
    # x(400) -> conv -> a(400) -> conv -> b(4): the first conv sets the peak; in place there
    # (one 4-byte pixel apart) it needs 404 B; the second conv fits in 404 B without it
    steps = [("c0", "conv_2d", ["x"], "a"), ("c1", "conv_2d", ["a"], "b")]
    sizes = {"x": 400, "a": 400, "b": 4}
    offers = {0: planner.InPlace("x", -4, "one pixel"), 1: planner.InPlace("a", -4, "one pixel")}
    result = planner.plan(steps, sizes, ["x"], ["b"], in_place=offers)
    assert set(result.in_place) == {"c0"} and result.lower_bound == 404 and result.size == 404
    assert result.offsets["a"] == result.offsets["x"] - 4
    assert result.live_bytes == [404, 404]
    replay_plan(result, steps, sizes, ["x"], ["b"])


# ---------------------------------------------------------------------------------------
# the generated C: in place against plain against NumPy
# ---------------------------------------------------------------------------------------
@st.composite
def tempting_models(draw):
    """Chains of windowed ops (stride 2, padding, depth multipliers) with residual adds."""
    seed = draw(st.integers(0, 2 ** 16))
    big = 40 if THOROUGH else 10
    h, w = draw(st.integers(3, big)), draw(st.integers(3, big))
    b = Builder(seed, (h, w, draw(st.integers(1, 5 if big == 10 else 16))), "tempting")
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv_2d", "conv_2d", "depthwise_conv_2d", "max_pool_2d",
                                     "average_pool_2d", "residual"]))
        stride = draw(st.sampled_from([(1, 1), (1, 1), (2, 2), (1, 2)]))
        padding = draw(st.sampled_from(["same", "valid"]))
        hh, ww, c = b.t.shape
        k = draw(st.sampled_from([(1, 1), (3, 3), (2, 2)]))
        if padding == "valid" and (k[0] > hh or k[1] > ww):
            padding = "same"
        if kind == "conv_2d":
            b.conv(draw(st.integers(1, 9)), k, stride, padding, draw(st.sampled_from(["none", "relu"])))
        elif kind == "depthwise_conv_2d":
            b.depthwise(draw(st.sampled_from([1, 1, 2])), k, stride, padding, "relu6")
        elif kind == "residual":                         # the block's input stays alive for the add
            skip = b.cur
            b.conv(c, (3, 3), (1, 1), "same", "relu").depthwise(1, (3, 3), (1, 1), "same")
            b.add(skip, "relu")
        elif min(hh, ww) >= 2:
            b.pool(kind, (2, 2), stride, padding)
    return b.model()


def both_schedules(model, run):
    """run(in_place) for the plain schedule and the in-place one; both must match NumPy."""
    run(in_place=False)
    run(in_place=True)


@requires_gcc
@given(tempting_models(), st.sampled_from(["reference", "scalar"]))
@settings(max_examples=12 * SCALE)
def test_in_place_c_equals_plain_and_numpy_under_asan(model, variant):
    x = inputs_for(model, 0, n=3)
    both_schedules(model, lambda in_place: host_dsp(model, x, [], sanitize=True, variant=variant,
                                                    in_place=in_place))


@requires_gcc
@given(tempting_models())
@settings(max_examples=10 * SCALE)
def test_in_place_dsp_c_on_the_host_under_asan(shim_flags, model):
    x = inputs_for(model, 1, n=3)
    both_schedules(model, lambda in_place: host_dsp(model, x, shim_flags, sanitize=True, variant="dsp",
                                                    in_place=in_place))


def mlperf(name):
    return from_tflite(open(os.path.join(MLPERF, name + ".tflite"), "rb").read(), name=name)


@requires_gcc
@pytest.mark.parametrize("variant", ["reference", "scalar"])
def test_keyword_spotting_in_place_on_the_host(variant):
    model = mlperf("kws_ds_cnn")
    plain = generator.build_context(model, "m", variant, in_place=False)["arena"]
    fast = generator.build_context(model, "m", variant)["arena"]
    assert len(fast.in_place) >= 8 and fast.size < 0.7 * plain.size     # every conv of the chain
    host_dsp(model, inputs_for(model, 2, n=2), [], sanitize=True, variant=variant)


@requires_gcc
def test_visual_wake_words_in_place_on_the_host():
    # where users go: a 96x96x3 image through MobileNetV1, the arena planned in place, ASan on
    model = mlperf("vww_mobilenet_v1")
    g = generator.build_context(model, "m", "reference")["arena"]
    assert g.size < 0.75 * generator.build_context(model, "m", "reference", in_place=False)["arena"].size
    host_dsp(model, inputs_for(model, 4, n=1), [], sanitize=True, variant="reference")


@requires_qemu
@pytest.mark.parametrize("name", ["kws_ds_cnn", "micro_speech"])
def test_mlperf_models_in_place_on_the_m4(name, tmp_path):
    model = mlperf(name)
    plain = run_on(model, "dsp", "cortex-m4", tmp_path, n=2, in_place=False)
    fast = run_on(model, "dsp", "cortex-m4", tmp_path, n=2)
    np.testing.assert_array_equal(fast.outputs, plain.outputs)
    assert codegen.generate(model, tmp_path / "g", variant="dsp").manifest["arena_bytes"] < \
        codegen.generate(model, tmp_path / "p", variant="dsp", in_place=False).manifest["arena_bytes"]


# ---------------------------------------------------------------------------------------
# the planner explains itself: header comment, manifest, HTML report
# ---------------------------------------------------------------------------------------
def test_the_plan_says_why_the_peak_is_what_it_is(tmp_path):
    from minitiny.reporting import collect, render_html
    model = mlperf("micro_speech")
    g = codegen.generate(model, tmp_path / "c", name="speech", variant="dsp")
    steps, m = g.manifest["steps"], g.manifest
    # one row per step -1..n; the bytes alive at each step add up from the plan's own rows
    assert [s["step"] for s in steps] == list(range(-1, len(model.ops) + 1))
    for s in steps:
        spans = sorted((r["offset"], r["offset"] + r["size"]) for r in m["plan"] if r["first"] <= s["step"] <= r["last"])
        covered = np.zeros(m["arena_bytes"], bool)
        for lo, hi in spans:
            covered[lo:hi] = True
        assert s["live_bytes"] == covered.sum()          # buffers written in place counted once
    peak = [s for s in steps if s["peak"]]
    assert peak and all(s["live_bytes"] == m["arena_lower_bound"] for s in peak)
    # the conv runs in place over the input, and says why, in the manifest and the C
    conv = next(s for s in steps if s["op"] == model.ops[0].name)
    assert conv["in_place"]["input"] == model.inputs[0] and conv["in_place"]["why"]
    assert set(conv["tensors"]) == {model.inputs[0], model.ops[0].outputs[0], f"{model.ops[0].name} scratch"}
    src = open(g.source).read()
    assert f"Why the peak is {m['arena_lower_bound']} bytes" in src
    assert f"in place over {model.inputs[0]}: {conv['in_place']['why']}" in src
    assert src.count("<- peak") == len(peak)
    # the HTML report: the table, the peak shaded in the timeline
    page = render_html(collect(str(tmp_path / "c"), run_firmware=False), with_plots=False)
    assert f"Why the peak is {m['arena_lower_bound']:,} B" in page
    assert conv["in_place"]["why"] in page and page.count('fill="#f4d35e"') == len(peak)
