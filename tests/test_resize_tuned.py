"""The tuned RESIZE_BILINEAR kernel (codegen/resize.py, templates/scalar/resize_bilinear.c.j2)
and the DSP variants' choice of the scalar depthwise kernel where it is the faster
(generator.scalar_is_faster): the reference kernel's bits, every variant.

Oracles: the NumPy int8 reference (QModel.predict_int8, held to TFLite Micro by
tests/test_spatial_ops.py) and the reference variant's C; the bilinear tables against the
reference kernel's own positions. Hypothesis draws up- and downsampling by any ratio, both
flags, single rounding, 1-pixel images and inputs over the whole int8 range; the DSP variant
builds on the host through tests/dsp_host.py's ACLE shim, and a MobileNet-like tail of small
depthwise layers runs on the emulated Cortex-M4.
"""
import os

import numpy as np
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from dsp_host import host_variants, requires_gcc, requires_qemu, run_on
from minitiny.codegen import generator, resize
from minitiny.quant.kernels.resize import ONE, bilinear_positions

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@given(out_size=st.integers(1, 64), in_size=st.integers(1, 64), align=st.booleans(), half=st.booleans())
def test_the_tables_hold_each_axis_positions_and_weights(out_size, in_size, align, half):
    table = resize.axis(out_size, in_size, align, half)
    pos, lower, upper = bilinear_positions(out_size, in_size, align, half)
    assert np.array_equal(table[:, 0], lower) and np.array_equal(table[:, 1], upper)
    assert np.array_equal(table[:, 3], pos - ONE * lower) and np.all(table[:, 2] + table[:, 3] == ONE)
    assert table.min() >= -(1 << 15) and table.max() < 1 << 15          # int16 in the C
    assert np.all(np.abs(table[:, 2:]).sum(axis=1) <= 2 * ONE)           # the int32 bound in the C


@st.composite
def bilinear_models(draw, max_dim=12):
    in_shape = (draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim)), draw(st.integers(1, 5)))
    size = (draw(st.integers(1, 2 * max_dim)), draw(st.integers(1, 2 * max_dim)))
    align = draw(st.booleans())
    half = draw(st.booleans()) and not align
    b = O.Builder(draw(O.seeds), in_shape, "resize")
    b.resize("resize_bilinear", size, align_corners=align, half_pixel_centers=half)
    m = b.model()
    if draw(st.booleans()):
        m.single_rounding = True
        m.prepare()
    return m


@requires_gcc
@settings(max_examples=40 if THOROUGH else 8)
@given(m=bilinear_models(), seed=st.integers(0, 2 ** 16))
def test_drawn_resizes_give_the_reference_bits(m, seed, shim_flags):
    host_variants(m, O.int8_input(np.random.default_rng(seed), m.input.shape, 4), shim_flags)


@requires_gcc
def test_a_large_upsampling_with_extreme_inputs(shim_flags):
    """A segmentation head's 4x upsampling, 24x32x16 -> 96x128x16, inputs at -128 and 127."""
    b = O.Builder(1, (24, 32, 16), "upsample")
    b.resize("resize_bilinear", (96, 128), half_pixel_centers=True)
    m = b.model()
    x = np.where(np.random.default_rng(1).random((1, 24, 32, 16)) < 0.5, -128, 127).astype(np.int8)
    host_variants(m, x, shim_flags, ("scalar", "dsp"))


def depthwise_tail(seed):
    """MobileNetV3's last blocks: 5x5 and 3x3 depthwise filters on 4x4, 2x2 and 1x1 maps."""
    b = O.Builder(seed, (4, 4, 12), "tail")
    b.depthwise(kernel=(5, 5), stride=(2, 2), activation="relu")          # 4x4 -> 2x2, off the fast path
    b.depthwise(kernel=(3, 3), activation="relu6")                         # 2x2, the fast path
    b.depthwise(2, kernel=(5, 5))                                           # 2x2, a multiplier
    b.depthwise(kernel=(3, 3), stride=(2, 2))                              # 2x2 -> 1x1
    b.depthwise(kernel=(5, 5))                                              # 1x1
    return b.model()


@requires_gcc
@settings(max_examples=10 if THOROUGH else 3)
@given(seed=O.seeds, input_seed=st.integers(0, 2 ** 16))
def test_small_depthwise_layers_take_the_scalar_kernel_with_its_bits(seed, input_seed, shim_flags):
    m = depthwise_tail(seed)
    assert [generator.scalar_is_faster(op) for op in m.ops] == [True, False, True, True, True]
    host_variants(m, O.int8_input(np.random.default_rng(input_seed), m.input.shape, 4), shim_flags)


@requires_qemu
def test_the_small_depthwise_layers_on_the_emulated_m4(tmp_path):
    run_on(depthwise_tail(5), "auto", "cortex-m4", tmp_path)
