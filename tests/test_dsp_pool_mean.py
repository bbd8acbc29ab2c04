"""The DSP kernels of mean (global average pooling) and max_pool_2d: four channels per
word, against the NumPy int8 reference on the host (ACLE shim, sanitizers) and on QEMU's
Cortex-M4, and their requantization against minitiny/quant/fixedpoint.py. Shared set-up:
tests/dsp_host.py.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402
from dsp_host import (STRICT, host_dsp, inputs_for, requantize_fast, requires_gcc,  # noqa: E402
                      requires_qemu, run_on)
from test_codegen_models import EXTRA_WARNINGS, every_kind_model, random_model  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.codegen import dsp, generator  # noqa: E402
from minitiny.quant import fixedpoint as fp  # noqa: E402


# ---------------------------------------------------------------------------------------
# ---- mean ----
# the global average pool, four channels per word (dsp/mean.c.j2, dsp.py's mean section)
# ---------------------------------------------------------------------------------------
# The effective multiplier e = s_in / (s_out * count) sets the requantization's shift (from
# kernels/reduce.py prepare, by count): 4 -> a left shift of 3; 0.7 and 0.3 -> 1, 0 or -1;
# 0.01 -> -5 or -6 (requantize_fast from -1 on); 1e-4 -> -12 or -13; 1e-9 -> -28 or -29;
# 1e-11 and 1e-12 -> -31 with a multiplier far below 2^30, or a multiplier of 0 (general).
MEAN_MULTIPLIERS = [4.0, 0.7, 0.3, 0.01, 1e-4, 1e-9, 1e-11, 1e-12]


def mean_model(seed, in_shape, z_in, z_out, e, keep_dims=False, single_rounding=False):
    """One mean over H, W with input zero point z_in, output zero point z_out, and the
    output scale that makes s_in / (s_out * count) = e."""
    from minitiny.quant.graph import QModel
    b = o.Builder(seed, in_shape, "mean", None, z_in)
    h, w, c = in_shape
    out = b._tensor((1, 1, c) if keep_dims else (c,), np.float32(b.t.scale / (e * h * w)), np.int32(z_out))
    m = b._op("mean", [b.cur], out, {"axes": (0, 1), "keep_dims": keep_dims}).model()
    return QModel(m.name, m.tensors, m.ops, m.inputs, m.outputs, single_rounding=single_rounding) \
        if single_rounding else m


def test_mean_layer_takes_the_dsp_kernel(tmp_path):
    """No weights, no scratch; with requantize_fast no fixed-point helper at all; "dsp" emits
    the SIMD kernel only, "auto" both under #if MINITINY_DSP; the shifts pick the epilogue."""
    model = mean_model(0, (25, 5, 10), -128, 3, 0.01)
    ctx = generator.build_context(model, "m", variant="dsp")
    layer = ctx["layers"][0]
    assert layer["p"]["output_shift"] == -5 and layer["p"]["output_multiplier"] < 1 << 30
    assert layer["dsp"] == dict(fast_requantize=True, groups=2, tail=2, block=125, blocks=1,
                                unroll=dsp.MEAN_UNROLL, sum_start=128 * 125)
    assert layer["weight_bytes"] == 0 and layer["scratch_bytes"] == 0 and not ctx["helpers"]
    assert {"read_s8x4", "sxtab16_ror8", "s16_lanes", "requantize_fast_to_int8"} <= ctx["dsp_helpers"]
    assert layer["code_bytes"] == dsp.CODE_BYTES["mean"]
    for variant in ("dsp", "auto"):
        src = open(codegen.generate(model, tmp_path / variant, name="m", variant=variant).source).read()
        body = src[src.index("static void mean_0"):]
        assert body.count("static void mean_0") == (2 if variant == "auto" else 1)
        assert "sxtab16_ror8(odd, x7)" in body
        assert ("MultiplyByQuantizedMultiplier(sum - input_zero_point * count" in body) == (variant == "auto")
    # blocks of 256 pixels; a left shift, a shift past -31 or single rounding: the general epilogue
    assert dsp.mean_context(mean_model(0, (16, 17, 4), 0, 0, 0.01).ops[0].params)["blocks"] == 2
    for e, single in ((4.0, False), (0.3, False), (1e-11, False), (0.01, True)):
        p = mean_model(0, (3, 5, 4), 0, 0, e, single_rounding=single).ops[0].params
        assert not dsp.mean_fast_requantize(p)
        assert dsp.mean_helpers(p)[-1] == "requantize_to_int8"
    assert dsp.mean_helpers(mean_model(0, (3, 5, 3), 0, 0, 0.01).ops[0].params) == ["requantize_fast_to_int8"]


@given(st.integers(-255 * 4096, 255 * 4096), st.integers(1, 4096), st.floats(1e-13, 0.49))
@settings(max_examples=400)
def test_requantize_fast_takes_the_means_multipliers(total, count, e):
    """kernels/reduce.py prepare divides the multiplier by count, often below 2^30 (far below
    when the shift reaches -31); requantize_fast (whose proof needs only 0 < m < 2^31) still
    gives fixedpoint.py's bits wherever mean_fast_requantize takes it. The multiplier is
    computed as kernels/reduce.py prepare does; oracle: minitiny/quant/fixedpoint.py in Python integers."""
    mult, shift = fp.quantize_multiplier(np.float64(e) * count, False)
    s = min(count.bit_length() - 1, 32, 31 + shift)
    m, shift = (mult << s) // count, shift - s
    assert 0 <= m < 1 << 31
    p = dict(output_multiplier=m, output_shift=shift, count=count)
    acc = max(-255 * count, min(255 * count, total))      # |sum - Z_in count| <= 255 count
    if dsp.mean_fast_requantize(p):
        assert requantize_fast(acc, m, -shift) == fp.multiply_by_quantized_multiplier(acc, m, shift)
    else:
        assert not -31 <= shift <= -1 or m == 0


def test_requantize_fast_on_the_means_smallest_multipliers():
    for m in (1 << 29, (1 << 29) + 1, (1 << 30) - 1, 1, 3):
        for r in (1, 2, 7, 31):
            for acc in (0, 1, -1, (1 << r) + (1 << (r - 1)), -(1 << (r - 1)), (1 << 30) - 1, -(1 << 30) + 1):
                assert requantize_fast(acc, m, r) == fp.multiply_by_quantized_multiplier(acc, m, -r), (acc, m, r)


@requires_gcc
@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 9), st.integers(-128, 127), st.integers(-128, 127),
       st.sampled_from(MEAN_MULTIPLIERS), st.booleans(), o.seeds)
def test_mean_on_the_host_matches_numpy(shim_flags, h, w, c, z_in, z_out, e, keep_dims, seed):
    """1 to 400 pixels (one or two blocks of 256), channels 1..9 (words and the byte tail),
    every shift; ASan/UBSan on every fourth draw."""
    model = mean_model(seed, (h, w, c), z_in, z_out, e, keep_dims)
    host_dsp(model, inputs_for(model, seed % 1000, n=4), shim_flags, sanitize=seed % 4 == 0,
             variant=["dsp", "auto"][seed % 2])


def mean_edge_cases():
    """(model, inputs): every value -128 or 127 (the extreme 16-bit lane sums) at 255, 256,
    257 and 515 pixels, around the widening; channels 4, 7 and 9; all zero points at their
    ends; then random inputs on ds-cnn's shape and a 1x1 image."""
    cases = []
    for i, (shape, z_in, z_out, e) in enumerate([((15, 17, 4), -128, 127, 0.01), ((16, 16, 7), 127, -128, 0.3),
                                                  ((1, 257, 9), -128, -128, 1e-4), ((5, 103, 5), 127, 0, 0.7),
                                                  ((16, 16, 8), 0, 5, 4.0)]):
        model = mean_model(i, shape, z_in, z_out, e)
        x = np.stack([np.full(shape, -128, np.int8), np.full(shape, 127, np.int8),
                      np.broadcast_to(np.where(np.arange(shape[2]) % 2, 127, -128).astype(np.int8), shape)])
        cases.append((model, x))
    for i, (shape, e) in enumerate([((25, 5, 64), 0.01), ((1, 1, 6), 0.3), ((2, 3, 12), 1e-10)]):
        model = mean_model(10 + i, shape, -128, -3, e)
        cases.append((model, inputs_for(model, i, n=3)))
    return cases


@requires_gcc
def test_mean_edge_cases_on_the_host(shim_flags):
    for model, x in mean_edge_cases():
        host_dsp(model, x, shim_flags, sanitize=True)


@requires_gcc
@settings(max_examples=10)
@given(st.integers(0, 2 ** 16), st.lists(st.sampled_from(["conv_2d", "depthwise_conv_2d", "max_pool_2d"]),
                                          min_size=0, max_size=2))
def test_random_models_with_a_mean_on_the_host(shim_flags, seed, kinds):
    model = random_model(seed, kinds + ["mean", "fully_connected"], input_shape=(7, 6, 5))
    assert "mean" in [op.kind for op in model.ops]
    host_dsp(model, inputs_for(model, seed), shim_flags)


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
def test_mean_only_models_compile_clean(shim_flags, tmp_path):
    """Only the helpers the kernel calls are emitted (clang -Werror stops on an unused static
    function): no word helpers below 4 channels, no MultiplyByQuantizedMultiplier with
    requantize_fast, requantize_to_int8 and it with a left shift."""
    for i, (shape, e) in enumerate([((3, 5, 3), 0.01), ((2, 2, 8), 4.0), ((20, 20, 9), 0.01)]):
        g = codegen.generate(mean_model(i, shape, 5, -7, e), tmp_path / str(i), name="m", variant="dsp")
        assert ("read_s8x4" in open(g.source).read()) == (shape[2] >= 4)
        out = subprocess.run(["clang"] + STRICT + EXTRA_WARNINGS + shim_flags + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


@requires_qemu
def test_mean_edge_cases_on_the_m4(tmp_path):
    """The real SXTAB16 and SMMULR against NumPy (firmware.run compares), "dsp" and "auto"."""
    from minitiny import firmware
    for i, (model, x) in enumerate(mean_edge_cases()):
        d = tmp_path / f"m{i}"
        codegen.generate(model, d, name="m", variant=["dsp", "auto"][i % 2])
        r = firmware.run(d, board="cortex-m4", inputs=x, profile=False)
        assert r.status == "ok" and r.matches_reference is True, r.message


# ---------------------------------------------------------------------------------------
# ---- pooling ----
# max_pool_2d, four channels per word (dsp/max_pool_2d.c.j2, dsp.py's pooling section)
# ---------------------------------------------------------------------------------------
def pool_model(seed, in_shape, scale, zero_point, **cfg):
    """One max_pool_2d with a chosen input quantization: the fused activation's bounds are
    act_min = max(Z, -128) and, for relu6, act_max = min(Z + 6 / scale, 127), so the scale
    and zero point decide which clamps the kernel needs."""
    return o.Builder(seed, in_shape, "max_pool", scale, zero_point).pool("max_pool_2d", **cfg).model()


def test_byte_word_repeats_a_byte():
    """Oracle: the four bytes read back as a little-endian signed int32 (what a 32-bit load
    of an int8[4] holding the value four times gives)."""
    for v in (-128, -1, 0, 1, 37, 127):
        assert dsp.byte_word(v) == int.from_bytes(bytes([v & 0xFF] * 4), "little", signed=True)


def test_max_pool_layer_takes_the_dsp_kernel(tmp_path):
    """No weights, no scratch, no requantization; "dsp" emits the SIMD kernel only, "auto"
    both under #if MINITINY_DSP; the SSUB8/SEL helper only, and min_s8x4 only for an upper bound."""
    for act, scale, helpers in (("none", 0.5, {"max_s8x4"}), ("relu6", 0.05, {"max_s8x4", "min_s8x4"})):
        model = pool_model(0, (6, 5, 8), scale, -20, pool_size=(2, 2), stride=(2, 2), padding="same", activation=act)
        ctx = generator.build_context(model, "m", variant="dsp")
        layer = ctx["layers"][0]
        assert layer["dsp"] is not None and layer["dsp"]["groups"] == 2 and layer["dsp"]["tail"] == 0
        assert layer["weight_bytes"] == 0 and layer["scratch_bytes"] == 0 and not ctx["helpers"]
        assert ctx["dsp_helpers"] >= helpers and ctx["dsp_helpers"] & {"max_s8x4", "min_s8x4"} == helpers
        assert layer["code_bytes"] == dsp.CODE_BYTES["max_pool_2d"]
        for variant in ("dsp", "auto"):
            src = open(codegen.generate(model, tmp_path / f"{act}{variant}", name="m", variant=variant).source).read()
            body = src[src.index("static void max_pool_2d_0"):]
            assert body.count("static void max_pool_2d_0") == (2 if variant == "auto" else 1)
            assert ("max_s8x4(read_s8x4(" in body) and (("int32_t max = -128;" in body) == (variant == "auto"))
    p = pool_model(0, (6, 5, 8), 0.5, 0).ops[0].params
    with pytest.raises(ValueError, match="wholly in the padding"):
        dsp.pool_context(dict(p, pad_w=2))                  # a window of 2 with 2 padded columns


def test_whole_windows_are_written_out_where_nothing_clips_them(tmp_path):
    """The taps written out, the first starting the maximum, only where no window is cut by
    the image's edge, every channel is in a word and the activation has no lower bound above
    -128 (the cnn benchmark's pools); else the clipped loop starting at the bound."""
    cases = [(pool_model(1, (8, 8, 8), 0.05, -128, pool_size=(2, 2), stride=(2, 2)), True, True),
             (pool_model(2, (7, 7, 8), 0.05, -128, pool_size=(2, 2), stride=(2, 2), padding="same"), False, False),
             (pool_model(3, (9, 9, 4), 0.05, -128, pool_size=(3, 3), stride=(2, 2)), True, True),
             (pool_model(4, (8, 8, 8), 0.5, 3, pool_size=(2, 2), stride=(2, 2), activation="relu"), True, False),
             (pool_model(5, (8, 8, 9), 0.05, -128, pool_size=(2, 2), stride=(2, 2)), True, False)]
    for i, (model, whole, written_out) in enumerate(cases):
        context = dsp.pool_context(model.ops[0].params)
        assert context["whole_windows"] == whole and context["taps_written_out"] == written_out
        src = open(codegen.generate(model, tmp_path / str(i), name="m", variant="dsp").source).read()
        assert ("the first tap starts it" in src) == written_out


@requires_gcc
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.integers(1, 3), st.sampled_from(["same", "valid"]),
       st.sampled_from(["none", "relu", "relu6"]), st.sampled_from([0.5, 0.05, 0.004]),
       st.integers(-128, 127), o.seeds)
def test_max_pool_on_the_host_matches_numpy(shim_flags, h, w, c, kh, kw, sh, sw, padding, act, scale, z, seed):
    """Windows cut by 'same' padding on either side, strides past the window, channels
    1..9 (whole words and the byte tail), every clamp; ASan/UBSan on every fourth draw."""
    if padding == "valid":
        kh, kw = min(kh, h), min(kw, w)
    model = pool_model(seed, (h, w, c), scale, z, pool_size=(kh, kw), stride=(sh, sw), padding=padding,
                       activation=act)
    host_dsp(model, inputs_for(model, seed % 1000, n=4), shim_flags, sanitize=seed % 4 == 0,
             variant=["dsp", "auto"][seed % 2])


def pool_models():
    """Shapes for the emulated core: the cnn benchmark's pools, the byte tail alone and after
    words, 'same' windows cut on every side, relu and relu6 clamps, 1x1 images, a pool
    between convolutions."""
    return [pool_model(1, (8, 8, 8), 0.05, -128, pool_size=(2, 2), stride=(2, 2)),
            pool_model(2, (7, 7, 16), 0.5, 3, pool_size=(2, 2), stride=(2, 2), padding="same", activation="relu"),
            pool_model(3, (5, 6, 3), 0.05, -40, pool_size=(3, 3), stride=(1, 2), padding="same", activation="relu6"),
            pool_model(4, (6, 5, 9), 0.02, 10, pool_size=(4, 2), stride=(3, 1), padding="same", activation="relu6"),
            pool_model(5, (1, 1, 5), 0.5, 0, pool_size=(3, 3), stride=(2, 2), padding="same", activation="relu"),
            random_model(6, ["conv_2d", "max_pool_2d", "conv_2d", "max_pool_2d"], input_shape=(9, 8, 3))]


@requires_gcc
def test_pool_models_on_the_host(shim_flags):
    for i, model in enumerate(pool_models()):
        host_dsp(model, inputs_for(model, i, n=3), shim_flags, sanitize=True)


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
def test_a_model_whose_only_dsp_layer_is_a_pool_compiles_clean(shim_flags, tmp_path):
    """Only the helpers a model calls are emitted: a pool-only DSP model has no requantization,
    so no ssat8 either (clang -Werror stops on an unused static function)."""
    model = o.single_op_model(3, "max_pool_2d", (6, 6, 8), pool_size=(2, 2), stride=(2, 2))
    g = codegen.generate(model, tmp_path, name="m", variant="dsp")
    source = open(g.source).read()
    assert "max_s8x4" in source and "ssat8" not in source
    out = subprocess.run(["clang"] + STRICT + EXTRA_WARNINGS + shim_flags + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
@pytest.mark.parametrize("variant", ["auto", "dsp"])
def test_auto_and_dsp_compile_clean_with_clang_on_both_sides_of_the_switch(shim_flags, tmp_path, variant):
    """clang warns about an unused static function even when it is inline: a helper only the
    scalar kernels call must not be emitted where the DSP build compiles them out."""
    models = [every_kind_model(3), o.single_op_model(1, "fully_connected", (20,), units=7),
              o.single_op_model(2, "conv_2d", (6, 5, 3), out_c=5)]
    for i, model in enumerate(models):
        g = codegen.generate(model, tmp_path / f"{variant}{i}", name="m", variant=variant)
        for flags in ([], shim_flags) if variant == "auto" else (shim_flags,):
            out = subprocess.run(["clang"] + STRICT + EXTRA_WARNINGS + flags + ["-c", g.source, "-o", str(tmp_path / "m.o")],
                                 capture_output=True, text=True)
            assert out.returncode == 0, f"model {i}, {'DSP' if flags else 'scalar'} build:\n{out.stderr}"


@requires_qemu
def test_pool_models_on_the_m4(tmp_path):
    """The real SSUB8/SEL against NumPy (run_on compares), "dsp" and "auto"."""
    for i, model in enumerate(pool_models()):
        run_on(model, ["dsp", "auto"][i % 2], "cortex-m4", tmp_path, seed=i, n=3)
