"""16x8's tuned kernels (codegen/fast16.py, templates/int16/scalar_*.c.j2 and dsp_*.c.j2):
every variant's C gives the NumPy reference's int16 outputs (QModel.predict_int8, which
tests/test_int16.py holds to TFLite Micro bit for bit), for fully_connected, conv_2d and
depthwise_conv_2d layers hypothesis draws: channel counts off multiples of 4, odd sizes,
strides, paddings, scales over seven decades, int64 biases far beyond int32, and fan-ins
large enough that an int32 sum would overflow. The DSP kernels run on the host through
tests/dsp_host.py's ACLE shim (written from the Arm ARM's pseudo-code) and on the emulated
Cortex-M4 (real SMLALD, SMLABB/SMLATT); sanitized and strict builds besides.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from dsp_host import requires_gcc, requires_qemu
from minitiny import codegen
from minitiny.codegen import fast16
from minitiny.codegen.loader import STRICT_FLAGS
from minitiny.codegen.output import CodegenError
from minitiny.quant import fixedpoint as fp
from test_int16 import int16_input, weighted

DATA = os.path.join(os.path.dirname(__file__), "data", "tflite")
FEW = settings(max_examples=max(3, settings().max_examples // 6))
KINDS = ["fully_connected", "conv_2d", "depthwise_conv_2d"]


def layer(kind, rng, large=False, wide_weights=False):
    """A random one-op 16x8 model of `kind`. large: fan-ins in the hundreds to thousands.
    wide_weights: every weight +-127/128, so that 32768 * sum|w| passes 2^31 (int64 sums)."""
    s_in = np.float32(10.0 ** rng.uniform(-6, 1))
    activation = str(rng.choice(["none", "relu", "relu6"]))
    spread = float(rng.choice([0.5, 1.0, 4.0, 100.0]))
    bias = bool(rng.integers(4))
    if kind == "fully_connected":
        n = int(rng.integers(600, 2500)) if large else int(rng.integers(1, 40))
        m = weighted(kind, rng, (n,), s_in, spread, activation, bias, units=int(rng.integers(1, 11)),
                     per_channel=bool(rng.integers(2)))
    else:
        c = int(rng.integers(20, 70)) if large else int(rng.integers(1, 11))
        h, w = (int(v) for v in rng.integers(1, 10 if not large else 8, 2))
        k = int(rng.integers(1, 6 if not large else 4))
        if large and wide_weights and kind == "conv_2d":     # a fan-in of 9 * 58 > 512
            c, k, h, w = int(rng.integers(58, 70)), 3, h + 2, w + 2
        padding = str(rng.choice(["same", "valid"]))
        if padding == "valid":
            k = min(k, h, w)
        cfg = dict(kernel=k, stride=int(rng.integers(1, 4)), padding=padding)
        if kind == "conv_2d":
            cfg["out_c"] = int(rng.integers(1, 11))
        else:
            cfg["depth_multiplier"] = int(rng.choice([1, 1, 1, 2, 3]))
        m = weighted(kind, rng, (h, w, c), s_in, spread, activation, bias, **cfg)
    if wide_weights:
        wt = m.tensors["w"]
        wt.data = np.where(rng.integers(2, size=wt.shape) == 1, 127, -128).astype(np.int8)
    m.prepare()
    return m


def check_variants(m, x, tmp, shim_flags, variants=("scalar", "dsp", "auto"), sanitize=False):
    """Each variant's host C == NumPy. "dsp" builds through the ACLE shim, "auto" without it
    (its scalar kernels) and, under sanitize, with it too."""
    want = m.predict_int8(x)
    for variant in variants:
        d = tmp / variant
        codegen.generate(m, d, name="m", variant=variant)
        builds = [shim_flags] if variant == "dsp" else [[]] + ([shim_flags] if sanitize else [])
        for flags in builds:
            got = codegen.load(d, flags=flags, sanitize=sanitize)(x)
            assert np.array_equal(got, want), (
                f"{variant} {'DSP' if flags else 'scalar'}: {(got != want).sum()} of {want.size} outputs differ\n"
                f"{m.summary()}")


@requires_gcc
@settings(max_examples=max(6, settings().max_examples // 2))
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(KINDS))
def test_every_variant_matches_numpy(seed, kind, shim_flags, tmp_path_factory):
    rng = np.random.default_rng(seed)
    m = layer(kind, rng)
    check_variants(m, int16_input(rng, m.input.shape, 6), tmp_path_factory.mktemp("v"), shim_flags)


@requires_gcc
@FEW
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(KINDS), wide=st.booleans())
def test_large_fan_in_and_int32_overflow(seed, kind, wide, shim_flags, tmp_path_factory):
    """Where users go: fan-ins in the thousands, and weights whose int32 sums could overflow
    (the kernels then add in int64: fast16.acc32 is False)."""
    rng = np.random.default_rng(seed)
    m = layer(kind, rng, large=True, wide_weights=wide)
    if wide and kind != "depthwise_conv_2d":
        assert not fast16.acc32(kind, m.tensors["w"].data)
    check_variants(m, int16_input(rng, m.input.shape, 3), tmp_path_factory.mktemp("v"), shim_flags)


@requires_gcc
def test_worst_case_sums_reach_the_int32_limit(shim_flags, tmp_path):
    """The inputs that make the sum largest: x = -32768 against weights -128, 512 taps, so
    the sum is exactly 2^31, one past INT32_MAX. fast16.acc32 must refuse int32 sums (the C
    then adds in int64), and every variant gives NumPy's outputs; 511 taps fit int32."""
    rng = np.random.default_rng(3)
    # a depthwise window needs 512 taps: 23 x 23 = 529 (the DSP variant keeps the scalar kernel)
    m = weighted("depthwise_conv_2d", rng, (23, 24, 3), np.float32(1e-3), 1.0, "none", True, kernel=23,
                 stride=1, padding="valid", depth_multiplier=1)
    m.tensors["w"].data = np.full(m.tensors["w"].shape, -128, np.int8)
    m.prepare()
    assert not fast16.acc32("depthwise_conv_2d", m.tensors["w"].data)
    x = np.full((2, 23, 24, 3), -32768, np.int16)
    x[1, :, ::2] = 32767
    check_variants(m, x, tmp_path / "dw", shim_flags)
    assert "__smlabb" not in (tmp_path / "dw" / "dsp" / "m_model.c").read_text()
    for n, fits in ((511, True), (512, False)):
        m = weighted("fully_connected", rng, (n,), np.float32(1e-3), 1.0, "none", True, units=5)
        m.tensors["w"].data = np.full((5, n), -128, np.int8)
        m.prepare()
        assert fast16.acc32("fully_connected", m.tensors["w"].data) is fits
        assert fast16.acc_bound("fully_connected", m.tensors["w"].data) == n * 128 * 32768
        x = np.full((2, n), -32768, np.int16)
        x[1, ::2] = 32767
        check_variants(m, x, tmp_path / str(n), shim_flags)
        text = (tmp_path / str(n) / "scalar" / "m_model.c").read_text()
        assert ("int64_t acc0 = 0" in text) is not fits and ("int32_t acc0 = 0" in text) is fits


def test_folded_requantization_equals_tflms():
    """fast16.folded_requantization's (acc m_c + o_c) >> N against TFLM's int64 requantization
    of acc + bias (fixedpoint.multiply_by_quantized_multiplier_int64), per channel, on sums
    at the bound's edges and at random; shifts over TFLM's whole range."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        channels = int(rng.integers(1, 6))
        p = {"output_multiplier": rng.integers(1 << 30, (1 << 31) - 1, channels),
             "output_shift": rng.integers(-31, 8, channels) if rng.integers(2) else
             np.full(channels, int(rng.integers(-31, 8)))}
        bound = int(rng.choice([1 << 20, (1 << 31) - 1, int(rng.integers(1, 1 << 31))]))
        bias = rng.integers(-(1 << 40), 1 << 40, channels) if rng.integers(2) else None
        f = fast16.folded_requantization(p, bias, bound)
        if f is None:
            continue
        acc = np.concatenate([[-bound, bound, 0, -1, 1], rng.integers(-bound, bound + 1, 50)]).astype(np.int64)
        for c in range(channels):
            want = fp.multiply_by_quantized_multiplier_int64(acc + (0 if bias is None else bias[c]),
                                                             p["output_multiplier"][c], p["output_shift"][c])
            got = (acc.astype(object) * f["multiplier"][c] + f["offset"][c]) >> f["shift"]
            got = np.array([((int(v) + (1 << 31)) % (1 << 32)) - (1 << 31) for v in got])   # (int32_t)
            np.testing.assert_array_equal(got, want)
    assert fast16.folded_requantization({"output_multiplier": [1 << 30], "output_shift": [0]}, None,
                                        1 << 31) is None      # no int32 sums, no folding


@requires_gcc
def test_sanitized_builds(shim_flags, tmp_path):
    """Every kind and variant under ASan/UBSan (strict flags), DSP kernels through the shim."""
    rng = np.random.default_rng(5)
    for kind, large in zip(KINDS, (True, False, True)):
        m = layer(kind, rng, large=large)
        check_variants(m, int16_input(rng, m.input.shape, 2), tmp_path / kind, shim_flags, sanitize=True)


def test_strict_compiles_with_gcc_clang_and_arm_gcc(tmp_path):
    """The TF 16x8 CNN in every variant: -std=c99 -Wall -Wextra -Werror -pedantic under gcc
    and clang (scalar kernels), arm-none-eabi-gcc for Cortex-M4 (DSP) and Cortex-M0 (auto:
    its scalar kernels)."""
    from minitiny.quant.tflite_read import from_tflite
    q = from_tflite(os.path.join(DATA, "cnn_16x8.tflite"))
    builds = [("gcc", "scalar", []), ("clang", "auto", []),
              ("arm-none-eabi-gcc", "dsp", ["-mcpu=cortex-m4", "-mthumb", "-Os"]),
              ("arm-none-eabi-gcc", "auto", ["-mcpu=cortex-m4", "-mthumb", "-O2"]),
              ("arm-none-eabi-gcc", "auto", ["-mcpu=cortex-m0", "-mthumb", "-Os"])]
    ran = 0
    for i, (cc, variant, extra) in enumerate(builds):
        if shutil.which(cc) is None:
            continue
        d = tmp_path / f"{i}"
        codegen.generate(q, d, name="kws16", variant=variant)
        r = subprocess.run([cc, *STRICT_FLAGS, *extra, "-c", str(d / "kws16_model.c"), "-o", str(d / "m.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{cc} {variant} {extra}: {r.stderr}"
        ran += 1
    if not ran:
        pytest.skip("no C compiler")


def test_tf_cnn_every_variant_gives_tflms_outputs(shim_flags, tmp_path):
    """The TF 2.21 16x8 CNN: every variant's host C gives TFLM's stored outputs."""
    from minitiny.quant.tflite_read import from_tflite
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    q = from_tflite(os.path.join(DATA, "cnn_16x8.tflite"))
    with np.load(os.path.join(DATA, "cnn_16x8.expected.npz")) as z:
        x, y = z["x"], z["y"]
    for variant, flags in (("scalar", []), ("dsp", shim_flags), ("auto", [])):
        codegen.generate(q, tmp_path / variant, name="kws16", variant=variant)
        np.testing.assert_array_equal(codegen.load(tmp_path / variant, flags=flags)(x), y, err_msg=variant)


@requires_qemu
@pytest.mark.parametrize("variant", ["dsp", "auto", "scalar"])
def test_tf_cnn_on_the_emulated_cortex_m4(variant, tmp_path):
    """The DSP instructions themselves (SMLALD, SMLABB/SMLATT, SXTB16) on the emulated M4:
    TFLM's stored outputs, bit for bit."""
    from minitiny import firmware
    from minitiny.quant.tflite_read import from_tflite
    q = from_tflite(os.path.join(DATA, "cnn_16x8.tflite"))
    codegen.generate(q, tmp_path / "m", name="kws16", variant=variant)
    with np.load(os.path.join(DATA, "cnn_16x8.expected.npz")) as z:
        x, y = z["x"][58:64], z["y"][58:64]
    r = firmware.run(tmp_path / "m", board="cortex-m4", inputs=x, expected=y, cache_dir=tmp_path / "cache",
                     profile=False, timeout=120)
    assert r.status == "ok", r.message
    np.testing.assert_array_equal(r.outputs.reshape(y.shape), y)


@requires_qemu
@FEW
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(KINDS))
def test_drawn_layers_on_the_emulated_cortex_m4(seed, kind, tmp_path_factory):
    from minitiny import firmware
    rng = np.random.default_rng(seed)
    m = layer(kind, rng, large=bool(rng.integers(2)), wide_weights=bool(rng.integers(2)))
    d = tmp_path_factory.mktemp("m4")
    codegen.generate(m, d / "m", name="m", variant="dsp")
    x = int16_input(rng, m.input.shape, 3)
    r = firmware.run(d / "m", board="cortex-m4", inputs=x, expected=m.predict_int8(x), cache_dir=d / "cache",
                     profile=False, timeout=120)
    assert r.status == "ok", r.message
    np.testing.assert_array_equal(r.outputs.reshape((3,) + tuple(m.output.shape)), m.predict_int8(x))


def test_the_dsp_kernel_is_chosen_where_it_applies(tmp_path):
    """Which kernel each layer gets, read from the C: depthwise with depth_multiplier > 1
    keeps the scalar kernel in "dsp"; "reference" the generic kernels."""
    rng = np.random.default_rng(1)
    m = weighted("depthwise_conv_2d", rng, (5, 5, 4), np.float32(1e-3), 1.0, "none", True, kernel=3, stride=1,
                 padding="same", depth_multiplier=2)
    codegen.generate(m, tmp_path / "dw", name="m", variant="dsp")
    text = (tmp_path / "dw" / "m_model.c").read_text()
    assert "__smlabb" not in text and "const int in_channel = output_channel / depth_multiplier;" in text
    m = weighted("conv_2d", rng, (5, 5, 4), np.float32(1e-3), 1.0, "none", True, kernel=3, stride=1,
                 padding="same", out_c=5)
    for variant, marker in (("dsp", "__sxtb16(w_word)"), ("scalar", "Four output channels at a time"),
                            ("reference", "static void conv_2d(const ConvParams *params")):
        codegen.generate(m, tmp_path / variant, name="m", variant=variant)
        assert marker in (tmp_path / variant / "m_model.c").read_text(), variant


@requires_gcc
@FEW
@given(seed=st.integers(0, 2 ** 31),
       kind=st.sampled_from(["add", "sub", "mul", "max_pool_2d", "average_pool_2d", "mean"]))
def test_other_kinds_in_the_tuned_variants(seed, kind, shim_flags, tmp_path_factory):
    """ADD, SUB, MUL, the pools and the mean of 16x8 take the int8 tuned templates
    (scalar/elementwise.c.j2, max_pool_2d.c.j2, ...) on int16_t: == NumPy, operands
    broadcast or not, scales over six decades, fused activations."""
    from test_int16 import c_inputs, c_model
    rng = np.random.default_rng(seed)
    m = c_model(kind, rng)
    check_variants(m, c_inputs(m, rng), tmp_path_factory.mktemp("e"), shim_flags, variants=("scalar", "auto"),
                   sanitize=seed % 3 == 0)


def test_int16_dsp_weights_are_refused_for_16x8(tmp_path):
    m = layer("fully_connected", np.random.default_rng(0))
    with pytest.raises(CodegenError, match="16x8.*dsp_weights='int16' is for int8 models"):
        codegen.generate(m, tmp_path, name="m", variant="dsp", dsp_weights="int16")
