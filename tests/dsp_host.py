"""What the DSP-kernel tests (tests/test_dsp*.py) share: which toolchains are here, the ACLE
shim that builds the DSP C for the host, and running a model's generated C on the host or on
an emulated core against the NumPy int8 reference (QModel.predict_int8)."""
import os
import shutil
import sys
import tempfile

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402

from minitiny import codegen  # noqa: E402

GCC = shutil.which("gcc")
ARM_GCC, QEMU = shutil.which("arm-none-eabi-gcc"), shutil.which("qemu-system-arm")
ARM_OBJDUMP = shutil.which("arm-none-eabi-objdump")
requires_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
requires_arm = pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
requires_qemu = pytest.mark.skipif(ARM_GCC is None or QEMU is None or ARM_OBJDUMP is None, reason=(
    "arm-none-eabi-gcc or qemu-system-arm not installed (apt-get install -y "
    "--no-install-recommends gcc-arm-none-eabi qemu-system-arm)"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


ACLE_SHIM = r"""
/* The ACLE DSP intrinsics minitiny's DSP kernels use, for a host C compiler: each written
 * from the pseudo-code of the Arm Architecture Reference Manual (Armv7-M, A7.7: SXTB16,
 * SXTAB16, SMLAD, SMLALD, SMLABB/SMLATT). All arithmetic on uint32_t, so wrap-around is defined. */
#ifndef TEST_ACLE_SHIM_H
#define TEST_ACLE_SHIM_H
#include <stdint.h>
static inline int32_t shim_half(int32_t x, int top)       /* SInt(x<15:0>) or SInt(x<31:16>) */
{
    return (int16_t)(uint16_t)((uint32_t)x >> (top ? 16 : 0));
}
static inline int32_t shim_byte(int32_t x, int i)         /* SInt(x<8i+7:8i>) */
{
    return (int8_t)(uint8_t)((uint32_t)x >> (8 * i));
}
static inline int32_t shim_pack(int32_t lo, int32_t hi)   /* two 16-bit results */
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
static inline int32_t __sxtb16(int32_t x)
{
    return shim_pack(shim_byte(x, 0), shim_byte(x, 2));
}
static inline int32_t __sxtab16(int32_t a, int32_t x)
{
    return shim_pack(shim_half(a, 0) + shim_byte(x, 0), shim_half(a, 1) + shim_byte(x, 2));
}
static inline int32_t __smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(shim_half(a, 0) * shim_half(b, 0))
                     + (uint32_t)(shim_half(a, 1) * shim_half(b, 1)));
}
static inline int64_t __smlald(int32_t a, int32_t b, int64_t acc)   /* 64-bit accumulator */
{
    return (int64_t)((uint64_t)acc + (uint64_t)((int64_t)shim_half(a, 0) * shim_half(b, 0))
                     + (uint64_t)((int64_t)shim_half(a, 1) * shim_half(b, 1)));
}
static inline int32_t __smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(shim_half(a, 0) * shim_half(b, 0)));
}
static inline int32_t __smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(shim_half(a, 1) * shim_half(b, 1)));
}
/* SSUB8 and SEL (Armv7-M A7.7.126, A7.7.111) talk through APSR.GE<3:0>: a global here. */
static unsigned shim_apsr_ge;
static inline int32_t __ssub8(int32_t a, int32_t b)
{
    uint32_t result = 0;
    shim_apsr_ge = 0;
    for (int i = 0; i < 4; ++i) {
        const int32_t diff = shim_byte(a, i) - shim_byte(b, i);    /* SInt - SInt, 9 bits */
        result |= ((uint32_t)diff & 0xFFu) << (8 * i);              /* R[d]<8i+7:8i> = diff<7:0> */
        if (diff >= 0) {
            shim_apsr_ge |= 1u << i;                                /* APSR.GE<i> */
        }
    }
    return (int32_t)result;
}
static inline uint32_t __sel(uint32_t a, uint32_t b)
{
    uint32_t result = 0;
    for (int i = 0; i < 4; ++i) {                                   /* GE<i> ? R[n] : R[m], per byte */
        result |= (((shim_apsr_ge >> i) & 1u ? a : b) & (0xFFu << (8 * i)));
    }
    return result;
}
#endif
"""


def host_dsp(model, x, flags, sanitize=False, variant="dsp", **options):
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="m", variant=variant, **options)
        got = codegen.load(d, flags=flags, sanitize=sanitize)(x)
    want = model.predict_int8(x)
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        raise AssertionError(f"{len(bad)} of {want.size} outputs differ; first at {tuple(bad[0])}: "
                             f"C {got[tuple(bad[0])]}, NumPy {want[tuple(bad[0])]}\n{model.summary()}")


def host_variants(model, x, flags, variants=("reference", "scalar", "dsp", "auto"), sanitize=False):
    """host_dsp for each variant: the DSP one built with `flags` (the ACLE shim), the others
    with none."""
    for variant in variants:
        host_dsp(model, x, flags if variant == "dsp" else (), sanitize=sanitize, variant=variant)


def inputs_for(model, seed, n=8):
    return o.int8_input(np.random.default_rng(seed), model.input.shape, n)




def run_on(model, variant, board, tmp, seed=0, n=6, **options):
    from minitiny import firmware
    d = tempfile.mkdtemp(dir=tmp)
    codegen.generate(model, d, name="m", variant=variant, **options)
    r = firmware.run(d, board=board, inputs=inputs_for(model, seed, n), profile=False)
    assert r.status == "ok", f"{variant} on {board}: {r.message}"
    assert r.matches_reference is True                 # the NumPy int8 reference
    return r


# ---- models and oracles several test files use ------------------------------------------
def requantize_fast(acc, multiplier, right_shift):
    """templates/dsp/helpers.c.j2 requantize_fast, step by step: SMMULR (the Arm ARM: the high word
    of a * b + 2^31) of 2 acc and the multiplier, then the one-line rounding shift."""
    high = (2 * acc * multiplier + (1 << 31)) >> 32
    return (high + (high >> 31) + (1 << (right_shift - 1))) >> right_shift


def folded_layer(bound, r, z, channels=1):
    """A layer whose accumulator bound is `bound` (a bias of that size, zero weights), right
    shift r and output zero point z: what dsp.folded_rounding reads."""
    p = dict(output_shift=np.full(channels, -r), output_multiplier=np.full(channels, 1 << 30),
             output_offset=z)
    return p, np.zeros((channels, 1), np.int8), np.full(channels, bound)


def with_real_multiplier(model, real):
    """The one-op model with its output scale set so that the largest channel's real
    multiplier s_in * s_w / s_out is `real` (>= 1/2: no right shift, fast_requantize refuses)."""
    op = model.ops[0]
    x, w, out = (model.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    out.scale = np.asarray(np.float32(float(x.scale) * float(np.max(w.scale)) / real))
    model.prepare()
    return model


def with_bias(model, value):
    """The one-op model with every bias value set to `value` (the accumulator bound grows)."""
    op = model.ops[0]
    b = model.tensors[op.inputs[2]]
    b.data = np.full_like(b.data, value)
    model.prepare()
    return model
