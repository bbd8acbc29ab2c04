"""The `minitiny` command line: help, exit codes, error messages, the workflow chain, progress.

Exit codes are the contract scripts rely on: 0 ok, 1 a check failed, 2 usage error.
The end-to-end chain runs train -> quantize -> generate -> verify on a tiny synthetic model
through main() (in-process, so it is fast) and checks the files each step leaves.
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minitiny import cli
from minitiny.reporting.progress import Progress, TrainingProgress

SUBCOMMANDS = ["train", "quantize", "generate", "verify", "firmware", "import", "export",
               "report", "data", "demo"]


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- help and usage ------------------------------------------------------------------------
@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help_with_examples(capsys, command):
    code, out, err = run(capsys, command, "--help")
    assert code == 0, err
    assert "examples:" in out
    assert f"minitiny {command}" in out


def test_top_level_help_lists_every_subcommand(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in SUBCOMMANDS:
        assert command in out
    assert "exit status" in out


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["generate", "model.qmodel.npz"],
                                  ["train", "--epochs", "many", "model.py"],
                                  ["quantize", "m.npz", "--data", "x.npy", "--observer", "best"]])
def test_usage_errors_exit_2(capsys, argv):
    code, _, _ = run(capsys, *argv)
    assert code == 2


def test_python_dash_m_runs_the_same_command():
    r = subprocess.run([sys.executable, "-m", "minitiny", "verify", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "bit for bit" in r.stdout


# ---- errors: one clear line, the traceback only with --debug ---------------------------------
def test_missing_file_is_one_line_without_traceback(capsys, tmp_path):
    missing = tmp_path / "nothere.qmodel.npz"
    code, out, err = run(capsys, "generate", str(missing), "--out", str(tmp_path / "c"))
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minitiny generate: error:")
    assert "nothere.qmodel.npz" in lines[0]


def test_debug_adds_the_traceback(capsys, tmp_path):
    missing = str(tmp_path / "nothere.qmodel.npz")
    for argv in (["--debug", "generate", missing, "--out", "x"],
                 ["generate", missing, "--out", "x", "--debug"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert "Traceback (most recent call last)" in err
        assert "minitiny generate: error:" in err


def test_bad_model_file_names_the_line(capsys, tmp_path):
    model_py = tmp_path / "broken.py"
    model_py.write_text("import minitiny\n\nx = 1 / 0\n")
    code, _, err = run(capsys, "train", str(model_py), "--data", "sine")
    assert code == 2
    assert "broken.py, line 3: ZeroDivisionError" in err
    assert "Traceback" not in err


def test_model_file_without_build(capsys, tmp_path):
    model_py = tmp_path / "empty.py"
    model_py.write_text("EPOCHS = 3\n")
    code, _, err = run(capsys, "train", str(model_py), "--data", "sine")
    assert code == 2 and "defines no build()" in err


def test_unknown_data_set(capsys, tmp_path):
    code, _, err = run(capsys, "quantize", str(tmp_path / "m.npz"), "--data", "no_such_set")
    assert code == 2


def test_import_and_export_say_what_is_missing(capsys, tmp_path):
    from minitiny import firmware
    from minitiny.reporting.model_report import tflite_reader
    code, _, err = run(capsys, "import", str(tmp_path / "none.tflite"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert ("not available in this version" in err if tflite_reader() is None
            else "none.tflite: no such file" in err)
    code, _, err = run(capsys, "export", "arduino", str(tmp_path / "nodir"))
    assert code == 2
    if not hasattr(firmware, "export_arduino"):
        assert "not available in this version" in err


def test_data_list(capsys):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0
    assert "mnist" in out and "sine" in out


def test_firmware_usage_error_is_2(capsys, tmp_path):
    code, _, err = run(capsys, "firmware", "run", str(tmp_path / "nodir"))
    assert code == 2


# ---- the workflow chain on a tiny synthetic model -------------------------------------------
MODEL_PY = textwrap.dedent("""
    import numpy as np
    import minitiny as mt
    from minitiny.layers import Dense

    EPOCHS = 15

    def build():
        model = mt.Sequential([Dense(8, activation="relu", input_shape=[4]),
                               Dense(3, activation="softmax")], name="blobs")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def load_data():
        # three Gaussian blobs in 4-D, centres far apart: easy to separate
        rng = np.random.default_rng(1)
        centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
        y = rng.integers(0, 3, 360)
        x = centres[y] + 0.4 * rng.standard_normal((360, 4)).astype(np.float32)
        return (x[:300], y[:300]), (x[300:], y[300:])
""")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """train -> quantize -> generate, run once for the tests below."""
    d = tmp_path_factory.mktemp("chain")
    (d / "blobs.py").write_text(MODEL_PY)
    ns = {}
    exec(MODEL_PY, ns)
    (x_train, y_train), (x_test, y_test) = ns["load_data"]()
    np.save(d / "x.npy", x_test)
    np.save(d / "y.npy", y_test)
    np.save(d / "x_train.npy", x_train)
    codes = [cli.main(["--quiet", "train", str(d / "blobs.py"), "--out", str(d / "blobs.npz")]),
             cli.main(["quantize", str(d / "blobs.npz"), "--data", f"{d / 'x_train.npy'}",
                       "--out", str(d / "blobs.qmodel.npz"), "--quiet"]),
             cli.main(["generate", str(d / "blobs.qmodel.npz"), "--out", str(d / "c"),
                       "--name", "blobs"])]
    return d, codes, (x_test, y_test)


def test_chain_steps_succeed_and_leave_their_files(chain):
    d, codes, _ = chain
    assert codes == [0, 0, 0]
    for f in ["blobs.npz", "blobs.history.json", "blobs.qmodel.npz", "c/blobs_model.c",
              "c/blobs_model.h", "c/blobs_manifest.json", "c/blobs.qmodel.npz"]:
        assert (d / f).exists(), f


def test_chain_models_are_what_the_steps_say(chain):
    """The trained model learned (an independent check: the blobs are separable) and the
    int8 model agrees with it."""
    import minitiny as mt
    from minitiny.quant.graph import QModel
    d, _, (x_test, y_test) = chain
    model = mt.load_model(str(d / "blobs.npz"))
    float_pred = model.predict(x_test).argmax(-1)
    assert np.mean(float_pred == y_test) > 0.9
    q = QModel.load(str(d / "blobs.qmodel.npz"))
    assert np.mean(q.predict(x_test).argmax(-1) == float_pred) > 0.95


def test_verify_passes_on_the_generated_code(chain, capsys):
    d, _, _ = chain
    code, out, err = run(capsys, "verify", str(d / "c"), "--inputs", str(d / "x.npy"))
    assert code == 0, err
    assert "60/60 outputs identical" in out
    assert "OK: bit-exact" in out


def test_generate_auto_variant_emits_both_kernels_and_verifies(chain, capsys, tmp_path):
    """--variant auto keeps the scalar kernels for the host and adds the DSP ones beside them."""
    d, _, _ = chain
    out_dir = tmp_path / "auto"
    code, _, err = run(capsys, "generate", str(d / "blobs.qmodel.npz"), "--out", str(out_dir),
                       "--name", "blobs", "--variant", "auto")
    assert code == 0, err
    source = (out_dir / "blobs_model.c").read_text()
    assert "__ARM_FEATURE_DSP" in source
    code, out, err = run(capsys, "verify", str(out_dir), "--inputs", str(d / "x.npy"))
    assert code == 0, err
    assert "OK: bit-exact" in out


def test_generate_int16_dsp_weights(chain, capsys, tmp_path):
    """--dsp-weights int16: the DSP dense kernels' weights stored as int16, recorded in the
    manifest (the Arduino export regenerates with it); the host build still verifies."""
    d, _, _ = chain
    out_dir = tmp_path / "w16"
    code, _, err = run(capsys, "generate", str(d / "blobs.qmodel.npz"), "--out", str(out_dir),
                       "--name", "blobs", "--variant", "auto", "--dsp-weights", "int16")
    assert code == 0, err
    assert json.loads((out_dir / "blobs_manifest.json").read_text())["dsp_weights"] == "int16"
    assert "static const int16_t dense" in (out_dir / "blobs_model.c").read_text()
    code, out, err = run(capsys, "verify", str(out_dir), "--inputs", str(d / "x.npy"))
    assert code == 0 and "OK: bit-exact" in out, err
    code, _, err = run(capsys, "generate", str(d / "blobs.qmodel.npz"), "--out", str(out_dir),
                       "--dsp-weights", "int4")
    assert code != 0 and "int4" in err


def test_generate_threshold_needs_a_single_score(chain, capsys, tmp_path):
    """The blobs classifier has three outputs: a detector threshold makes no sense there."""
    d, _, _ = chain
    code, _, err = run(capsys, "generate", str(d / "blobs.qmodel.npz"), "--out",
                       str(tmp_path / "t"), "--threshold", "0.5")
    assert code == 2
    assert "one output value" in err
    assert not (tmp_path / "t").exists()


def test_generate_threshold_on_a_detector(capsys, tmp_path):
    """A one-output model gets NAME_THRESHOLD_Q and NAME_detect() in its header."""
    import minitiny as mt
    mt.random.seed(0)
    model = mt.Sequential([mt.layers.Dense(4, activation="relu", input_shape=[2]),
                           mt.layers.Dense(1, activation="sigmoid")])
    q = mt.quantize(model, representative_data=np.random.default_rng(0).normal(size=(64, 2)))
    q.save(str(tmp_path / "det.qmodel.npz"))
    code, _, err = run(capsys, "generate", str(tmp_path / "det.qmodel.npz"), "--out",
                       str(tmp_path / "c"), "--name", "det", "--threshold", "0.5")
    assert code == 0, err
    header = (tmp_path / "c" / "det_model.h").read_text()
    assert "DET_THRESHOLD_Q" in header and "det_detect" in header


def test_export_arduino_with_a_library_name(chain, capsys, tmp_path):
    d, _, _ = chain
    code, _, err = run(capsys, "export", "arduino", str(d / "c"), "--out", str(tmp_path / "lib"),
                       "--name", "BlobsLib")
    assert code == 0, err
    assert "name=BlobsLib" in (tmp_path / "lib" / "library.properties").read_text()


def test_verify_exits_1_when_outputs_differ(chain, capsys, tmp_path):
    """Change the biases in the C (a generator bug: the files still name one model): the C
    must now disagree with the NumPy int8 run, and verify must say so with exit status 1."""
    d, _, _ = chain
    bad = tmp_path / "c"
    shutil.copytree(d / "c", bad)
    source = bad / "blobs_model.c"
    bias = re.compile(r"(int32_t \w*bias\w*\[[^]]*\] = \{)([^}]*)")
    text, n = bias.subn(lambda m: m.group(1) + ", ".join(str(int(v) + 5000) for v in m.group(2).split(",")),
                        source.read_text())
    assert n >= 1
    source.write_text(text)
    code, out, err = run(capsys, "verify", str(bad), "--inputs", str(d / "x.npy"))
    assert code == 1
    assert "MISMATCH" in out
    assert "check failed" in err


def test_verify_exits_2_when_the_files_are_of_two_models(chain, capsys, tmp_path):
    """The reference model's biases changed in the .npz: not a generator bug but a folder of
    two models, refused before anything runs (exit 2, naming each file's model hash)."""
    from minitiny.quant.graph import QModel
    d, _, _ = chain
    bad = tmp_path / "c"
    shutil.copytree(d / "c", bad)
    q = QModel.load(str(bad / "blobs.qmodel.npz"))
    for t in q.tensors.values():
        if t.dtype == "int32":
            t.data = (t.data + 5000).astype(np.int32)
    q.save(str(bad / "blobs.qmodel.npz"))
    code, out, err = run(capsys, "verify", str(bad), "--inputs", str(d / "x.npy"))
    assert code == 2
    assert "of different models" in err and "blobs.qmodel.npz sha256:" in err, err


def test_train_with_load_data_returning_x_y(capsys, tmp_path):
    """load_data() may return just (x, y); two samples must not be mistaken for two splits."""
    model_py = tmp_path / "two.py"
    model_py.write_text(MODEL_PY.replace(
        "return (x[:300], y[:300]), (x[300:], y[300:])", "return x[:2], y[:2]"))
    code, out, err = run(capsys, "train", str(model_py), "--epochs", "1", "--validation-split",
                         "0", "--out", str(tmp_path / "two.npz"))
    assert code == 0, err
    assert "on 2 samples" in out and "test:" not in out


TINY_PY = textwrap.dedent("""
    import signal
    import numpy as np
    import minitiny as mt
    EPOCHS = 3
    BATCH_SIZE = 16
    SIGNAL_AT_STEP = None          # set by a test: send this process a signal at that step

    class Signalling(mt.optimizers.SGD):
        def step(self, params):
            super().step(params)
            if SIGNAL_AT_STEP and self.iterations == SIGNAL_AT_STEP[1]:
                # raise_signal, not os.kill: the signal goes to this (the main) thread. os.kill
                # lets the kernel hand it to any thread (a BLAS worker), which a loaded machine
                # may not run before training has finished
                signal.raise_signal(getattr(signal, SIGNAL_AT_STEP[0]))

    def build():
        m = mt.Sequential([mt.layers.Dense(4, activation="relu", input_shape=[3]),
                           mt.layers.Dense(1)])
        m.compile(optimizer=Signalling(0.01), loss="mse")
        return m

    def load_data():
        x = np.random.default_rng(0).normal(size=(64, 3)).astype("f4")
        return x, x.sum(1, keepdims=True)
""")


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["--batch-size", "-3"], "argument --batch-size: must be at least 1, got -3"),
    (["--out", "{file}/model.npz"], "is a file, not a directory"),
    (["--out", "{dir}"], "is a directory; name the file to write in it"),
    (["--plot", "{file}/curves.png"], "--plot {file}/curves.png: {file} is a file"),
])
def test_train_refuses_bad_arguments_before_training(capsys, tmp_path, argv, message):
    """Usage errors exit 2 before any training (batch size 0 was a ZeroDivisionError, an
    --out under a file a FileExistsError, both exit 1 and only after training)."""
    (tmp_path / "tiny.py").write_text(TINY_PY)
    (tmp_path / "afile").write_text("")
    names = {"file": str(tmp_path / "afile"), "dir": str(tmp_path)}
    argv = [a.format(**names) for a in argv]
    code, out, err = run(capsys, "train", str(tmp_path / "tiny.py"), "-q", *argv)
    assert code == 2, err
    assert message.format(**names) in err
    assert "training" not in out and "Traceback" not in err


def test_train_refuses_a_zero_batch_size_from_the_model_file(capsys, tmp_path):
    (tmp_path / "tiny.py").write_text(TINY_PY.replace("BATCH_SIZE = 16", "BATCH_SIZE = 0"))
    code, _, err = run(capsys, "train", str(tmp_path / "tiny.py"), "-q")
    assert code == 2 and "BATCH_SIZE must be a whole number >= 1, got 0" in err


def test_train_finds_an_unwritable_out_before_training(capsys, tmp_path, monkeypatch):
    """A folder where no file can be created (read-only; as root, permissions do not stop
    us, so the file system's refusal is simulated) is a usage error before training."""
    import tempfile
    (tmp_path / "tiny.py").write_text(TINY_PY)

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    code, out, err = run(capsys, "train", str(tmp_path / "tiny.py"), "-q", "--out",
                         str(tmp_path / "ro" / "model.npz"))
    assert code == 2
    assert f"cannot write in {tmp_path / 'ro'} (Permission denied)" in err


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_train_saves_and_exits_as_shells_do(tmp_path, signame, status):
    """A real process: the signal at the last step of epoch 2 (of 3; 4 steps an epoch) stops
    it; the model is saved and the exit status is 128 + the signal's number (it was 0); the
    message counts the finished epochs."""
    (tmp_path / "tiny.py").write_text(
        TINY_PY.replace("SIGNAL_AT_STEP = None", f"SIGNAL_AT_STEP = ({signame!r}, 8)"))
    out = tmp_path / "model.npz"
    r = subprocess.run([sys.executable, "-m", "minitiny", "train", str(tmp_path / "tiny.py"),
                        "--validation-split", "0", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == status, r.stderr
    assert f"interrupted ({signame}) during epoch 2/3: keeping the history of the 1 " \
           "finished epoch(s)" in r.stderr
    from minitiny import load_model
    assert len(load_model(out, compile=False).get_weights()) == 4
    assert f"wrote {out}" in r.stdout


def test_import_a_tflite_file(chain, capsys, tmp_path):
    """Write the chain's int8 model as .tflite, import it: the imported C gives the same
    outputs as the original model (verify against the re-read model, then compare)."""
    from minitiny.quant.graph import QModel
    from minitiny.quant.tflite_io import save_tflite
    from minitiny.reporting.model_report import tflite_reader
    if tflite_reader() is None:
        pytest.skip("minitiny.from_tflite is not in this version")
    d, _, (x_test, _) = chain
    q = QModel.load(str(d / "blobs.qmodel.npz"))
    save_tflite(q, str(tmp_path / "blobs.tflite"))
    code, out, err = run(capsys, "import", str(tmp_path / "blobs.tflite"), "--out",
                         str(tmp_path / "imported"), "--name", "blobs")
    assert code == 0, err
    code, out, err = run(capsys, "verify", str(tmp_path / "imported"), "--inputs", str(d / "x.npy"))
    assert code == 0, err
    from minitiny import codegen
    xq = q.quantize_input(x_test)
    assert np.array_equal(codegen.load(str(tmp_path / "imported"))(xq), q.predict_int8(xq))


def test_report_on_the_chain(chain, capsys, tmp_path):
    d, _, _ = chain
    html = tmp_path / "r.html"
    code, out, err = run(capsys, "report", str(d / "c"), "--data", f"{d / 'x.npy'},{d / 'y.npy'}",
                         "--float", str(d / "blobs.npz"), "--html", str(html),
                         "--plots", str(tmp_path / "plots"))
    assert code == 0, err
    assert "accuracy on 60 samples" in out
    assert html.exists() and html.read_text().startswith("<!DOCTYPE html>")
    from minitiny.reporting import plots
    if plots.available():      # the training curves (blobs.history.json) and the confusion matrix
        assert sorted(os.listdir(tmp_path / "plots")) == ["confusion.png", "history.png"]
        assert "data:image/png;base64," in html.read_text()


def test_report_exits_1_when_the_model_does_not_fit(capsys, tmp_path):
    """300 -> 250 Dense: 75,000 int8 weights > the 64 KB flash of board 'tiny'
    (boards.json: flash_bytes 65536)."""
    import minitiny as mt
    from minitiny.layers import Dense
    model = mt.Sequential([Dense(250, input_shape=[300])])
    model.save(str(tmp_path / "big.npz"))
    code, out, err = run(capsys, "report", str(tmp_path / "big.npz"), "--board", "tiny",
                         "--no-firmware", "--html", str(tmp_path / "big.html"))
    assert code == 1
    assert "DOES NOT FIT" in out
    assert "does not fit tiny" in err


def test_quiet_train_prints_no_epoch_lines(chain, capsys, tmp_path):
    d, _, _ = chain
    code, out, _ = run(capsys, "train", str(d / "blobs.py"), "--epochs", "2", "--quiet",
                       "--out", str(tmp_path / "m.npz"))
    assert code == 0
    assert "Epoch" not in out
    code, out, _ = run(capsys, "train", str(d / "blobs.py"), "--epochs", "2",
                       "--out", str(tmp_path / "m.npz"))
    assert "Epoch 1/2" in out and "Epoch 2/2" in out


# ---- the demo --------------------------------------------------------------------------------
def test_demo_falls_back_to_sine_without_mnist(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MINITINY_DATA", str(tmp_path / "empty-cache"))
    code, out, err = run(capsys, "demo", "--quick", "--no-fetch", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    assert "sine" in out
    assert "identical" in out
    assert (tmp_path / "demo" / "sine" / "sine_model.c").exists()


def test_demo_exits_1_when_the_c_disagrees(capsys, tmp_path, monkeypatch):
    """A C model whose outputs are off by one must fail the demo's verification."""
    from minitiny import codegen
    real_load = codegen.load

    def off_by_one(model_dir, **kw):
        fn = real_load(model_dir, **kw)
        return lambda x: (fn(x).astype(np.int16) + 1).clip(-128, 127).astype(np.int8)
    monkeypatch.setattr(codegen, "load", off_by_one)
    monkeypatch.setenv("MINITINY_DATA", str(tmp_path / "empty-cache"))
    code, out, _ = run(capsys, "demo", "--quick", "--no-fetch", "--out", str(tmp_path / "demo"))
    assert code == 1
    assert "FAILED: C differs from NumPy int8" in out


def _mnist_cached():
    try:
        from minitiny import datasets
        datasets.load_mnist()
        return True
    except Exception:                     # noqa: BLE001  missing or unreadable: skip
        return False


@pytest.mark.skipif(not _mnist_cached(), reason="MNIST not in the cache (minitiny data fetch mnist)")
def test_demo_on_mnist(capsys, tmp_path):
    """The README's demo, quick: the course MLP reaches well over chance (10%) on the
    10,000 test digits (a 20-unit MLP reaches ~91% after 3 epochs on 12,000 images; 85% leaves
    room for other seeds), int8 stays within a point of float, and the C matches bit for bit."""
    import re
    code, out, err = run(capsys, "demo", "--quick", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    accs = [float(a) for a in re.findall(r"test accuracy: (0\.\d+)", out)]
    float_acc = accs[0]
    int8_acc = float(re.search(r"int8 test accuracy: (0\.\d+)", out).group(1))
    assert float_acc > 0.85 and abs(int8_acc - float_acc) < 0.01
    assert "10,000/10,000 test inputs give identical int8 outputs" in out
    assert (tmp_path / "demo" / "report.html").exists()


# ---- the progress bar -------------------------------------------------------------------------
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_on_a_terminal_only():
    tty, pipe = FakeTerminal(), io.StringIO()
    for stream in (tty, pipe):
        with Progress(10, "work", stream=stream, min_interval=0) as bar:
            for _ in range(10):
                bar.update()
    assert "\rwork [" in tty.getvalue() and "10/10" in tty.getvalue()
    assert tty.getvalue().endswith("\r")                # erased at the end: a clean line
    assert pipe.getvalue() == ""
    quiet = FakeTerminal()
    with Progress(10, "work", stream=quiet, enabled=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_training_progress_prints_keras_lines_after_erasing_the_bar():
    import minitiny as mt
    from minitiny.layers import Dense
    tty, out = FakeTerminal(), io.StringIO()
    model = mt.Sequential([Dense(1, input_shape=[1])])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1)
    cb = TrainingProgress(2, 2, stream=tty, out=out, enabled=True)
    model.fit(x, 2 * x, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    lines = out.getvalue().splitlines()
    assert [l.split(" - ")[0] for l in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert "loss:" in lines[0]
    assert "\rEpoch 1/2 [" in tty.getvalue() and "2/2" in tty.getvalue()  # drawn when full
    assert tty.getvalue().endswith("\r")


def test_console_script_is_installed():
    """setup.py's entry point sits in this interpreter's scripts folder and runs (whether a
    shell finds it on PATH is the environment's business: pyenv needs a rehash)."""
    import sysconfig
    script = os.path.join(sysconfig.get_path("scripts"), "minitiny")
    assert os.path.exists(script), f"{script} is missing: `pip install -e .` installs it"
    r = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "minitiny" in r.stdout


def test_exit_status_mapping():
    assert cli.exit_status(cli.CheckFailed("x")) == 1
    assert cli.exit_status(cli.UsageError("x")) == 2
    assert cli.exit_status(ValueError("bad shape")) == 2
    assert cli.exit_status(FileNotFoundError("x")) == 2
    assert cli.exit_status(RuntimeError("compiler crashed")) == 1


# ---- the guided reading path (docs/READING.md) -------------------------------------------
READING = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "docs", "READING.md")


def test_reading_path_experiments_run(capsys):
    """Every Python experiment in docs/READING.md runs as written (they are the reader's
    first contact with the API: they must not rot)."""
    import re
    blocks = re.findall(r"```python\n(.*?)```", open(READING, encoding="utf-8").read(), re.S)
    assert len(blocks) >= 9
    for block in blocks:
        exec(compile(block, READING, "exec"), {})
    out = capsys.readouterr().out
    assert "[7. 9.]" in out                       # step 1: d/dx (x^2 + 3x) = 2x + 3 at 2, 3
    assert "(2, 3) 9 6" in out                    # step 3: a Dense(3) on 2 inputs
