"""The audio front end: integer NumPy vs independent oracles, and the generated C vs NumPy.

Oracles: np.fft.fft for the fixed-point FFT, math.log2 for the integer log, Python's
int.bit_length, the float definition (audio.log_mel_float: np.fft + float mel weights)
for the whole pipeline, the mel formula for where a pure tone must land; then the generated
C (codegen/frontend.py) must equal the NumPy integer pipeline bit for bit, also under
AddressSanitizer + UBSan, and the PCM -> class pipeline must equal NumPy's front end
followed by QModel.predict_int8.
"""
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitiny import audio

CFG = audio.FrontendConfig()
T = audio.tables(CFG)


def cc_or_skip():
    cc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    return cc


def signals(draw_rng, n=CFG.clip_samples):
    """A mixture of tones and noise at a drawn level, int16."""
    t = np.arange(n)
    x = np.zeros(n)
    for _ in range(draw_rng.integers(1, 5)):
        x += draw_rng.uniform(0, 1) * np.sin(2 * np.pi * draw_rng.uniform(20, 3990) * t / 8000
                                             + draw_rng.uniform(0, 2 * np.pi))
    x = x / max(np.abs(x).max(), 1e-9) * 10 ** draw_rng.uniform(0, 4.5)
    x += draw_rng.normal(0, 10 ** draw_rng.uniform(-1, 3.5), n)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


# ---- the pieces against their oracles ------------------------------------------------------
@given(st.lists(st.integers(0, (1 << 62)), min_size=1, max_size=50))
def test_bit_length_matches_python(values):
    assert audio.bit_length(np.array(values)).tolist() == [v.bit_length() for v in values]


@given(st.lists(st.integers(1, (1 << 62)), min_size=1, max_size=50))
def test_log2_q16_within_the_table_error(values):
    # The table holds log2 at the middle of each of 128 mantissa cells: the error is at most
    # half a cell times the steepest slope of log2(1 + m), 1/(256 ln 2) = 0.0056, plus the
    # table's own rounding (2^-17).
    got = audio.log2_q16(np.array(values), T) / 65536
    want = np.array([math.log2(v) for v in values])
    assert np.abs(got - want).max() <= 1 / (256 * math.log(2)) + 2 ** -17


@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(["random", "full", "square", "impulse"]))
def test_fft_q15_is_the_dft_over_n_within_the_rounding_bound(seed, kind):
    # Inputs below 2^14 as the block scaling leaves them. Per stage the butterfly adds at most
    # sqrt(2)/2 (rounding t), 2^14 * 2^-16 (twiddle rounding), both halved, and sqrt(2)/2 (the
    # halving): < 1.31 LSB of modulus; the halving keeps earlier errors from growing, so after
    # 8 stages every bin is within 8 * 1.31 < 12 LSB of the exact DFT / 256.
    rng = np.random.default_rng(seed)
    n = CFG.frame_length
    if kind == "random":
        x = rng.integers(-16384, 16385, size=(4, n))
    elif kind == "full":
        x = np.full((4, n), 16384) * rng.choice([-1, 1], size=(4, 1))
    elif kind == "square":
        x = (16384 * np.sign(np.sin(2 * np.pi * rng.uniform(1, 127) * np.arange(n) / n))).astype(np.int64)[None]
    else:
        x = np.zeros((1, n), np.int64)
        x[0, rng.integers(n)] = rng.choice([-16384, 16384])
    re, im = audio.fft_q15(x, T)
    exact = np.fft.fft(x, axis=1) / n
    assert np.abs((re + 1j * im) - exact).max() < 12
    assert max(np.abs(re).max(), np.abs(im).max()) <= 16384 + 12       # int16 never overflows


def test_a_pure_tone_lands_in_the_band_centred_nearest_it():
    # Independent of the tables: the band centres from the mel formula alone.
    centres = 700 * (10 ** (np.linspace(2595 * np.log10(1 + CFG.fmin / 700), 2595 * np.log10(1 + CFG.fmax / 700),
                                        CFG.n_mels + 2)[1:-1] / 2595) - 1)
    t = np.arange(CFG.clip_samples)
    for band in (2, 9, 17):
        x = np.round(8000 * np.sin(2 * np.pi * centres[band] * t / CFG.sample_rate)).astype(np.int16)
        q = audio.features(x, CFG)
        assert (q[5:-5].argmax(axis=1) == band).all()


def test_silence_is_the_bottom_of_the_scale_and_loudness_moves_every_band_together():
    assert (audio.features(np.zeros(CFG.clip_samples, np.int16), CFG) == -128).all()
    # 4x the amplitude is 16x the power: 4 octaves, 32 steps of 1/8, in every strong band
    rng = np.random.default_rng(3)
    x = rng.normal(0, 200, CFG.clip_samples)
    quiet = audio.features(np.round(x).astype(np.int16), CFG).astype(int)
    loud = audio.features(np.round(4 * x).astype(np.int16), CFG).astype(int)
    assert np.abs((loud - quiet) - 32).max() <= 2


# ---- the integer pipeline against the float definition -------------------------------------
def _differences(x, cfg=CFG):
    """|int - float| in int8 steps, and each band's level relative to its frame's total
    energy (octaves), for the bands inside the int8 range."""
    q = audio.features(x, cfg).astype(int)
    f = audio.log_mel_float(x, cfg)
    qf = audio.quantize_float(f).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.log2(audio.power_spectrum_float(x, cfg).sum(axis=1)) - cfg.log_ref     # (F,)
        rel = f - total[:, None]
    inside = np.isfinite(rel) & (qf > -128) & (qf < 127)
    return np.abs(q - qf)[inside], rel[inside]


def _check_documented_bound(x):
    diff, rel = _differences(x)
    assert diff[rel >= -8].max(initial=0) <= 1, "more than 1 step on a band within 24 dB of the frame"
    assert diff[rel >= -12].max(initial=0) <= 2, "more than 2 steps on a band within 36 dB of the frame"


@given(st.integers(0, 2 ** 32 - 1))
def test_integer_features_follow_the_float_definition_on_drawn_signals(seed):
    _check_documented_bound(signals(np.random.default_rng(seed)))


def test_integer_features_follow_the_float_definition_on_real_words():
    mt = pytest.importorskip("minitiny")
    try:
        words = mt.datasets.load_speech_words()
    except mt.datasets.DataMissingError as e:
        pytest.skip(str(e))
    for x in words.x:
        _check_documented_bound(audio.clip(x, CFG))


# ---- bad input -----------------------------------------------------------------------------
def test_bad_configs_and_inputs_name_the_problem():
    with pytest.raises(audio.FrontendError, match="frame_length"):
        audio.FrontendConfig(frame_length=300)
    with pytest.raises(audio.FrontendError, match="fmax"):
        audio.FrontendConfig(fmax=5000.0)
    with pytest.raises(audio.FrontendError, match="mel band .* covers no FFT bin"):
        audio.tables(audio.FrontendConfig(n_mels=120))
    with pytest.raises(audio.FrontendError, match="int16"):
        audio.features(np.zeros(8000, np.float32))
    with pytest.raises(audio.FrontendError, match="fewer than one frame"):
        audio.features(np.zeros(100, np.int16))
    with pytest.raises(audio.FrontendError, match="one channel"):
        audio.features(np.zeros((8000, 2), np.int16))


# ---- the generated C ----------------------------------------------------------------------
OTHER = audio.FrontendConfig(sample_rate=16000, clip_samples=4000, frame_length=512, frame_step=320,
                             n_mels=32, fmin=60.0, fmax=7600.0, preemphasis=0.0, log_ref=20)


@pytest.fixture(scope="module", params=[CFG, OTHER], ids=["default", "16kHz-512"])
def c_frontend(request, tmp_path_factory):
    cc_or_skip()
    from minitiny.codegen import frontend
    out = tmp_path_factory.mktemp("frontend")
    frontend.generate_frontend(request.param, out, "fe")
    return request.param, frontend.load_frontend(out, "fe", request.param), out


def _extreme_clips(cfg):
    n = cfg.clip_samples
    alternating = np.full(n, -32768, np.int16)
    alternating[::2] = 32767
    return [np.zeros(n, np.int16), np.full(n, -32768, np.int16), np.full(n, 32767, np.int16), alternating,
            np.where(np.arange(n) % 7 == 0, 1, 0).astype(np.int16)]


def test_c_front_end_equals_numpy_on_extremes(c_frontend):
    cfg, fe, _ = c_frontend
    clips = np.stack(_extreme_clips(cfg))
    assert np.array_equal(fe(clips), np.stack([audio.features(c, cfg) for c in clips]))


@given(st.integers(0, 2 ** 32 - 1))
def test_c_front_end_equals_numpy_on_drawn_signals(c_frontend, seed):
    cfg, fe, _ = c_frontend
    rng = np.random.default_rng(seed)
    x = signals(rng, cfg.clip_samples) if seed % 2 else \
        rng.integers(-32768, 32768, cfg.clip_samples).astype(np.int16) >> rng.integers(0, 16)
    x = x.astype(np.int16)
    assert np.array_equal(fe(x), audio.features(x, cfg))


SANITIZER_MAIN = r"""
#include <stdio.h>
#include <stdint.h>
#include "fe_frontend.h"
/* test driver: PCM clips from argv[1] (int16), features to argv[2] (int8) */
int main(int argc, char **argv)
{
    static int16_t pcm[FE_FRONTEND_CLIP_SAMPLES];
    static int8_t features[FE_FRONTEND_FRAMES * FE_FRONTEND_MELS];
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    (void)argc;
    while (fread(pcm, sizeof pcm, 1, in) == 1) {
        fe_frontend(pcm, features);
        fwrite(features, sizeof features, 1, out);
    }
    fclose(in);
    fclose(out);
    return 0;
}
"""


def test_c_front_end_has_no_undefined_behaviour(c_frontend, tmp_path):
    """-fsanitize=address,undefined on the extremes (signed overflow, shifts, bounds)."""
    cfg, _, out = c_frontend
    cc = cc_or_skip()
    (tmp_path / "main.c").write_text(SANITIZER_MAIN)
    exe = tmp_path / "fe"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
             "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    p = subprocess.run([cc, *flags, "-I", str(out), str(out / "fe_frontend.c"), str(tmp_path / "main.c"),
                        "-o", str(exe)], capture_output=True, text=True)
    if p.returncode and "sanitize" in p.stderr:
        pytest.skip(f"the compiler has no sanitizers: {p.stderr[-200:]}")
    assert p.returncode == 0, p.stderr
    clips = np.stack(_extreme_clips(cfg) + [signals(np.random.default_rng(1), cfg.clip_samples)])
    clips.astype("<i2").tofile(tmp_path / "in.bin")
    r = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True,
                       text=True, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert r.returncode == 0 and "runtime error" not in r.stderr, r.stderr
    got = np.fromfile(tmp_path / "out.bin", np.int8).reshape((len(clips),) + cfg.feature_shape)
    assert np.array_equal(got, np.stack([audio.features(c, cfg) for c in clips]))


# ---- PCM -> class: front end + model in one C program --------------------------------------
def _tiny_kws_qmodel(cfg, scale_ok=True):
    import minitiny as mt
    from minitiny.layers import Conv2D, Dense, Flatten, MaxPooling2D
    mt.random.seed(0)
    model = mt.Sequential([Conv2D(4, 3, strides=2, activation="relu", input_shape=cfg.feature_shape + (1,)),
                           MaxPooling2D(), Flatten(), Dense(5, activation="softmax")])
    rng = np.random.default_rng(0)
    x = np.stack([audio.features(signals(rng), cfg) for _ in range(8)])[..., None] * np.float32(cfg.feature_scale)
    if scale_ok:
        x = np.concatenate([x] + [np.full((1,) + x.shape[1:], v, np.float32) for v in audio.CALIBRATION_EXTREMES])
    return mt.quantize(model, x)


def test_pipeline_pcm_to_scores_equals_numpy(tmp_path):
    cc_or_skip()
    from minitiny.codegen import frontend
    qmodel = _tiny_kws_qmodel(CFG)
    assert float(qmodel.input.scale) == CFG.feature_scale and int(qmodel.input.zero_point) == 0
    frontend.generate_pipeline(CFG, qmodel, tmp_path, "kws")
    run = frontend.load_pipeline(tmp_path, "kws")
    rng = np.random.default_rng(7)
    clips = np.stack([signals(rng) for _ in range(6)] + _extreme_clips(CFG)[:3])
    want = qmodel.predict_int8(np.stack([audio.features(c, CFG) for c in clips])[..., None])
    assert np.array_equal(run(clips), want)
    assert np.array_equal(run(clips, as_bytes=True), want)         # the firmware's entry point


def test_pipeline_refuses_a_model_whose_input_is_not_the_features(tmp_path):
    from minitiny.codegen import frontend
    with pytest.raises(frontend.FrontendCodegenError, match="scale .* zero point"):
        frontend.generate_pipeline(CFG, _tiny_kws_qmodel(CFG, scale_ok=False), tmp_path, "kws")
    with pytest.raises(frontend.FrontendCodegenError, match="front end gives"):
        frontend.generate_pipeline(OTHER, _tiny_kws_qmodel(CFG), tmp_path, "kws")
