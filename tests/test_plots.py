"""Plots: each writes a real PNG (checked by decoding it), refuses bad input with a message,
leaves no temporary file, and without matplotlib says how to install it."""
import os
import sys

import numpy as np
import pytest

from minitiny.reporting import plots

needs_matplotlib = pytest.mark.skipif(not plots.available(),
                                      reason="matplotlib not installed (pip install 'minitiny[plots]')")


def _image(path):
    """Decode the PNG -> (H, W) grey levels; checks the file really is a PNG."""
    from PIL import Image
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


def _only_file(folder, name):
    assert sorted(os.listdir(folder)) == [name]          # written atomically: no temp file left


@needs_matplotlib
def test_history_curves(tmp_path):
    history = {"loss": [1.0, 0.5, 0.3, 0.25], "accuracy": [0.5, 0.7, 0.8, 0.85],
               "val_loss": [1.1, 0.6, 0.4, 0.45], "val_accuracy": [0.45, 0.65, 0.75, 0.74]}
    path = plots.plot_history(history, tmp_path / "curves.png", title="demo")
    im = _image(path)
    assert im.shape[1] > 1.5 * im.shape[0]               # two panels side by side
    assert im.std() > 10
    _only_file(tmp_path, "curves.png")


@needs_matplotlib
def test_history_accepts_a_fit_result(tmp_path):
    import minitiny as mt
    from minitiny.layers import Dense
    model = mt.Sequential([Dense(1, input_shape=[1])])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    x = np.linspace(-1, 1, 32, dtype=np.float32)
    history = model.fit(x, 3 * x, epochs=3, verbose=0)
    assert _image(plots.plot_history(history, tmp_path / "h.png")).std() > 5


@needs_matplotlib
def test_confusion_matrix(tmp_path):
    cm = np.array([[50, 2, 0], [3, 40, 7], [0, 1, 60]])
    im = _image(plots.plot_confusion_matrix(cm, tmp_path / "cm.png", ["a", "b", "c"]))
    assert im.std() > 10


@needs_matplotlib
def test_predictions_sine_plot(tmp_path):
    x = np.linspace(0, 2 * np.pi, 100)
    path = plots.plot_predictions(x, np.sin(x), tmp_path / "sine.png",
                                  {"float": np.sin(x) * 0.95, "int8": np.round(np.sin(x) * 8) / 8})
    assert _image(path).std() > 10
    # without a single feature: predicted against true, with the diagonal
    path = plots.plot_predictions(None, np.sin(x), tmp_path / "pvt.png", np.sin(x) + 0.1)
    assert _image(path).std() > 10


@needs_matplotlib
def test_roc(tmp_path):
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200), np.ones(50)].astype(int)
    s = np.r_[rng.normal(0, 1, 200), rng.normal(2, 1, 50)]
    assert _image(plots.plot_roc(y, {"float": s, "int8": np.round(s * 4) / 4},
                                 tmp_path / "roc.png")).std() > 10


@needs_matplotlib
@pytest.mark.parametrize("call, message", [
    (lambda p: plots.plot_history({"accuracy": [1]}, p), "'loss'"),
    (lambda p: plots.plot_confusion_matrix(np.zeros((2, 3)), p), "square"),
    (lambda p: plots.plot_confusion_matrix(np.eye(3), p, ["a"]), "1 class names"),
    (lambda p: plots.plot_predictions(None, [1, 2, 3], p, [1, 2]), "2 values"),
    (lambda p: plots.plot_roc([0, 1, 1], [0.1, 0.2], p), "2 scores"),
])
def test_bad_input_is_refused_with_a_message(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "x.png")
    assert os.listdir(tmp_path) == []                    # nothing half-written


def test_missing_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib -> ImportError
    assert not plots.available()
    with pytest.raises(plots.PlotsUnavailable, match=r"pip install 'minitiny\[plots\]'"):
        plots.plot_history({"loss": [1, 0.5]}, tmp_path / "h.png")
