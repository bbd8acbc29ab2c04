"""Real data sets, read from a local cache; `minitiny-data fetch NAME` fills the cache.

    import minitiny as mt
    (x_train, y_train), (x_test, y_test) = mt.datasets.load_mnist()

Loaders never download: each reads `$MINITINY_DATA/<name>/` (default ~/.cache/minitiny),
checks the SHA-256 pinned in `registry.py`, and when a file is missing raises
`DataMissingError` with the exact fetch command. A present but bad file (truncated,
corrupt, wrong version) raises `DatasetError`, a ValueError naming the file.

The parsers are small and part of the lesson: `idx.py` (MNIST's IDX), `ts.py` (the
time-series archive's .ts), `wav.py` (RIFF/WAVE PCM). `registry.get(name).classes` gives
any set's class names in label order; `python -m minitiny.datasets list` shows them all.
"""
from .audio import Recordings, load_speech_words, load_spoken_digits
from .cache import data_dir
from .errors import DataMissingError, DatasetError
from .fetch import FetchError, fetch
from .idx import parse_idx
from .images import load_faces, load_fashion_mnist, load_mnist
from .registry import DATASETS, get as info
from .synthetic import (VIBRATION_KINDS, load_linear, load_sine, load_vibration_anomaly,
                        make_spirals, make_vibration)
from .timeseries import load_acsf1_anomaly, load_basic_motions, load_pickup_gestures, load_watch
from .ts import TsData, parse_ts
from .wav import parse_wav, read_wav

__all__ = [
    "load_mnist", "load_fashion_mnist", "load_faces",
    "load_spoken_digits", "load_speech_words", "Recordings",
    "load_watch", "load_basic_motions", "load_pickup_gestures", "load_acsf1_anomaly",
    "load_linear", "load_sine", "load_vibration_anomaly", "make_spirals", "make_vibration",
    "VIBRATION_KINDS",
    "fetch", "data_dir", "info", "DATASETS",
    "DatasetError", "DataMissingError", "FetchError",
    "parse_idx", "parse_ts", "TsData", "parse_wav", "read_wav",
]
