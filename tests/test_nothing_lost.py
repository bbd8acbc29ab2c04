"""Nothing lost, nothing run: interruptions, atomic files, re-runs, and hostile files.

* Interrupting training -- Ctrl-C (SIGINT) or SIGTERM, in this process and in a real child
  process killed from outside -- keeps the best checkpoint and the history so far, and never
  leaves a half-applied step: the weights equal those of a run stopped cleanly after the
  same number of steps.
* Every file minitiny writes is replaced atomically: when the write is cut short at the
  worst moment (the final rename raising KeyboardInterrupt), the old file is intact and no
  temporary file is left; and the file is readable like any other (0644 under umask 022).
* Re-running a step over its own output is safe (generate into the directory it reads from,
  save over the file just loaded) and gives the same result.
* Loading never executes code (a pickle that would create a file is refused), generated C
  cannot be injected through names, and paths in model files are never followed.
"""
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st

import int8_oracle as O
import minitiny as mt
from minitiny import codegen
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.saving import ModelFileError

GCC = shutil.which("gcc")


# =======================================================================================
# Interrupting training
# =======================================================================================
def classifier(seed=0):
    mt.random.seed(seed)
    model = mt.Sequential([mt.layers.Dense(8, activation="relu", input_shape=(4,)),
                           mt.layers.Dense(3, activation="softmax")])
    model.compile(mt.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


class SignalAt(mt.callbacks.Callback):
    """Sends `signum` to this process inside optimizer step number `step` (counting from 1),
    right after its first weight was updated: the worst moment for the weights."""

    def __init__(self, step, signum, times=1):
        self.step, self.signum, self.times, self.fired = step, signum, times, False

    def set_model(self, model):
        super().set_model(model)
        opt = model.optimizer
        original = opt._update

        def update(w, g, lr, p):
            original(w, g, lr, p)
            if opt.iterations == self.step - 1 and not self.fired:
                self.fired = True
                for _ in range(self.times):
                    os.kill(os.getpid(), self.signum)
        opt._update = update


class StopAfter(mt.callbacks.Callback):
    """A clean stop after `step` steps: KeyboardInterrupt between two steps."""

    def __init__(self, step):
        self.step, self.seen = step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_step_finishes_the_step_and_stops(tmp_path, signum, capsys):
    x, y = data()
    step = 7                                   # in epoch 2 (4 steps of 16 per epoch)
    ckpt = mt.callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="loss", save_best_only=True)
    model = classifier()
    history = model.fit(x, y, batch_size=16, epochs=10, verbose=0, shuffle=False,
                        callbacks=[ckpt, SignalAt(step, signum)])
    assert "interrupted (" + signal.Signals(signum).name + ")" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL            # restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert history.epoch == [0] and len(history.history["loss"]) == 1   # the finished epoch

    reference = classifier()                   # the same run, stopped cleanly after `step` steps
    reference.fit(x, y, batch_size=16, epochs=10, verbose=0, shuffle=False, callbacks=[StopAfter(step)])
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)    # no half-applied step
    best = mt.load_model(tmp_path / "best.npz")                          # the checkpoint is whole
    assert len(best.get_weights()) == 4
    assert os.listdir(tmp_path) == ["best.npz"]


def test_a_second_signal_interrupts_at_once_and_still_keeps_the_history(tmp_path, capsys):
    x, y = data()
    model = classifier()
    history = model.fit(x, y, batch_size=16, epochs=10, verbose=0, shuffle=False,
                        callbacks=[SignalAt(6, signal.SIGINT, times=2)])
    assert history.epoch == [0]
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_early_stopping_restores_its_best_weights_after_an_interrupt():
    x, y = data()
    model = classifier()
    early = mt.callbacks.EarlyStopping(monitor="loss", patience=100, restore_best_weights=True)
    snapshots = []

    class Snapshot(mt.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append((logs["loss"], model.get_weights()))
    model.fit(x, y, batch_size=16, epochs=10, verbose=0, shuffle=False,
              callbacks=[Snapshot(), early, SignalAt(11, signal.SIGTERM)])
    best = min(snapshots, key=lambda s: s[0])[1]
    for a, b in zip(model.get_weights(), best):
        np.testing.assert_array_equal(a, b)


def test_a_handler_the_program_installed_is_left_alone():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: calls.append(s))
    try:
        x, y = data()
        model = classifier()
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[SignalAt(2, signal.SIGTERM)])
        assert calls == [signal.SIGTERM]                   # theirs ran; training went on
        assert len(model.history.epoch) == 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_fit_in_a_thread_trains_and_leaves_the_handlers():
    x, y = data()
    model, errors = classifier(), []

    def train():
        try:
            model.fit(x, y, epochs=2, verbose=0)
        except Exception as e:                 # noqa: BLE001
            errors.append(e)
    t = threading.Thread(target=train)
    t.start()
    t.join()
    assert not errors and len(model.history.epoch) == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_interrupted_checkpoint_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """Ctrl-C while ModelCheckpoint writes: the best file so far stays whole."""
    x, y = data()
    path = tmp_path / "ckpt.npz"
    model = classifier()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[mt.callbacks.ModelCheckpoint(str(path))])
    before = path.read_bytes()
    real_savez = np.savez

    def savez_then_interrupt(f, **arrays):
        real_savez(f, **arrays)
        raise KeyboardInterrupt                 # after the temp file is full, before the rename
    monkeypatch.setattr(np, "savez", savez_then_interrupt)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[mt.callbacks.ModelCheckpoint(str(path))])
    assert history.epoch == [0]                # History (first callback) had recorded epoch 0
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    monkeypatch.undo()
    assert len(mt.load_model(path).get_weights()) == 4


CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import minitiny as mt

    out = sys.argv[1]
    mt.random.seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = mt.Sequential([mt.layers.Dense(16, activation="relu", input_shape=(4,)),
                           mt.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")

    class Slow(mt.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.01)
        def on_epoch_end(self, epoch, logs=None):
            print("epoch", epoch, flush=True)
    ckpt = mt.callbacks.ModelCheckpoint(out + "/best.npz", monitor="loss", save_best_only=True)
    history = model.fit(x, y, batch_size=8, epochs=1000, verbose=0, callbacks=[ckpt, Slow()])
    with open(out + "/history.json", "w") as f:
        json.dump(history.history, f)
    print("done", flush=True)
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_killing_a_training_process_keeps_its_checkpoint_and_history(tmp_path, signum):
    """A real process, signalled from outside once its second epoch has ended."""
    script = tmp_path / "train.py"
    script.write_text(CHILD)
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.startswith("epoch 1"):
                break
        child.send_signal(signum)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, stderr
    assert "done" in stdout and f"interrupted ({signal.Signals(signum).name})" in stderr
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) >= 2
    best = mt.load_model(out / "best.npz")
    assert len(best.get_weights()) == 4
    assert sorted(os.listdir(out)) == ["best.npz", "history.json"]     # no temp file left


# =======================================================================================
# Every file minitiny writes: atomic, and readable
# =======================================================================================
def _float_model(seed):
    mt.random.seed(seed)
    return mt.Sequential([mt.layers.Dense(2, input_shape=(3,))])


def _qmodel(seed):
    return O.single_op_model(seed, "fully_connected", (5,), units=3)


def _write_card(path, seed):
    from minitiny.reporting.modelcard import write_model_card
    write_model_card(path, name=f"model {seed}")


def _write_plot(path, seed):
    from minitiny.reporting import plots
    if not plots.available():
        pytest.skip("matplotlib is not installed")
    plots.plot_history({"loss": [1.0, 0.5 + seed]}, path)


def _write_cache(path, seed):
    from minitiny.datasets.cache import atomic_write
    atomic_write(path, bytes([seed]) * 100)


def _write_tflite(path, seed):
    from minitiny.quant.tflite_io import save_tflite
    save_tflite(_qmodel(seed), path)


# the file each writer writes to: a model's extension names its format (saving.py)
FILE_NAME = {"float model (.npz)": "file.npz", "float model (.keras)": "file.keras"}
WRITERS = {
    "float model (.npz)": lambda p, s: _float_model(s).save(p),
    "float model (.keras)": lambda p, s: _float_model(s).save(p),
    "int8 model (.qmodel.npz)": lambda p, s: _qmodel(s).save(p),
    ".tflite": _write_tflite,
    "data cache": _write_cache,
    "model card (.md)": _write_card,
    "plot (.png)": _write_plot,
}


@pytest.mark.parametrize("what", list(WRITERS))
def test_every_writer_replaces_atomically(tmp_path, monkeypatch, what):
    path = tmp_path / FILE_NAME.get(what, "file")
    WRITERS[what](path, 1)
    before = path.read_bytes()

    def interrupted_rename(src, dst):
        raise KeyboardInterrupt                # the worst moment: all written, not renamed
    monkeypatch.setattr(os, "replace", interrupted_rename)
    with pytest.raises(KeyboardInterrupt):
        WRITERS[what](path, 2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]
    WRITERS[what](path, 2)
    assert path.read_bytes() != before


@pytest.mark.parametrize("what", list(WRITERS))
def test_written_files_are_readable_like_any_other(tmp_path, what):
    """Found: mkstemp's 0600 stayed on QModel.save, .tflite, cache, model card and plot files."""
    old = os.umask(0o022)
    try:
        WRITERS[what](tmp_path / FILE_NAME.get(what, "file"), 1)
    finally:
        os.umask(old)
    assert os.stat(tmp_path / FILE_NAME.get(what, "file")).st_mode & 0o777 == 0o644


def test_a_generated_directory_is_readable_like_any_other(tmp_path):
    """Found: generate renamed its mkdtemp directory (0700) into place."""
    old = os.umask(0o022)
    try:
        g = codegen.generate(_qmodel(1), tmp_path / "gen", name="m")
    finally:
        os.umask(old)
    assert os.stat(g.dir).st_mode & 0o777 == 0o755
    assert {os.stat(os.path.join(g.dir, f)).st_mode & 0o777 for f in os.listdir(g.dir)} == {0o644}


def test_generate_replaces_the_whole_directory_or_nothing(tmp_path, monkeypatch):
    out = tmp_path / "gen"
    codegen.generate(_qmodel(1), out, name="m")
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}

    def interrupted_rename(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted_rename)
    with pytest.raises(KeyboardInterrupt):
        codegen.generate(_qmodel(2), out, name="m")
    monkeypatch.undo()
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before
    assert os.listdir(tmp_path) == ["gen"]


# =======================================================================================
# Re-running over its own output
# =======================================================================================
@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_generate_reading_from_its_own_output_directory(tmp_path):
    model = _qmodel(3)
    out = tmp_path / "gen"
    codegen.generate(model, out, name="m")
    first = {f: (out / f).read_bytes() for f in os.listdir(out) if not f.endswith(".npz")}
    again = QModel.load(out / "m.qmodel.npz")                # the input lives in the output dir
    codegen.generate(again, out, name="m")
    assert {f: (out / f).read_bytes() for f in os.listdir(out) if not f.endswith(".npz")} == first
    assert sorted(os.listdir(out)) == sorted(list(first) + ["m.qmodel.npz"])
    x = O.int8_input(np.random.default_rng(0), model.input.shape, 8)
    np.testing.assert_array_equal(codegen.load(out)(x), model.predict_int8(x))


def test_saving_over_the_file_just_loaded(tmp_path):
    model = _float_model(4)
    model.compile("adam", "mse")
    model.save(tmp_path / "f.npz")
    loaded = mt.load_model(tmp_path / "f.npz")
    loaded.save(tmp_path / "f.npz")
    for a, b in zip(mt.load_model(tmp_path / "f.npz").get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    q = _qmodel(4)
    q.save(tmp_path / "q.npz")
    QModel.load(tmp_path / "q.npz").save(tmp_path / "q.npz")
    assert codegen.model_hash(QModel.load(tmp_path / "q.npz")) == codegen.model_hash(q)
    assert sorted(os.listdir(tmp_path)) == ["f.npz", "q.npz"]


def test_the_command_line_generates_twice_into_the_same_directory(tmp_path, capsys):
    from minitiny import cli
    _qmodel(5).save(tmp_path / "q.qmodel.npz")
    args = ["generate", str(tmp_path / "q.qmodel.npz"), "--out", str(tmp_path / "gen"), "--name", "m"]
    assert cli.main(args) == 0
    first = {f: (tmp_path / "gen" / f).read_bytes() for f in os.listdir(tmp_path / "gen")
             if not f.endswith(".npz")}
    assert cli.main(args) == 0
    assert {f: (tmp_path / "gen" / f).read_bytes() for f in os.listdir(tmp_path / "gen")
            if not f.endswith(".npz")} == first


# =======================================================================================
# Safety: loading runs no code, names cannot inject C, paths are not followed
# =======================================================================================
class _Payload:
    """Unpickling this creates the file `marker`: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_bomb(tmp_path, name="evil.npz", **extra):
    marker = str(tmp_path / "PWNED")
    arrays = {"config": np.array([_Payload(marker)], dtype=object), **extra}
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name, marker


def test_model_files_never_unpickle(tmp_path):
    path, marker = _pickle_bomb(tmp_path, w0000=np.array([_Payload(str(tmp_path / "PWNED"))], object))
    with pytest.raises(ModelFileError, match="pickle"):
        mt.load_model(path)
    with pytest.raises(GraphError):
        QModel.load(path)
    np.save(tmp_path / "x.npy", np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    from minitiny import cli
    with pytest.raises(cli.UsageError):
        cli.load_data(str(tmp_path / "x.npy"))
    assert not os.path.exists(marker)
    # the control: the same files DO run code when unpickled
    np.load(tmp_path / "x.npy", allow_pickle=True)
    assert os.path.exists(marker)


def test_the_data_set_unpickler_only_builds_arrays(tmp_path):
    """timeseries._load_pickled_npy reads one pickled data set (after its SHA-256 check) with
    an allow-list unpickler: a global outside the list is refused."""
    import io
    from minitiny.datasets import DatasetError
    from minitiny.datasets.timeseries import _load_pickled_npy
    marker = str(tmp_path / "PWNED")
    buf = io.BytesIO()
    np.save(buf, np.array(_Payload(marker), dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="refusing to load global"):
        _load_pickled_npy(buf.getvalue(), "watch.npy")
    assert not os.path.exists(marker)
    good = io.BytesIO()
    np.save(good, np.array({"X": [np.zeros((3, 6))], "y": [1]}, dtype=object), allow_pickle=True)
    assert _load_pickled_npy(good.getvalue(), "watch.npy")["y"] == [1]
    pickle.loads(pickle.dumps(_Payload(marker)))      # the control: plain pickle runs it
    assert os.path.exists(marker)


HOSTILE = ["*/ int INJECTED = 1; /*", "\n#define INJECTED 1\n", "a\\\nINJECTED = 2;", "??/\nINJECTED",
           "x\"; INJECTED; //", "${INJECTED}", "{{ INJECTED }}", "{% raw %}INJECTED", "\u2028INJECTED",
           "INJECTED", "../../INJECTED", "int", "main", "arena", "", "0day", "_Reserved", "__x"]


def _renamed(model, texts, model_name):
    acts = [n for n, t in model.tensors.items() if not t.is_constant]
    mapping = {n: f"{texts[i % len(texts)]}#{i}" for i, n in enumerate(acts)}
    tensors = {}
    for n, t in model.tensors.items():
        new = mapping.get(n, n)
        tensors[new] = QTensor(new, t.shape, t.dtype, t.scale, t.zero_point, t.data, t.quantized_dimension)
    ops = [QOp(op.kind, f"{texts[(i + 3) % len(texts)]}@{i}", [mapping.get(n, n) for n in op.inputs],
               [mapping.get(n, n) for n in op.outputs], op.options) for i, op in enumerate(model.ops)]
    return QModel(model_name, tensors, ops, [mapping.get(n, n) for n in model.inputs],
                  [mapping.get(n, n) for n in model.outputs])


def _code_without_comments(path):
    """The C with every comment removed by the preprocessor itself (-fpreprocessed)."""
    out = subprocess.run([GCC, "-fpreprocessed", "-dD", "-E", "-P", str(path)],
                         capture_output=True, text=True, check=True)
    return out.stdout


def _hostile_model(texts, model_name):
    base = O.Builder(1, (4, 4, 2), "x")
    base.conv(3, activation="relu")
    saved = base.cur
    base.relu6().add(saved).flatten().dense(3).softmax()
    return _renamed(base.model(), texts, model_name)


def _check_no_injection(model, out):
    g = codegen.generate(model, out)
    assert sorted(os.listdir(os.path.dirname(out))) == [os.path.basename(out)]   # nothing beside it
    for path in (g.header, g.source):
        code = _code_without_comments(path)
        assert not re.search(r"\bINJECTED\b", code), path
        subprocess.run([GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only",
                        str(path)], check=True, capture_output=True)
    return g


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
@given(st.lists(st.sampled_from(HOSTILE) | st.text(max_size=12), min_size=1, max_size=6),
       st.sampled_from(HOSTILE) | st.text(max_size=20))
def test_names_cannot_inject_code(texts, model_name):
    """Hostile model, layer and tensor names: the C compiles under -Werror and, outside
    comments, no name survives as a token of its own."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        _check_no_injection(_hostile_model(texts, model_name), os.path.join(d, "gen"))


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_every_hostile_name_at_once_computes_the_same_bits(tmp_path):
    model = _hostile_model(HOSTILE, HOSTILE[0])
    g = _check_no_injection(model, str(tmp_path / "gen"))
    x = O.int8_input(np.random.default_rng(0), model.input.shape, 8)
    np.testing.assert_array_equal(codegen.load(g.dir)(x), model.predict_int8(x))


def test_a_model_named_like_a_path_stays_in_its_directory(tmp_path):
    model = _qmodel(6)
    model.name = "../../escaped/evil"
    g = codegen.generate(model, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert all("/" not in f and ".." not in f for f in os.listdir(g.dir))


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_a_forged_manifest_cannot_point_outside_the_model_directory(tmp_path):
    """Found: codegen.loader read manifest['header'] / ['source'] as paths, so a forged
    manifest made load() read and compile a file outside the model directory."""
    g = codegen.generate(_qmodel(7), tmp_path / "gen", name="m")
    shutil.copy(g.source, tmp_path / "outside.c")
    manifest = json.loads((tmp_path / "gen" / "m_manifest.json").read_text())
    manifest["source"] = "../outside.c"
    (tmp_path / "gen" / "m_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError):
        codegen.load(tmp_path / "gen")
