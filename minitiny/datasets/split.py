"""Two helpers the loaders share: a seeded stratified split and padding of ragged series."""
import numpy as np


def stratified_split(y, test_fraction, seed):
    """Indices (train, test): from each class, round(test_fraction * n_class) cases go to test.

    Stratifying keeps the class balance of both parts equal to the whole's; the seed makes
    the split the same on every machine. Both index arrays come back in a seeded random
    order, so the classes are interleaved.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test_fraction * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def pad_sequences(seqs, maxlen=None, value=0.0):
    """A list of (T_i, F) arrays -> (N, maxlen, F) float32, padded or cut at the end.

    Like Keras' `pad_sequences(..., padding='post', truncating='post')`: every sequence
    starts at step 0, so the onsets of the recordings line up. `maxlen=None` pads to the
    longest.
    """
    if maxlen is None:
        maxlen = max(len(s) for s in seqs)
    if maxlen < 1:
        raise ValueError(f"maxlen must be >= 1, got {maxlen}")
    out = np.full((len(seqs), maxlen, seqs[0].shape[1]), value, dtype=np.float32)  # (N, maxlen, F)
    for i, s in enumerate(seqs):
        n = min(len(s), maxlen)
        out[i, :n] = s[:n]
    return out


def sequences(seqs, ragged, maxlen):
    """What the variable-length loaders return: the list itself, or the padded array."""
    return [np.asarray(s, dtype=np.float32) for s in seqs] if ragged else pad_sequences(seqs, maxlen)
