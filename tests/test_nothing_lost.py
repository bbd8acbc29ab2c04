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
    assert history.epoch == [0]                # History records epoch 0 despite the interrupt
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
# kill -9 at every step of generate and save: the old version or the new, never a mix
# =======================================================================================
FS_STEPS = ("rename", "replace", "link", "symlink", "unlink", "rmdir", "mkdir")


def _killed_at(step, work):
    """Run work() in a forked child that SIGKILLs itself just before its step-th file-system
    change (os.rename, replace, link, unlink, mkdir, rmdir: what tempfile and shutil call
    too) -> True if it was killed, False if work() finished first."""
    pid = os.fork()
    if pid == 0:                                       # the child: never returns
        status = 1
        try:
            count = [0]
            for name in FS_STEPS:
                def hooked(*args, _real=getattr(os, name), **kwargs):
                    count[0] += 1
                    if count[0] == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return _real(*args, **kwargs)
                setattr(os, name, hooked)
            work()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, "the child failed"
    return os.WIFSIGNALED(status)


def _kill_at_every_step(work, check):
    """check() after a kill at step 1, 2, ... until work() runs to its end; -> steps."""
    step = 1
    while _killed_at(step, work):
        check(step)
        step += 1
        assert step < 200, "work() never finished"
    return step - 1


def _snapshot(folder):
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(folder) for f in fs}


def test_kill_at_every_step_of_generate_leaves_one_model_and_the_next_run_recovers(tmp_path, capfd):
    """Found: generate replaced a folder file by file, so a kill between two renames left the
    .h of the new model beside the .c of the old. Now the folder is the old one or the new
    one at every step, and the next generate removes what the killed one left."""
    out = tmp_path / "gen"
    old_model, new_model = _qmodel(11), O.single_op_model(12, "fully_connected", (7,), units=4)
    codegen.generate(old_model, out, name="m")
    (out / "notes.txt").write_text("the user's own file")       # carried over, never lost
    old = _snapshot(out)
    codegen.generate(new_model, tmp_path / "reference", name="m")
    new = dict(_snapshot(tmp_path / "reference"), **{"notes.txt": old["notes.txt"]})
    seen = set()

    def check(step):
        if out.exists():
            now = _snapshot(out)
            assert now in (old, new), f"killed at step {step}: a mix of two models"
            seen.add("old" if now == old else "new")
            codegen.loader.check_folder(out, QModel.load(out / "m.qmodel.npz"))
        else:                                   # killed between the two renames of the swap
            seen.add("aside")
            assert codegen.loader.read_manifest(out)["model_hash"] == codegen.model_hash(old_model)
            assert _snapshot(out) == old        # reading it put the old folder back, whole
        codegen.generate(new_model, out, name="m")          # the next run recovers
        assert _snapshot(out) == new
        assert sorted(os.listdir(tmp_path)) == ["gen", "reference"], f"killed at step {step}"
        shutil.rmtree(out)
        codegen.generate(old_model, out, name="m")
        (out / "notes.txt").write_text("the user's own file")

    steps = _kill_at_every_step(lambda: codegen.generate(new_model, out, name="m"), check)
    assert steps >= 4 and seen == {"old", "new", "aside"}, (steps, seen)
    err = capfd.readouterr().err                            # the recovery says what it did
    assert "stale temporary" in err and "restored the previous version" in err, err


SAVED = {"float model (.npz)": lambda p: [w.tobytes() for w in mt.load_model(p).get_weights()],
         "float model (.keras)": lambda p: [w.tobytes() for w in mt.load_model(p).get_weights()],
         "int8 model (.qmodel.npz)": lambda p: codegen.model_hash(QModel.load(p))}


@pytest.mark.parametrize("what", sorted(SAVED))
def test_kill_at_every_step_of_save_leaves_a_whole_file_and_no_litter(tmp_path, capfd, what):
    """Found: 30 kills during save left 25 .NAME.XXXX.tmp files (190 MB). A kill at any step
    leaves the old model or the new; the next save removes the killed one's temp file."""
    ext = ".keras" if what.endswith("(.keras)") else ".npz"
    names = sorted(["model" + ext, "new" + ext])
    path, read = tmp_path / names[0], SAVED[what]
    WRITERS[what](path, 1)
    old = read(path)
    WRITERS[what](tmp_path / names[1], 2)
    new = read(tmp_path / names[1])
    assert old != new
    litter = []

    def check(step):
        assert read(path) in (old, new), f"killed at step {step}: a torn file"
        litter.extend(f for f in os.listdir(tmp_path) if f not in names)

    steps = _kill_at_every_step(lambda: WRITERS[what](path, 2), check)
    assert steps >= 2 and litter, (steps, litter)             # some kill left a temp file ...
    WRITERS[what](path, 2)
    assert sorted(os.listdir(tmp_path)) == names                        # ... and it is gone
    assert read(path) == new
    assert "stale temporary" in capfd.readouterr().err


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temp_files_are_removed_and_live_ones_kept(tmp_path, capfd):
    """Whose writer is gone is removed (and said); a live writer's file, another target's,
    and an old-style temp file younger than an hour are kept."""
    path = tmp_path / "model.npz"
    dead, alive = _dead_pid(), os.getppid()
    stale = [f".model.npz.{dead}-abcd1234.tmp", ".model.npz.k2j4_x9q.tmp"]
    kept = [f".model.npz.{alive}-abcd1234.tmp", ".model.npz.fresh123.tmp",
            f".other.npz.{dead}-abcd1234.tmp", "model.npz.bak"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x" * 1000)
    hour_ago = os.path.getmtime(tmp_path / stale[1]) - 2 * 3600
    os.utime(tmp_path / stale[1], (hour_ago, hour_ago))
    _float_model(1).save(path)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["model.npz"])
    err = capfd.readouterr().err
    assert f"{path}: removed 2 stale temporary files (2,000 bytes)" in err, err


def _torn(tmp_path):
    """A folder of model 1 with model 2's header copied in (what a torn write left)."""
    codegen.generate(_qmodel(21), tmp_path / "one", name="m")
    codegen.generate(O.single_op_model(22, "fully_connected", (5,), units=3), tmp_path / "two", name="m")
    shutil.copy(tmp_path / "two" / "m_model.h", tmp_path / "one" / "m_model.h")
    return tmp_path / "one"


def test_load_and_firmware_run_refuse_a_folder_mixing_two_models(tmp_path, capsys):
    torn = _torn(tmp_path)
    with pytest.raises(codegen.MixedModelError) as e:
        codegen.load(torn)
    text = str(e.value)
    h1, h2 = codegen.model_hash(_qmodel(21))[:16], codegen.model_hash(
        O.single_op_model(22, "fully_connected", (5,), units=3))[:16]
    assert f"m_model.c sha256:{h1}" in text and f"m_model.h sha256:{h2}" in text, text
    assert f"m_manifest.json sha256:{h1}" in text, text
    from minitiny.firmware import model as fwmodel
    from minitiny.firmware.__main__ import main as firmware_main
    with pytest.raises(codegen.MixedModelError):
        fwmodel.load(torn)
    assert firmware_main(["run", str(torn)]) == 2      # refused before anything is built
    assert "of different models" in capsys.readouterr().err
    codegen.load(tmp_path / "two")                     # the control: one model loads


def test_verify_refuses_a_model_file_of_another_model(tmp_path, capsys):
    """The .npz the check compares against must be the model of the C too."""
    from minitiny import cli
    codegen.generate(_qmodel(23), tmp_path / "one", name="m")
    _qmodel(24).save(tmp_path / "one" / "m.qmodel.npz")
    assert cli.main(["verify", str(tmp_path / "one"), "-n", "4"]) == 2
    err = capsys.readouterr().err
    assert "of different models" in err and "m.qmodel.npz sha256:" in err, err
    torn = _torn(tmp_path)
    assert cli.main(["verify", str(torn), "-n", "4"]) == 2
    assert "of different models" in capsys.readouterr().err


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
