"""save_weights / load_weights: minitiny's .weights.npz and Keras 3's .weights.h5 (which
Keras itself loads, checked in a subprocess when Keras 3 is installed)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minitiny as mt
from minitiny.saving import ModelFileError

L = mt.layers


def model(seed):
    mt.random.seed(seed)
    return mt.Sequential([L.Conv2D(3, 3, activation="relu", input_shape=(6, 6, 2)),
                          L.BatchNormalization(), L.Flatten(), L.Dense(4, activation="softmax")])


@pytest.mark.parametrize("name", ["w.weights.npz", "w.npz", "w.weights.h5"])
def test_round_trip_into_a_fresh_model(tmp_path, name):
    if name.endswith(".h5"):
        pytest.importorskip("h5py")
    a, b = model(0), model(1)
    x = np.random.default_rng(2).normal(size=(5, 6, 6, 2)).astype(np.float32)
    assert not np.array_equal(a.predict(x), b.predict(x))
    a.save_weights(tmp_path / name)
    b.load_weights(tmp_path / name)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_weights_come_from_a_whole_model_file_too(tmp_path):
    a, b = model(0), model(1)
    a.save(tmp_path / "m.npz")
    b.load_weights(tmp_path / "m.npz")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_wrong_files_and_names_are_refused(tmp_path):
    a = model(0)
    with pytest.raises(ValueError, match="minitiny saves weights as 'NAME.weights.npz'.*"
                                         "Keras 3 also insists on '.weights.h5'"):
        a.save_weights(tmp_path / "w.h5")
    other = mt.Sequential([L.Dense(3, input_shape=(2,))])
    other.save_weights(tmp_path / "small.weights.npz")
    before = a.get_weights()
    with pytest.raises(ModelFileError, match="small.weights.npz.*has 8 weight arrays .*got 2"):
        a.load_weights(tmp_path / "small.weights.npz")
    assert all(np.array_equal(p, q) for p, q in zip(before, a.get_weights()))   # untouched
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="junk.npz"):
        a.load_weights(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="nope.weights.npz"):
        a.load_weights(tmp_path / "nope.weights.npz")


KERAS_LOADS_WEIGHTS = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    try:
        import keras, torch
    except ImportError:
        sys.exit(3)
    arch, weights, data = sys.argv[1:]
    m = keras.models.load_model(arch)
    m.load_weights(weights)
    io = np.load(data)
    print(float(np.abs(m.predict(io["x"], verbose=0) - io["y"]).max()))
""")


def test_keras_loads_the_weights_minitiny_saves(tmp_path):
    pytest.importorskip("h5py")
    a, b = model(0), model(1)
    x = np.random.default_rng(3).normal(size=(4, 6, 6, 2)).astype(np.float32)
    b.save(tmp_path / "arch.keras")                       # another model's weights inside
    a.save_weights(tmp_path / "a.weights.h5")
    np.savez(tmp_path / "io.npz", x=x, y=a.predict(x))
    r = subprocess.run([sys.executable, "-c", KERAS_LOADS_WEIGHTS, str(tmp_path / "arch.keras"),
                        str(tmp_path / "a.weights.h5"), str(tmp_path / "io.npz")],
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 3:
        pytest.skip("Keras 3 with the PyTorch backend is not installed (the test extra has it)")
    assert r.returncode == 0, r.stderr[-3000:]
    assert float(r.stdout.split()[-1]) < 1e-5
