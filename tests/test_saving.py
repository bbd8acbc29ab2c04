"""Saving and loading: one .npz, identical predictions after a round trip, compile settings
restored, clear errors for damaged or foreign files, and atomic writes."""
import json
import os

import numpy as np
import pytest

import minitiny as mt
from minitiny import layers as L
from minitiny.saving import ModelFileError


def small_model(seed=0):
    mt.random.seed(seed)
    model = mt.Sequential([L.Conv2D(3, 3, activation="relu", input_shape=(6, 6, 2)),
                           L.BatchNormalization(), L.Flatten(), L.Dropout(0.2),
                           L.Dense(4, activation="softmax")])
    model.compile(optimizer=mt.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=16):
    r = np.random.default_rng(1)
    return r.normal(size=(n, 6, 6, 2)).astype(np.float32), r.integers(0, 4, n)


def test_sequential_round_trip(tmp_path):
    model = small_model()
    x, y = data()
    model.fit(x, y, epochs=2, verbose=0)              # moving statistics move too
    path = tmp_path / "m.npz"
    assert model.save(path) == os.fspath(path)
    with np.load(path, allow_pickle=False) as f:      # really one plain .npz
        assert "config" in f.files and f["config"].dtype == np.uint8
    loaded = mt.load_model(path)
    assert type(loaded) is mt.Sequential and loaded.name == model.name
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert type(loaded.optimizer) is mt.optimizers.SGD
    assert loaded.optimizer.momentum == 0.9 and loaded.optimizer.nesterov
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
    loaded.fit(x, y, epochs=1, verbose=0)             # and it trains on


def test_schedule_and_frozen_layers_survive(tmp_path):
    model = small_model()
    model.layers[0].trainable = False
    model.compile(optimizer=mt.optimizers.Adam(mt.optimizers.CosineDecay(0.01, 100)),
                  loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "m.npz")
    loaded = mt.load_model(tmp_path / "m.npz")
    assert not loaded.layers[0].trainable
    lr = loaded.optimizer._learning_rate
    assert isinstance(lr, mt.optimizers.CosineDecay) and lr(50) == pytest.approx(0.005)


def test_save_replaces_atomically_and_never_leaves_half_a_file(tmp_path, monkeypatch):
    model = small_model()
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):                    # dies half way through writing
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        small_model(seed=1).save(path)
    assert path.read_bytes() == before                # the old model is intact
    assert os.listdir(tmp_path) == ["m.npz"]          # and no temporary file is left
    with pytest.raises(OSError):
        small_model(seed=1).save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == ["m.npz"]          # no half-written new file either


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        small_model().save(tmp_path / "nope" / "m.npz")


# ---- damaged and foreign files ---------------------------------------------------------
def _saved(tmp_path):
    path = tmp_path / "m.npz"
    small_model().save(path)
    return path


def _rewrite(path, edit):
    """Rewrite a saved model's arrays through `edit(dict)` (a forged file)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    edit(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _config(arrays):
    return json.loads(arrays["config"].tobytes().decode())


def _set_config(arrays, cfg):
    arrays["config"] = np.frombuffer(json.dumps(cfg).encode(), np.uint8)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        mt.load_model(tmp_path / "nothing.npz")


@pytest.mark.parametrize("damage", ["truncated", "flipped", "text", "empty", "npy"])
def test_damaged_or_foreign_file_names_the_file(tmp_path, damage):
    path = _saved(tmp_path)
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[:len(raw) // 2])
    elif damage == "flipped":                          # corrupt bytes inside the arrays
        mid = len(raw) // 2
        path.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid:mid + 64]) + raw[mid + 64:])
    elif damage == "text":
        path.write_text("this is not a model\n")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    with pytest.raises(ModelFileError, match="m.npz"):
        mt.load_model(path)


def test_npz_without_config(tmp_path):
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        np.savez(f, weights=np.zeros(3))
    with pytest.raises(ModelFileError, match="no 'config' entry"):
        mt.load_model(path)


def test_pickled_config_is_never_unpickled(tmp_path):
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        np.savez(f, config=np.array([{"format": "minitiny-model"}], dtype=object))
    with pytest.raises(ModelFileError, match="m.npz"):
        mt.load_model(path)


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(format="keras"), "not a minitiny model"),
    (lambda c: c.update(format_version=99), "format version 99"),
    (lambda c: c["model"]["layers"][0].update(class_name="Evil"), "unknown layer class 'Evil'"),
    (lambda c: c["model"].pop("layers"), "missing entry 'layers'"),
])
def test_forged_config(tmp_path, edit, message):
    path = _saved(tmp_path)

    def change(arrays):
        cfg = _config(arrays)
        edit(cfg)
        _set_config(arrays, cfg)
    _rewrite(path, change)
    with pytest.raises(ModelFileError, match=message) as e:
        mt.load_model(path)
    assert "m.npz" in str(e.value)


def test_config_that_is_not_json(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, lambda a: a.update(config=np.frombuffer(b"{not json", np.uint8)))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        mt.load_model(path)


def test_weight_of_wrong_shape_names_layer_and_shapes(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, lambda a: a.update(w0000=np.zeros((3, 3, 2, 5), np.float32)))
    with pytest.raises(ModelFileError, match=r"weight 'kernel' has shape \(3, 3, 2, 5\)") as e:
        mt.load_model(path)
    assert "m.npz" in str(e.value) and "conv2d" in str(e.value)


def test_missing_weight(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, lambda a: a.pop("w0001"))
    with pytest.raises(ModelFileError, match="weight 'bias' of layer"):
        mt.load_model(path)
