"""Keras' model files (minitiny/keras_format.py) and honest extensions (minitiny/saving.py).

Oracles: files Keras 3 saved itself (tests/data/keras, made by make_keras_files.py there)
with the outputs Keras' predict gave; and Keras itself (PyTorch backend, in a subprocess)
loading the .keras and .h5 files minitiny writes. Keras 2 (tf_keras 2.21, TensorFlow 2.21,
in an environment of its own) loaded the .h5 files of `_models()` once and predicted what
minitiny predicts (largest difference 1.2e-7).
"""
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import minitiny as mt
from minitiny.saving import ModelFileError

L = mt.layers
DATA = os.path.join(os.path.dirname(__file__), "data", "keras")
pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(DATA, "expected.npz")) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("name", ["image_cnn", "residual"])
@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_models_saved_by_keras_load_and_predict_as_keras(expected, name, ext):
    model = mt.load_model(os.path.join(DATA, f"{name}.{ext}"))
    np.testing.assert_allclose(model.predict(expected[f"{name}_x"]), expected[f"{name}_y"],
                               rtol=1e-5, atol=1e-6)


def test_a_loaded_keras_model_fine_tunes_and_quantizes(expected):
    model = mt.load_model(os.path.join(DATA, "image_cnn.keras"))
    x = expected["image_cnn_x"]
    model.compile(optimizer="adam", loss="binary_crossentropy")
    before = model.evaluate(x, np.array([0, 1, 0, 1]))
    model.fit(x, np.array([0, 1, 0, 1]), epochs=5, verbose=0)
    assert model.evaluate(x, np.array([0, 1, 0, 1])) < before
    q = mt.quantize(model, x)                   # Rescaling folded, RandomFlip gone
    assert [op.kind for op in q.ops][:2] == ["conv_2d", "max_pool_2d"]


def test_layers_and_arguments_minitiny_lacks_are_all_named():
    with pytest.raises(ModelFileError) as e:
        mt.load_model(os.path.join(DATA, "unsupported.keras"))
    assert "dilation_rate=[2, 2]" in str(e.value) and "LayerNormalization" in str(e.value)


def _models():
    mt.random.seed(0)
    seq = mt.Sequential([L.Input((8, 8, 3)), L.RandomFlip("horizontal", seed=1),
                         L.Rescaling(1 / 255), L.Conv2D(4, 3, activation="relu", padding="same"),
                         L.BatchNormalization(), L.MaxPooling2D(), L.DepthwiseConv2D(3),
                         L.GlobalAveragePooling2D(), L.Dropout(0.2), L.Dense(3, "softmax")])
    seq.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 3)).astype(np.float32)
    seq.fit(x, np.arange(16) % 3, epochs=2, verbose=0)          # moving statistics move
    inp = L.Input((6,))
    a = L.Dense(6, name="first")(inp)
    out = L.Dense(2)(L.ReLU()(L.Add()([a, inp])))
    fun = mt.Model(inp, out)
    return [(seq, x), (fun, np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32))]


def test_keras_files_minitiny_writes_round_trip(tmp_path):
    for i, (model, x) in enumerate(_models()):
        path = tmp_path / f"m{i}.keras"
        model.save(path)
        with zipfile.ZipFile(path) as z:
            assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
            config = json.loads(z.read("config.json"))
        assert config["class_name"] == ("Sequential" if i == 0 else "Functional")
        again = mt.load_model(path)
        np.testing.assert_array_equal(again.predict(x), model.predict(x))


KERAS_LOADS = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    try:
        import keras, torch
    except ImportError:
        sys.exit(3)
    for path in sys.argv[1:]:
        io = np.load(path + ".npz")
        got = keras.models.load_model(path).predict(io["x"], verbose=0)
        print(path, float(np.abs(got - io["y"]).max()))
""")


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_keras_loads_the_keras_files_minitiny_writes(tmp_path, ext):
    paths = []
    for i, (model, x) in enumerate(_models()):
        path = str(tmp_path / f"m{i}.{ext}")
        model.save(path)
        np.savez(path + ".npz", x=x, y=model.predict(x))
        paths.append(path)
    r = subprocess.run([sys.executable, "-c", KERAS_LOADS] + paths, capture_output=True,
                       text=True, timeout=300)
    if r.returncode == 3:
        pytest.skip("Keras 3 with the PyTorch backend is not installed (the test extra has it)")
    assert r.returncode == 0, r.stderr[-3000:]
    errors = [float(line.split()[-1]) for line in r.stdout.splitlines()]
    assert len(errors) == 2 and max(errors) < 1e-5


def test_h5_files_minitiny_writes_have_keras_2s_layout_and_round_trip(tmp_path):
    import h5py
    for i, (model, x) in enumerate(_models()):
        path = tmp_path / f"m{i}.h5"
        model.save(path)
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
            group = f["model_weights"]
            text = lambda a: [n.decode() if isinstance(n, bytes) else n for n in a]  # noqa: E731
            names = text(group.attrs["layer_names"])
            first = config["config"]["layers"][0]["config"]
            weighted = [layer for layer in model.layers if layer.weights][0]
            listed = text(group[weighted.name].attrs["weight_names"])
            stored = [np.asarray(group[weighted.name][n]) for n in listed]
        assert config["class_name"] == ("Sequential" if i == 0 else "Functional")
        assert first["batch_input_shape"] == [None] + list(model.input_shape)
        assert names == [layer.name for layer in model.layers] if i == 0 else \
            names == [model._input_layer.name] + [layer.name for layer in model.layers]
        assert listed == [f"{weighted.name}/{n}:0" for n in weighted.weights]
        for a, b in zip(stored, weighted.get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(mt.load_model(path).predict(x), model.predict(x))


@pytest.mark.parametrize("name, message", [
    ("saved_model_dir", "no extension"), ("m.pkl", "extension '.pkl'")])
def test_save_refuses_what_the_extension_would_lie_about(tmp_path, name, message):
    model = mt.Sequential([L.Dense(2, input_shape=[3])])
    with pytest.raises(ValueError, match=message) as e:
        model.save(tmp_path / name)
    assert "'.npz'" in str(e.value) and "'.keras'" in str(e.value) and "'.h5'" in str(e.value)
    assert not os.path.exists(tmp_path / name)


def test_checkpoint_refuses_a_bad_extension_before_training():
    with pytest.raises(ValueError, match="extension '.pb'"):
        mt.callbacks.ModelCheckpoint("best_model.pb")
    mt.callbacks.ModelCheckpoint("best_{epoch:02d}.keras")
    mt.callbacks.ModelCheckpoint("best_model.h5")             # the course's name: written


def test_load_refuses_folders_and_names_the_missing_h5py(tmp_path, monkeypatch):
    (tmp_path / "saved_model_dir").mkdir()
    with pytest.raises(ModelFileError, match="folder"):
        mt.load_model(tmp_path / "saved_model_dir")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"minitiny\[keras\]"):
        mt.load_model(os.path.join(DATA, "residual.keras"))


def test_damaged_keras_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFileError, match="bad.keras"):
        mt.load_model(bad)
    weights_only = tmp_path / "w.h5"
    import h5py
    with h5py.File(weights_only, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ModelFileError, match="weights only"):
        mt.load_model(weights_only)
