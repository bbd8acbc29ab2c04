"""Keyword spotting's audio front end: 16-bit PCM -> int8 log-mel features, in integers.

A keyword-spotting model never sees the waveform: it sees a spectrogram, a picture of how
much energy each band of frequencies holds in each 20 ms of sound. This file computes it
twice: once in floating point (`log_mel_float`, the textbook definition) and once with
integers only (`features`), step by step as a Cortex-M without an FPU would, so that the C
that codegen/frontend.py generates from the same tables gives the same int8 bits.

    cfg = FrontendConfig()                    # 8 kHz, 256-sample frames every 160 samples
    q = features(pcm_int16, cfg)              # (49, 20) int8 for one second of audio
    real = q * cfg.feature_scale              # log2(mel energy) - reference, in octaves of power

The integer pipeline, per frame (defaults: 8 kHz, N = 256 = 32 ms, step 160 = 20 ms,
20 mel bands from 125 Hz to 3.8 kHz; the shapes are per frame):

  1. pre-emphasis   y[n] = x[n] * 2^15 - a * x[n-1]     x - 0.97 x[n-1] in Q15, exact int32 (N,)
  2. window         w[n] = y[n] * hann[n]                Hann in Q15: Q30, exact int64       (N,)
  3. block scaling  v = round(w / 2^r), r = bitlength(max |w|) - 14: the frame's peak
                    uses 14 bits; r is the frame's exponent                         (N,) int16
  4. FFT            radix-2 decimation in time, Q15 twiddles, every stage halves (so the
                    modulus never grows and nothing overflows)            (N,) complex int16
  5. power          P[k] = re^2 + im^2, k = 0 .. N/2                               (N/2+1,) int32
  6. mel            E[m] = sum_k weight[m][k] * P[k]   triangular filters, Q15    (M,) uint64
  7. log            log2(E) = (position of the leading one) + table[next 7 bits], Q16
  8. int8           q = clamp(round(8 * (log2(E) + 2 r - GAIN - LOG_REF)), -128, 127)

The block scaling (one exponent shared by the frame's samples: "block floating point") is
how fixed-point FFTs keep quiet frames precise; the exponent comes back out in step 8 as
2 r, because power is amplitude squared. GAIN (`FrontendConfig.gain_log2`) undoes the
fixed scalings of steps 1-6, so that the feature does not depend on them.
TensorFlow Lite Micro's micro_speech front end (tensorflow/lite/experimental/microfrontend/
lib: window_util.c, fft_util.c, filterbank.c, log_scale.c) follows the same plan: a Q15
window, a shift chosen from the frame's largest sample, a 16-bit fixed-point FFT, a
filterbank of squared magnitudes and an integer log. We keep the plan and leave out its
noise reduction and automatic gain control (PCAN), to stay short.

What the int8 feature means: q / 8 = log2(mel energy) - LOG_REF, the energy as
`log_mel_float` defines it (x in int16 units); one step is 1/8 octave of power (0.38 dB),
the int8 range spans 32 octaves (96 dB); a band with no energy at all gives -128. The scale
1/8 is a power of two, so a model trained on q / 8 gets input scale 1/8 and zero point 0
from the quantizer exactly (see `CALIBRATION_EXTREMES`) and the C passes the features
straight in, with no requantization between the front end and the model.

How close the integer pipeline is to the float definition: `features` and
`quantize_float(log_mel_float(...))` agree within 1 int8 step on every band that holds at
least 2^-8 of the frame's total energy (24 dB below it; the total over all FFT bins, from
`power_spectrum_float`), and within 2 steps down to 2^-12 (36 dB). Weaker bands approach
the 16-bit FFT's rounding noise (about one LSB per bin, some 60-70 dB below the frame's
peak: the block scaling ties the noise to the frame's loudest sound). tests/test_audio.py
checks these bounds on real words and drawn signals, and the C against `features` bit for bit.

Every shift of a negative number here is arithmetic (floor), as NumPy's >> is and as
gcc, clang and arm-none-eabi-gcc do in C (C99 leaves it implementation-defined).
"""
import functools
from dataclasses import dataclass

import numpy as np

Q15 = 1 << 15
LOG2_TABLE_BITS = 7          # 128 entries: log2(1 + fraction) to within 0.006 octave
FEATURE_FRACTION_BITS = 3    # features in 1/8 octave


class FrontendError(ValueError):
    """A configuration or an input the front end cannot take: names the field and value."""


@dataclass(frozen=True)
class FrontendConfig:
    """The front end's parameters; every table is computed from these (`tables(cfg)`)."""
    sample_rate: int = 8000      # Hz
    clip_samples: int = 8000     # samples per clip the model sees (1 s)
    frame_length: int = 256      # samples per frame = the FFT size, a power of two (32 ms)
    frame_step: int = 160        # samples between frame starts (20 ms)
    n_mels: int = 20             # mel bands
    fmin: float = 125.0          # Hz, the lowest band's lower edge
    fmax: float = 3800.0         # Hz, the highest band's upper edge (< sample_rate / 2)
    preemphasis: float = 0.97    # y[n] = x[n] - a x[n-1]: lifts the highs speech lacks
    log_ref: int = 24            # log2 energy that maps to feature 0 (see the module doc)

    def __post_init__(self):
        def need(ok, field, why):
            if not ok:
                raise FrontendError(f"FrontendConfig.{field} = {getattr(self, field)!r}: {why}")
        n = self.frame_length
        need(isinstance(n, int) and 8 <= n <= 4096 and n & (n - 1) == 0, "frame_length",
             "must be a power of two from 8 to 4096 (it is the FFT size)")
        need(isinstance(self.frame_step, int) and 1 <= self.frame_step <= n, "frame_step",
             f"must be an integer in [1, frame_length={n}]")
        need(isinstance(self.clip_samples, int) and self.clip_samples >= n, "clip_samples",
             f"must be an integer >= frame_length={n}")
        need(isinstance(self.sample_rate, int) and self.sample_rate > 0, "sample_rate",
             "must be a positive integer (Hz)")
        need(isinstance(self.n_mels, int) and 1 <= self.n_mels <= 128, "n_mels", "must be 1..128")
        need(0 <= self.fmin < self.fmax <= self.sample_rate / 2, "fmax",
             f"need 0 <= fmin ({self.fmin}) < fmax <= sample_rate / 2 ({self.sample_rate / 2})")
        need(0.0 <= self.preemphasis < 1.0, "preemphasis", "must be in [0, 1)")
        need(isinstance(self.log_ref, int) and 0 <= self.log_ref <= 48, "log_ref",
             "must be an integer in [0, 48]")

    @property
    def n_frames(self):
        """Frames per clip: 1 + (clip_samples - frame_length) // frame_step (49 by default)."""
        return 1 + (self.clip_samples - self.frame_length) // self.frame_step

    @property
    def n_bins(self):
        return self.frame_length // 2 + 1

    @property
    def gain_log2(self):
        """log2 of how much larger the integer energies are than the float ones when the
        frame exponent is 0: 2^30 (Q15 pre-emphasis x Q15 window) squared, 2^15 (Q15 mel
        weights), over N^2 (the FFT halves every one of its log2 N stages): 75 - 2 log2 N."""
        return 75 - 2 * (self.frame_length.bit_length() - 1)

    @property
    def feature_shape(self):
        """(frames, mels) per clip: what the model's input is (plus a channel axis)."""
        return (self.n_frames, self.n_mels)

    feature_scale = 1.0 / (1 << FEATURE_FRACTION_BITS)   # real = q * 1/8 (zero point 0)


# The int8 range as real values: a model trained on q * feature_scale gets input scale 1/8
# and zero point 0 from the quantizer when its representative data reach both ends (TFLite's
# rule: scale = (max - min) / 255 = 31.875 / 255 = 1/8 exactly, zero point -128 - min/scale = 0).
CALIBRATION_EXTREMES = (-128 * FrontendConfig.feature_scale, 127 * FrontendConfig.feature_scale)


# ---- the tables (computed once per config; the C gets the same numbers) ------------------
def _q15(x):
    """Reals in [-1, 1] -> Q15 int16, round half away from zero, 1.0 saturating to 32767."""
    x = np.asarray(x, dtype=np.float64) * Q15
    return np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), -Q15, Q15 - 1).astype(np.int16)


def hz_to_mel(f):
    """The HTK mel scale: mel = 2595 log10(1 + f / 700) (O'Shaughnessy, 1987)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_weights(cfg):
    """Triangular filters (n_mels, n_bins), float: band m rises from edge m to edge m + 1
    and falls to edge m + 2, the n_mels + 2 edges equally spaced in mel from fmin to fmax."""
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    freqs = np.arange(cfg.n_bins) * cfg.sample_rate / cfg.frame_length       # (n_bins,) Hz
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]      # (M, 1) each
    rise, fall = (freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)
    return np.maximum(0.0, np.minimum(rise, fall))                           # (M, n_bins)


@dataclass(frozen=True)
class Tables:
    preemphasis_q15: int         # round(0.97 * 2^15)
    window_q15: np.ndarray       # (N,) int16, periodic Hann
    twiddle_cos_q15: np.ndarray  # (N/2,) int16, cos(2 pi k / N)
    twiddle_sin_q15: np.ndarray  # (N/2,) int16, sin(2 pi k / N); W^k = cos - i sin
    bit_reverse: np.ndarray      # (N,) int: the FFT reads its input in bit-reversed order
    mel_first_bin: np.ndarray    # (M,) first FFT bin with a nonzero weight in band m
    mel_n_bins: np.ndarray       # (M,) how many bins band m spans
    mel_offset: np.ndarray       # (M,) where band m's weights start in mel_weights_q15
    mel_weights_q15: np.ndarray  # (sum of mel_n_bins,) int16, the nonzero weights, band by band
    log2_q16: np.ndarray         # (128,) int32: round(2^16 log2(1 + (i + 1/2) / 128))


@functools.lru_cache(maxsize=16)
def tables(cfg):
    """Every constant of the integer pipeline for `cfg` (the C gets exactly these)."""
    n = cfg.frame_length
    k = np.arange(n)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * k / n)                 # periodic: the DFT's period
    angle = 2 * np.pi * np.arange(n // 2) / n
    bits = n.bit_length() - 1
    bit_reverse = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)])
    w = _q15(mel_weights(cfg))                                   # (M, n_bins) int16
    first, count, flat = [], [], []
    for m, row in enumerate(w):
        nz = np.flatnonzero(row)
        if len(nz) == 0:
            raise FrontendError(f"mel band {m} of {cfg.n_mels} covers no FFT bin: with "
                                f"frame_length {n} at {cfg.sample_rate} Hz the bins are "
                                f"{cfg.sample_rate / n:g} Hz apart; use fewer n_mels, a wider "
                                f"fmin..fmax or a longer frame")
        first.append(nz[0])
        count.append(nz[-1] - nz[0] + 1)
        flat.append(row[nz[0]:nz[-1] + 1])
    offset = np.concatenate([[0], np.cumsum(count)[:-1]])
    i = np.arange(1 << LOG2_TABLE_BITS)
    log2_table = np.floor(65536 * np.log2(1 + (i + 0.5) / (1 << LOG2_TABLE_BITS)) + 0.5)
    return Tables(int(_q15(cfg.preemphasis)), _q15(hann), _q15(np.cos(angle)), _q15(np.sin(angle)),
                  bit_reverse, np.array(first), np.array(count), offset,
                  np.concatenate(flat).astype(np.int16), log2_table.astype(np.int32))


# ---- the float reference: the definition, in a few lines of NumPy --------------------------
def _check_pcm(pcm, cfg):
    pcm = np.asarray(pcm)
    if pcm.ndim != 1:
        raise FrontendError(f"PCM must be one channel, shape (n_samples,), got shape {pcm.shape}")
    if pcm.dtype != np.int16:
        raise FrontendError(f"PCM must be int16 samples, got dtype {pcm.dtype} "
                            f"(float audio: np.round(x * 32767).astype(np.int16))")
    if len(pcm) < cfg.frame_length:
        raise FrontendError(f"PCM has {len(pcm)} samples, fewer than one frame ({cfg.frame_length})")
    return pcm


def frame_starts(n_samples, cfg):
    return np.arange(0, n_samples - cfg.frame_length + 1, cfg.frame_step)    # (F,)


def power_spectrum_float(pcm, cfg=FrontendConfig()):
    """|FFT(hann * pre(x))|^2 per frame, float64 (F, N/2 + 1); pre(x)[n] = x[n] - a x[n-1],
    x in int16 units."""
    x = _check_pcm(pcm, cfg).astype(np.float64)
    pre = x - cfg.preemphasis * np.concatenate([[0.0], x[:-1]])
    starts = frame_starts(len(x), cfg)
    frames = pre[starts[:, None] + np.arange(cfg.frame_length)]              # (F, N)
    n = cfg.frame_length
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    return np.abs(np.fft.rfft(frames * hann, axis=1)) ** 2                   # (F, N/2 + 1)


def log_mel_float(pcm, cfg=FrontendConfig()):
    """The definition, in float64: (F, M) log2 mel energies relative to the reference,
        f = log2(sum_k weight[m][k] |FFT(hann * pre(x))[k]|^2) - LOG_REF.
    An all-silent band gives -inf."""
    energy = power_spectrum_float(pcm, cfg) @ mel_weights(cfg).T             # (F, M)
    with np.errstate(divide="ignore"):
        return np.log2(energy) - cfg.log_ref


def quantize_float(f):
    """Float features -> int8 the way step 8 rounds: floor(8 f + 1/2), clamped; -inf -> -128."""
    q = np.floor(np.asarray(f, dtype=np.float64) * (1 << FEATURE_FRACTION_BITS) + 0.5)
    return np.clip(np.nan_to_num(q, neginf=-128, posinf=127), -128, 127).astype(np.int8)


# ---- the integer pipeline, step by step (the C does exactly this) ---------------------------
def preemphasis(x, t):
    """y[n] = x[n] * 2^15 - a_q15 * x[n-1]: x[n] - 0.97 x[n-1] in Q15, exact in int32
    (|y| <= 32768 * (32768 + 31785) < 2^31)."""
    x = x.astype(np.int64)
    prev = np.concatenate([[0], x[:-1]])
    return x * Q15 - t.preemphasis_q15 * prev                                # (n,)


def window(frames, t):
    """w = y * hann_q15: the window, exact in int64 (|w| < 2^46), Q30."""
    return frames * t.window_q15.astype(np.int64)                           # (F, N)


def bit_length(v):
    """The number of bits of each non-negative int64 (0 for 0): floor(log2 v) + 1."""
    v = np.asarray(v, dtype=np.int64)
    n = np.zeros(v.shape, dtype=np.int64)
    for s in (32, 16, 8, 4, 2, 1):              # binary search, as the C's loop does
        big = (v >> s) > 0
        n += np.where(big, s, 0)
        v = np.where(big, v >> s, v)
    return n + (v > 0)


def block_scale(w):
    """Round each frame to 14 bits: (round(w / 2^r), r) with r = bitlength(max |w|) - 14
    (0 if the frame is that quiet already). The frame's exponent r is the shared scale of
    all its samples: block floating point."""
    r = np.maximum(bit_length(np.abs(w).max(axis=1)) - 14, 0)[:, None]      # (F, 1)
    half = np.where(r > 0, np.int64(1) << np.maximum(r - 1, 0), 0)
    return (w + half) >> r, r[:, 0]                                          # (F, N), (F,)


def fft_q15(x, t):
    """Radix-2 decimation-in-time FFT of real int frames (F, N) -> (re, im), each (F, N).

    Butterfly, per stage, with W = cos - i sin from the Q15 tables:
        t' = round(b W / 2^15)           (int32 products: |b| < 2^14 + 8, |W| <= 2^15)
        a  <- floor((a + t' + 1) / 2),   b <- floor((a - t' + 1) / 2)
    Halving every stage keeps |a|, |b| (the complex moduli) from growing, so 14-bit inputs
    never overflow int16; the output is FFT(x) / N, plus rounding noise of about one LSB.
    (Cooley & Tukey 1965; the in-place, bit-reversed form as in Numerical Recipes 12.2.)
    """
    n = x.shape[1]
    re = x[:, t.bit_reverse].astype(np.int64)
    im = np.zeros_like(re)
    size = 2
    while size <= n:
        half, step = size // 2, n // size
        w_re = t.twiddle_cos_q15[::step][:half].astype(np.int64)           # (half,)
        w_im = -t.twiddle_sin_q15[::step][:half].astype(np.int64)
        r, i = re.reshape(len(re), n // size, size), im.reshape(len(im), n // size, size)
        a_re, a_im, b_re, b_im = r[..., :half], i[..., :half], r[..., half:], i[..., half:]
        t_re = (b_re * w_re - b_im * w_im + (1 << 14)) >> 15
        t_im = (b_re * w_im + b_im * w_re + (1 << 14)) >> 15
        r[..., :half], r[..., half:] = (a_re + t_re + 1) >> 1, (a_re - t_re + 1) >> 1
        i[..., :half], i[..., half:] = (a_im + t_im + 1) >> 1, (a_im - t_im + 1) >> 1
        size *= 2
    return re, im


def mel_energies(power, t):
    """E[m] = sum over band m's bins of weight_q15 * P[k]: (F, n_bins) -> (F, M), < 2^63."""
    e = np.zeros((len(power), len(t.mel_first_bin)), dtype=np.int64)
    for m, (first, count, off) in enumerate(zip(t.mel_first_bin, t.mel_n_bins, t.mel_offset)):
        w = t.mel_weights_q15[off:off + count].astype(np.int64)            # (count,)
        e[:, m] = power[:, first:first + count] @ w
    return e


def log2_q16(e, t):
    """log2(e) in Q16 for e > 0: the leading one's position, plus log2 of the mantissa
    1.b1b2...b7 from the 128-entry table (0 where e == 0; the caller handles that)."""
    e = np.asarray(e, dtype=np.int64)
    top = bit_length(e) - 1                                                  # floor(log2 e)
    b = LOG2_TABLE_BITS
    index = np.where(top >= b, e >> np.maximum(top - b, 0), e << np.maximum(b - top, 0)) & ((1 << b) - 1)
    return top * 65536 + t.log2_q16[index]


def features(pcm, cfg=FrontendConfig()):
    """int16 PCM (n,) -> int8 log-mel features (F, M), F = 1 + (n - N) // step.

    Integers only; the generated C (codegen/frontend.py) computes the same bits."""
    pcm = _check_pcm(pcm, cfg)
    t = tables(cfg)
    y = preemphasis(pcm, t)                                                  # (n,)
    starts = frame_starts(len(pcm), cfg)
    frames = y[starts[:, None] + np.arange(cfg.frame_length)]                # (F, N)
    scaled, exponent = block_scale(window(frames, t))                        # (F, N), (F,)
    re, im = fft_q15(scaled, t)
    power = re[:, :cfg.n_bins] ** 2 + im[:, :cfg.n_bins] ** 2                # (F, N/2 + 1)
    e = mel_energies(power, t)                                               # (F, M)
    # log2 of the energy as log_mel_float defines it, minus log_ref, in Q16 (module doc)
    level = log2_q16(e, t) + (2 * exponent[:, None] - cfg.gain_log2 - cfg.log_ref) * 65536
    q = (level + (1 << (15 - FEATURE_FRACTION_BITS))) >> (16 - FEATURE_FRACTION_BITS)
    return np.where(e > 0, np.clip(q, -128, 127), -128).astype(np.int8)


def clip(pcm, cfg=FrontendConfig(), offset=0):
    """A clip of exactly cfg.clip_samples int16 samples: the word placed at `offset`
    (negative: its start cut off), zeros around it."""
    pcm = np.asarray(pcm)
    out = np.zeros(cfg.clip_samples, dtype=np.int16)
    src0, dst0 = max(0, -offset), max(0, offset)
    n = max(0, min(len(pcm) - src0, cfg.clip_samples - dst0))
    out[dst0:dst0 + n] = pcm[src0:src0 + n]
    return out


def features_batch(clips, cfg=FrontendConfig()):
    """Many clips of clip_samples each -> (N, frames, mels, 1) int8, the model's input."""
    clips = np.asarray(clips)
    if clips.ndim != 2 or clips.shape[1] != cfg.clip_samples:
        raise FrontendError(f"clips must be (N, {cfg.clip_samples}) int16, got {clips.shape}")
    return np.stack([features(c, cfg) for c in clips])[..., None]
