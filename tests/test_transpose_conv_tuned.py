"""The tuned TRANSPOSE_CONV kernels (codegen/transpose_conv.py, templates/scalar/ and
dsp/transpose_conv.c.j2): the gather over the taps that meet an input, bit for bit the
reference kernel's scatter.

Oracles: the NumPy int8 reference (QModel.predict_int8, held to TFLM's scatter and to TFLite
Micro by tests/test_spatial_ops.py) and the reference variant's C; the tap ranges against a
brute-force search. Hypothesis draws kernels 1..5, strides 1..3, SAME or VALID with Keras'
output padding, input channels 1..13 (tails of the DSP kernel's 4-channel words), output
channels, per-tensor or per-channel weights and input scales over 1e-6..1e6; the DSP kernel
runs on the host through tests/dsp_host.py's ACLE shim and, for one model, on the emulated
Cortex-M4. Few large layers per CI run, more under HYPOTHESIS_PROFILE=thorough.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from dsp_host import host_variants, requires_gcc, requires_qemu, run_on
from minitiny.codegen import transpose_conv

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@given(out_size=st.integers(1, 40), in_size=st.integers(1, 20), kernel=st.integers(1, 7),
       stride=st.integers(1, 4), pad=st.integers(0, 6))
def test_tap_ranges_are_the_taps_that_meet_an_input(out_size, in_size, kernel, stride, pad):
    ranges = transpose_conv.taps(out_size, in_size, kernel, stride, pad)
    for out, (first, end) in enumerate(ranges):
        want = [f for f in range(kernel) if (out + pad - f) % stride == 0 and 0 <= (out + pad - f) // stride < in_size]
        assert list(range(first, end, stride)) == want, (out, first, end)


@st.composite
def layers(draw, max_hw=7, max_c=13):
    padding = draw(st.sampled_from(["same", "valid"]))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    in_shape = (draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw)), draw(st.integers(1, max_c)))
    out_hw = tuple((n * s if padding == "same" else (n - 1) * s + k) + draw(st.integers(0, s - 1))
                   for n, s, k in zip(in_shape, stride, kernel))
    cfg = dict(out_c=draw(st.integers(1, 6)), kernel=kernel, stride=stride, padding=padding, out_hw=out_hw,
               activation=draw(O.activations), per_channel=draw(st.booleans()), bias=draw(st.booleans()))
    s_in = float(np.exp(draw(st.floats(np.log(1e-6), np.log(1e6)))))
    return model(draw(O.seeds), in_shape, cfg, s_in, draw(st.sampled_from([-128, 127, 0, 37])))


def model(seed, in_shape, cfg, s_in, z_in):
    b = O.Builder(seed, in_shape, "transpose_conv", np.float32(s_in), z_in)
    b.transpose_conv(**cfg)
    return b.model()


def check(m, x, flags, variants=("scalar", "dsp", "auto"), sanitize=False):
    host_variants(m, x, flags, ("reference",) + tuple(variants), sanitize)


@requires_gcc
@settings(max_examples=60 if THOROUGH else 12)
@given(m=layers(), seed=st.integers(0, 2 ** 16))
def test_drawn_layers_give_the_reference_bits(m, seed, shim_flags):
    check(m, O.int8_input(np.random.default_rng(seed), m.input.shape, 5), shim_flags)


@requires_gcc
@settings(max_examples=6 if THOROUGH else 1)
@given(m=layers(), seed=st.integers(0, 2 ** 16))
def test_drawn_layers_run_clean_under_asan_and_ubsan(m, seed, shim_flags):
    check(m, O.int8_input(np.random.default_rng(seed), m.input.shape, 2), shim_flags, ("scalar", "dsp"), True)


LARGE = [((16, 16, 32), dict(out_c=16, kernel=(3, 3), stride=(2, 2), padding="same")),   # a decoder
         ((8, 8, 8), dict(out_c=4, kernel=(2, 2), stride=(2, 2), padding="valid")),      # a U-Net's up-conv
         ((9, 7, 13), dict(out_c=24, kernel=(5, 3), stride=(3, 2), padding="same"))]


@requires_gcc
@pytest.mark.parametrize("i", range(len(LARGE) if THOROUGH else 1))
def test_large_layers_at_extreme_scales(i, shim_flags):
    rng = np.random.default_rng(i)
    shape, cfg = LARGE[i]
    for s_in in (1e-6, 1e6):
        m = model(i, shape, dict(cfg, activation=O.ACTIVATIONS[i % 3]), s_in, O.zero_point(rng))
        check(m, O.int8_input(rng, shape, 2), shim_flags, ("dsp", "auto"))


@requires_qemu
def test_the_dsp_kernel_on_the_emulated_m4(tmp_path):
    """5 input channels (one word and a tail), 3x3 at stride 2, on the emulated Cortex-M4."""
    m = model(3, (5, 6, 5), dict(out_c=6, kernel=(3, 3), stride=(2, 2), padding="same", activation="relu"),
              0.02, -3)
    run_on(m, "auto", "cortex-m4", tmp_path)
