"""The DSP conv_2d kernel's int16 plane: layers whose in_channel is not a multiple of 4
(first layers: grayscale, RGB, spectrograms), and layers whose windows overlap (kernels
larger than 1x1) when the plane fits. Its planes and bands against a naive convolution, and
the generated C against the NumPy int8 reference on the host (ACLE shim, sanitizers) and
on QEMU's Cortex-M4. Shared set-up: tests/dsp_host.py.
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402
from dsp_host import (host_dsp, inputs_for, requires_gcc, requires_qemu, run_on,  # noqa: E402
                      with_real_multiplier)

from minitiny.codegen import dsp, generator  # noqa: E402


# ---------------------------------------------------------------------------------------
# ---- conv small in_channel ----
# conv_2d with in_channel not a multiple of 4 (first layers: grayscale, RGB, spectrograms):
# the input converted once per band to an int16 plane, each filter row of the weights padded
# to whole blocks of 4 (codegen/dsp.py conv_rows, conv_plane).
# ---------------------------------------------------------------------------------------
SMALL_IN_C = [1, 2, 3, 5, 6, 7]
SMALL_KERNELS = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (10, 4), (2, 3), (3, 1)]


def small_conv(seed, h, w, in_c, kernel, stride, padding, **cfg):
    if padding == "valid":
        kernel = (min(kernel[0], h), min(kernel[1], w))
    return o.single_op_model(seed, "conv_2d", (h, w, in_c), kernel=kernel, stride=stride, padding=padding, **cfg)


def conv_dsp_context(model, dsp_weights="int8"):
    return generator.build_context(model, "m", variant="dsp", dsp_weights=dsp_weights)["layers"][0]["dsp"]


@settings(max_examples=40)
@given(st.sampled_from(SMALL_IN_C + [4, 8]), st.sampled_from(SMALL_KERNELS), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(["same", "valid"]), st.integers(1, 30), st.integers(1, 30), o.seeds)
def test_small_in_c_plane_windows_give_the_conv_sums(in_c, kernel, sh, sw, padding, h, w, seed):
    """A NumPy model of what the kernel reads: the plane of each band as conv_plane lays it
    out (x - Z, 0 in the padding), each window's kh rows of L2 plane values (L = kw * in_c
    rounded up to even) and zeros up to K4, times conv_rows' weights, must give the convolution's sums, summed naively over the taps
    inside the image. Every read stays inside the plane, the bands cover every output row,
    and the plane stays within CONV_PLANE_BYTES unless one pass's rows do not fit."""
    model = small_conv(seed, h, w, in_c, kernel, (sh, sw), padding, out_c=3)
    op = model.ops[0]
    p, weight = op.params, model.tensors[op.inputs[1]].data
    if not dsp.conv_uses_plane(p):          # in_c 4 or 8: 1x1, or a plane too big: the im2col columns
        _, rows, cols, _ = dsp.conv_plane(p)
        assert in_c % 4 == 0 and (p["kernel_h"] * p["kernel_w"] == 1 or rows * cols * 2 > dsp.CONV_PLANE_BYTES)
        return
    kh, kw = weight.shape[1:3]
    band, rows, cols, copy = dsp.conv_plane(p)
    l2 = kw * in_c + (kw * in_c) % 2
    rows_w = dsp.conv_rows(weight).astype(np.int64)                   # (out_c, K4)
    k4 = rows_w.shape[1]
    assert k4 == dsp.conv_k4(p) and k4 % 4 == 0 and 0 <= k4 - kh * l2 < 4
    assert p["pad_w"] * in_c + copy <= cols and cols % 2 == 0
    least = min(p["out_h"], -(-dsp.CONV_PIXELS // p["out_w"]))
    assert band >= least and (rows * cols * 2 <= dsp.CONV_PLANE_BYTES or band == least)
    assert band * p["out_w"] >= min(dsp.CONV_PIXELS, p["out_h"] * p["out_w"])   # a pass fits a band
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(h, w, in_c)).astype(np.int64)
    z = -int(p["input_offset"])
    covered = set()
    for start in range(0, p["out_h"], band):
        top = start if start + band <= p["out_h"] else p["out_h"] - band
        plane = np.zeros((rows, cols), np.int64)
        for r in range(rows):
            in_y = top * sh - p["pad_h"] + r
            if 0 <= in_y < h:
                start_col = p["pad_w"] * in_c
                plane[r, start_col:start_col + copy] = x[in_y].reshape(-1)[:copy] - z
        for oy in range(top, top + band):
            covered.add(oy)
            for ox in range(p["out_w"]):
                r0, c0 = (oy - top) * sh, ox * sw * in_c
                assert r0 + kh <= rows and c0 + l2 <= cols                  # inside the plane
                column = np.concatenate([plane[r0 + fy, c0:c0 + l2] for fy in range(kh)] + [np.zeros(k4 - kh * l2)])
                want = np.zeros(weight.shape[0], np.int64)
                for fy in range(kh):
                    for fx in range(kw):
                        iy, ix = oy * sh - p["pad_h"] + fy, ox * sw - p["pad_w"] + fx
                        if 0 <= iy < h and 0 <= ix < w:
                            want += weight[:, fy, fx, :].astype(np.int64) @ (x[iy, ix] - z)
                np.testing.assert_array_equal(rows_w @ column, want)
    assert covered == set(range(p["out_h"]))


def test_small_in_c_scratch_and_flash():
    """The scratch is the 4 columns and the plane; the benchmark's first layers fit one band
    (28x28x1 3x3 'same': 30 rows of 32 values; 49x10x1 10x4 stride 2 'same': 58 rows of 12);
    a conv_plane on an image too wide for CONV_PLANE_BYTES takes bands of one output row;
    flash: K4 weights per output channel. Sizes worked out by hand."""
    cnn = small_conv(0, 28, 28, 1, (3, 3), (1, 1), "same", out_c=8).ops[0].params
    assert dsp.conv_plane(cnn) == (28, 30, 32, 28)
    assert dsp.scratch_bytes("conv_2d", cnn) == 4 * 12 * 2 + 30 * 32 * 2
    assert dsp.weight_bytes("conv_2d", cnn) == 8 * 12 and dsp.weight_bytes("conv_2d", cnn, "int16") == 8 * 24
    ds = small_conv(0, 49, 10, 1, (10, 4), (2, 2), "same", out_c=64).ops[0].params
    band, rows, cols, copy = dsp.conv_plane(ds)
    assert (band, rows, cols, copy) == (25, 58, 12, 10)             # out_w 5: (5 - 1) * 2 + 4 columns
    rgb = small_conv(0, 9, 9, 3, (5, 5), (1, 1), "same", out_c=4).ops[0].params   # L = 15 -> 16
    assert dsp.conv_k4(rgb) == 5 * 16 and dsp.weight_bytes("conv_2d", rgb) == 4 * 80
    gray = small_conv(0, 9, 9, 1, (5, 5), (1, 1), "same", out_c=4).ops[0].params  # 5 x 6 = 30 -> 32
    assert dsp.conv_k4(gray) == 32 and dsp.conv_plane(gray)[2] == 8 * 1 + 6 == 14
    wide = small_conv(0, 4, 2000, 1, (3, 3), (1, 1), "same", out_c=4).ops[0].params   # 3 rows > 2 KB
    assert dsp.conv_plane(wide)[:2] == (1, 3)


@requires_gcc
@settings(max_examples=20)
@given(st.sampled_from(SMALL_IN_C), st.sampled_from(SMALL_KERNELS), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(["same", "valid"]), st.integers(1, 12), st.integers(1, 12), st.booleans(),
       st.integers(1, 9), o.seeds)
def test_small_in_c_convs_on_the_host(shim_flags, in_c, kernel, sh, sw, padding, h, w, per_channel, out_c, seed):
    """Random shapes, both weight widths, per-tensor or per-channel, the doubled epilogue or
    (every fourth example, a multiplier >= 1/2) the general one; every third sanitized."""
    model = small_conv(seed, h, w, in_c, kernel, (sh, sw), padding, out_c=out_c, per_channel=per_channel,
                       activation=["none", "relu", "relu6"][seed % 3])
    if seed % 4 == 0:
        model = with_real_multiplier(model, 3.0)
        assert conv_dsp_context(model)["rounding"] is None        # not requantize_doubled_to_int8
    for width in ("int8", "int16"):
        host_dsp(model, inputs_for(model, seed % 1000, 4), shim_flags, sanitize=seed % 3 == 0, dsp_weights=width)


def small_in_c_models(seed):
    """Tiny images (fewer pixels than a pass), several bands, both epilogues."""
    models = []
    for i, in_c in enumerate(SMALL_IN_C):
        per_channel = i % 2 == 0
        models += [small_conv(seed + i, 1, 1, in_c, (3, 3), (1, 1), "same", out_c=3, per_channel=per_channel),
                   small_conv(seed + i, 2, 3, in_c, (2, 3), (1, 1), "valid", out_c=5, per_channel=per_channel),
                   small_conv(seed + i, 2, 3, in_c, (10, 4), (2, 1), "same", out_c=2, per_channel=not per_channel)]
    models += [small_conv(seed, 40, 30, 3, (3, 3), (1, 1), "same", out_c=4),                   # bands
               small_conv(seed, 99, 40, 1, (10, 4), (2, 2), "same", out_c=6, per_channel=False),
               small_conv(seed, 45, 37, 2, (5, 5), (2, 1), "valid", out_c=3),
               with_real_multiplier(small_conv(seed, 33, 17, 5, (4, 4), (1, 2), "same", out_c=5), 2.5),
               with_real_multiplier(small_conv(seed, 5, 4, 6, (3, 3), (1, 1), "same", out_c=3,
                                               per_channel=False), 0.8)]
    return models


def test_small_in_c_models_take_the_paths_they_name():
    models = small_in_c_models(0)
    ctxs = [conv_dsp_context(m) for m in models]
    assert all(m.ops[0].params["out_h"] * m.ops[0].params["out_w"] < dsp.CONV_PIXELS for m in models[:18])
    assert all(c["band"] < m.ops[0].params["out_h"] for c, m in zip(ctxs[18:22], models[18:22]))
    assert [c["doubled"] for c in ctxs[18:]] == [True, True, True, False, False]


@requires_gcc
@pytest.mark.parametrize("width", ["int8", "int16"])
def test_small_in_c_edge_models_on_the_host(shim_flags, width):
    for i, model in enumerate(small_in_c_models(1)):
        host_dsp(model, inputs_for(model, i, 3), shim_flags, sanitize=i % 2 == 0, dsp_weights=width)


@requires_qemu
def test_small_in_c_models_on_the_m4(tmp_path):
    """The real instructions: unaligned LDR/STR on the plane, the bands, tiny images."""
    models = small_in_c_models(2)
    for i, model in enumerate(models[::3] + models[18:]):
        run_on(model, "dsp", "cortex-m4", tmp_path, seed=i, n=2)


# ---------------------------------------------------------------------------------------
# in_channel a multiple of 4: the plane where the windows overlap and it fits, else im2col
# ---------------------------------------------------------------------------------------
def plane_choice_models(seed):
    """(model, takes the plane, copies whole blocks with LDRD/STRD): 3x3 on 8 channels (the
    benchmark cnn's second conv), 1x1 on 4 and 3x3 on an image too wide for the plane (the
    im2col columns), 2x2 on 6 channels (rows of 12 values: whole blocks), 3x3 on 6 with
    stride 2 (rows of 18: pairs)."""
    return [(small_conv(seed, 14, 14, 8, (3, 3), (1, 1), "same", out_c=16), True, True),
            (small_conv(seed, 6, 7, 4, (1, 1), (1, 1), "valid", out_c=5), False, False),
            (small_conv(seed, 3, 70, 8, (3, 3), (1, 1), "same", out_c=3, per_channel=False), False, False),
            (small_conv(seed, 9, 5, 6, (2, 2), (2, 1), "valid", out_c=7), True, True),
            (with_real_multiplier(small_conv(seed, 7, 6, 6, (3, 3), (1, 2), "same", out_c=4), 2.0), True, False)]


def test_the_plane_is_taken_where_windows_overlap_and_it_fits():
    for model, plane, blocks in plane_choice_models(0):
        p = model.ops[0].params
        assert dsp.conv_uses_plane(p) == plane
        used = dsp.helpers("conv_2d", p, fast=True)
        assert ("write_2_words_at" in used) == blocks == dsp.conv_block_copies(p)
        assert ("im2col_copy_pairs" in used) == (plane and not blocks)
        assert ("im2col_copy_blocks" in used) == (not plane)
        if plane:
            _, rows, cols, _ = dsp.conv_plane(p)
            assert rows * cols * 2 <= dsp.CONV_PLANE_BYTES or p["in_c"] % 4


def test_bands_are_chosen_to_waste_no_pass():
    """The benchmark cnn's 14x14x8 conv: a plane of 5 rows of 14 pixels would leave a half
    pass per band (70 pixels), 2 rows (28 pixels, 7 whole passes, 4 plane rows) waste none."""
    p = small_conv(0, 14, 14, 8, (3, 3), (1, 1), "same", out_c=16).ops[0].params
    band, rows, cols, copy = dsp.conv_plane(p)
    assert (band * p["out_w"]) % dsp.CONV_PIXELS == 0 and p["out_h"] % band == 0
    assert cols == 13 * 8 + 24 and copy == 14 * 8 and rows == band + 2


@requires_gcc
@pytest.mark.parametrize("width", ["int8", "int16"])
def test_plane_choice_models_on_the_host(shim_flags, width):
    for i, (model, _, _) in enumerate(plane_choice_models(3)):
        host_dsp(model, inputs_for(model, i, 3), shim_flags, sanitize=i % 2 == 0, dsp_weights=width)


@requires_qemu
def test_plane_choice_models_on_the_m4(tmp_path):
    """LDR of unaligned plane words and the block copies, on the real instruction set."""
    for i, (model, _, _) in enumerate(plane_choice_models(4)):
        run_on(model, "dsp", "cortex-m4", tmp_path, seed=i, n=2, dsp_weights=["int8", "int16"][i % 2])


# ---------------------------------------------------------------------------------------
# conv_2d on one input channel, computed as the depthwise_conv_2d it equals
# (codegen/generator.py depthwise_form) where the depthwise kernel's fast path applies
# ---------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 9), st.sampled_from([(3, 3), (5, 5), (3, 1)]),
       st.integers(1, 2), st.integers(1, 2), st.sampled_from(["same", "valid"]), st.booleans(), o.seeds)
def test_depthwise_form_gives_the_same_outputs(h, w, out_c, kernel, sh, sw, padding, per_channel, seed):
    """Rewritten exactly where the depthwise kernel's fast path applies; the rewritten model's
    NumPy int8 outputs (the depthwise reference kernel) equal the conv's; the model passed
    in is left as it was."""
    model = small_conv(seed, h, w, 1, kernel, (sh, sw), padding, out_c=out_c, per_channel=per_channel,
                       activation=["none", "relu", "relu6"][seed % 3])
    p = model.ops[0].params
    weight_before = model.tensors[model.ops[0].inputs[1]].data.copy()
    form = generator.depthwise_form(model)
    # a one-pixel output stays a conv (generator.scalar_is_faster: no plane row to slide along)
    fast = dsp.depthwise_fast(dict(p, depth_multiplier=p["out_c"])) and p["out_h"] * p["out_w"] > 1
    assert (form is not model) == fast
    assert model.ops[0].kind == "conv_2d" and np.array_equal(model.tensors[model.ops[0].inputs[1]].data, weight_before)
    if fast:
        op = form.ops[0]
        assert op.kind == "depthwise_conv_2d" and op.options["depth_multiplier"] == out_c
        assert form.tensors[op.inputs[1]].data.shape == (1,) + tuple(kernel) + (out_c,)
        x = inputs_for(model, seed % 1000, 4)
        np.testing.assert_array_equal(form.predict_int8(x), model.predict_int8(x))


def one_channel_models(seed):
    """The benchmark cnn's first layer (28x28x1 3x3 'same', relu), a tall image (the plane's
    rows run along y), per-tensor quantization, and one the fast path does not take (5x5)."""
    return [small_conv(seed, 28, 28, 1, (3, 3), (1, 1), "same", out_c=8, activation="relu"),
            small_conv(seed, 30, 6, 1, (3, 3), (1, 2), "valid", out_c=5),
            small_conv(seed, 7, 9, 1, (3, 3), (1, 1), "same", out_c=3, per_channel=False, activation="relu6"),
            small_conv(seed, 9, 9, 1, (5, 5), (1, 1), "same", out_c=4)]


def test_one_channel_convs_report_the_kernel_that_computes_them(tmp_path):
    """The manifest keeps the model's kind and names the kernel; the C banner says why; the
    scalar variant keeps the conv kernel."""
    import json
    for model, rewritten in zip(one_channel_models(0), [True, True, True, False]):
        for variant in ("scalar", "dsp", "auto"):
            d = tmp_path / f"{variant}-{rewritten}-{model.ops[0].params['in_h']}"
            codegen_generate(model, d, variant)
            layer = json.loads((d / "m_manifest.json").read_text())["layers"][0]
            source = (d / "m_model.c").read_text()
            assert layer["kind"] == "conv_2d"
            expect = rewritten and variant != "scalar"
            assert (layer.get("kernel") == "depthwise_conv_2d") == expect
            assert ("computed as the depthwise_conv_2d it equals" in source) == expect


def codegen_generate(model, d, variant):
    from minitiny import codegen
    codegen.generate(model, str(d), name="m", variant=variant)


@requires_gcc
def test_one_channel_convs_on_the_host(shim_flags):
    for i, model in enumerate(one_channel_models(5)):
        for variant in ("dsp", "auto"):
            host_dsp(model, inputs_for(model, i, 3), shim_flags, sanitize=i % 2 == 0, variant=variant)


@requires_qemu
def test_one_channel_convs_on_the_m4(tmp_path):
    for i, model in enumerate(one_channel_models(6)):
        run_on(model, "dsp", "cortex-m4", tmp_path, seed=i, n=2)
