"""UNIDIRECTIONAL_SEQUENCE_LSTM (kernels/lstm.py): TFLM's integer LSTM, its state kept from one
invoke to the next until a reset.

Oracles: TFLite Micro's outputs stored beside the TF-made files (tests/data/architectures/lstm,
made by scripts/make_architectures.py: `y0` with a reset before every sample, `stream_y0`
invoked one sample after another), TFLM run live on files minitiny's writer makes of random
LSTMs (hypothesis draws sizes and scales, extreme ones too), and for the generated C the
NumPy reference it matched.
"""
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitiny import codegen
from minitiny import firmware as fw
from minitiny.quant import tflm
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite
from minitiny.testing.models import lstm_model
from int8_oracle import requires_tflm

HERE = os.path.dirname(__file__)
ARCH = os.path.join(HERE, "data", "architectures")
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
FIRMWARE_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm")


def stored(name):
    with np.load(os.path.join(ARCH, name + ".expected.npz")) as z:
        return {k: z[k] for k in z.files}


# Random LSTMs: minitiny.testing.models.lstm_model, built as the converter builds them
def random_x(q, seed, n):
    x = q.tensors[q.inputs[0]]
    info = np.iinfo(x.dtype)
    rng = np.random.default_rng(seed)
    a = rng.integers(info.min, info.max + 1, (n,) + x.shape).astype(x.dtype)
    if n > 2:
        a[0], a[1] = info.min, info.max
    return a


def assert_equal(label, ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs).reshape(np.shape(ours))
    bad = np.argwhere(ours != theirs)
    assert not len(bad), (f"{label}: {len(bad)} of {ours.size} values differ; first at "
                          f"{tuple(bad[0])}: ours {ours[tuple(bad[0])]}, TFLM {theirs[tuple(bad[0])]}")


# ---------------------------------------------------------------------------------------
# The TF-made files
# ---------------------------------------------------------------------------------------
def test_tf_lstm_runs_as_tflm_ran_it_reset_and_streamed():
    q = from_tflite(os.path.join(ARCH, "lstm.tflite"))
    z = stored("lstm")
    assert [op.kind for op in q.ops][0] == "unidirectional_sequence_lstm"
    assert len(q.states) == 2 and all(q.tensors[s].variable for s in q.states)
    assert [q.tensors[s].dtype for s in q.states] == ["int8", "int16"]
    assert_equal("predict_int8 (a reset before each sample)", q.predict_int8(z["x0"]), z["y0"])
    q.reset_state()
    half = len(z["x0"]) // 2           # the state carries across calls too
    streamed = np.concatenate([q.stream_int8(z["x0"][:half]), q.stream_int8(z["x0"][half:])])
    assert_equal("stream_int8 (state kept)", streamed, z["stream_y0"])
    assert np.any(z["stream_y0"] != z["y0"])       # the state does change the outputs
    q.reset_state()
    assert_equal("stream_int8 after reset_state", q.stream_int8(z["x0"][:5]), z["stream_y0"][:5])
    # predict_int8 neither reads nor moves the streamed state
    q.predict_int8(z["x0"][:3])
    assert_equal("stream_int8 after predict_int8", q.stream_int8(z["x0"][5:9]), z["stream_y0"][5:9])


def test_tf_lstm_state_round_trips_through_save_and_the_writer(tmp_path):
    q = from_tflite(os.path.join(ARCH, "lstm.tflite"))
    q.save(tmp_path / "m.npz")
    back = QModel.load(tmp_path / "m.npz")
    assert back.states == q.states
    again = from_tflite(to_tflite(q))
    assert [again.tensors[s].variable for s in again.states] == [True, True]
    z = stored("lstm")
    assert_equal("loaded", back.predict_int8(z["x0"][:8]), z["y0"][:8])
    assert_equal("written and read back", again.predict_int8(z["x0"][:8]), z["y0"][:8])


@requires_tflm
def test_tf_lstm_written_by_minitiny_runs_in_tflm_as_the_original():
    q = from_tflite(os.path.join(ARCH, "lstm.tflite"))
    z = stored("lstm")
    data = to_tflite(q)
    assert_equal("TFLM on minitiny's file, reset", tflm.run_tflm(data, z["x0"]), z["y0"])
    assert_equal("TFLM on minitiny's file, streamed", tflm.run_tflm(data, z["x0"], stream=True),
                 z["stream_y0"])


@requires_tflm
def test_tf_lstm_state_file_against_live_tflm():
    """tests/data/tflite/lstm_state.tflite (scripts/make_tflite_testdata.py): LSTM(8), Dense."""
    path = os.path.join(HERE, "data", "tflite", "lstm_state.tflite")
    q = from_tflite(path)
    x = random_x(q, 3, 24)
    with open(path, "rb") as f:
        data = f.read()
    assert_equal("reset", q.predict_int8(x), tflm.run_tflm(data, x))
    q.reset_state()
    assert_equal("streamed", q.stream_int8(x), tflm.run_tflm(data, x, stream=True))


# ---------------------------------------------------------------------------------------
# Random LSTMs through the writer, against TFLM
# ---------------------------------------------------------------------------------------
def check_streamed(q, x, label):
    """NumPy vs TFLM, the samples invoked one after another (the state carried), and each
    from a reset."""
    q.reset_state()
    assert_equal(f"{label}, streamed", q.stream_int8(x), tflm.run_tflm(q, x, stream=True))
    assert_equal(f"{label}, reset", q.predict_int8(x), tflm.run_tflm(q, x))


@st.composite
def lstm_configs(draw, large=False):
    if large:          # where users go: a wider layer, longer sequences
        units, features, steps = draw(st.integers(32, 64)), draw(st.integers(8, 40)), draw(st.integers(8, 32))
    else:
        units, features, steps = draw(st.integers(1, 12)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    extreme = draw(st.booleans())
    return dict(
        seed=draw(st.integers(0, 2 ** 31 - 1)), steps=steps, features=features, units=units,
        s_x=2.0 ** draw(st.floats(-16, 6) if extreme else st.floats(-8, 0)),
        s_w=2.0 ** draw(st.floats(-14, -2) if extreme else st.floats(-9, -5)),
        s_h=2.0 ** draw(st.floats(-16, 4) if extreme else st.floats(-9, -5)),
        cell_log2=draw(st.integers(-30, 2) if extreme else st.integers(-15, -8)),
        bias_spread=2.0 ** draw(st.floats(-6, 6)),
        cell_clip=draw(st.sampled_from([0.0, 0.0, 0.5, 3.0])),
        int16=draw(st.booleans()))


@requires_tflm
@given(cfg=lstm_configs())
def test_random_lstm_matches_tflm(cfg):
    q = lstm_model(**cfg)
    check_streamed(q, random_x(q, cfg["seed"], 6), f"lstm {cfg}")


@requires_tflm
@settings(max_examples=60 if THOROUGH else 3)
@given(cfg=lstm_configs(large=True))
def test_large_random_lstm_matches_tflm(cfg):
    q = lstm_model(**cfg)
    check_streamed(q, random_x(q, cfg["seed"], 4), f"large lstm {cfg}")


@requires_tflm
def test_non_power_of_two_cell_scale_rounds_its_log2_as_tflm():
    """TFLM's CreateLstmCellStateInfo takes round(log2 s_c) whether s_c is a power of two or not."""
    q = lstm_model(5, 4, 3, 6, cell_log2=0.00037)
    check_streamed(q, random_x(q, 5, 5), "cell scale 0.00037")


# ---------------------------------------------------------------------------------------
# Bad input: named, never deep in NumPy
# ---------------------------------------------------------------------------------------
def test_state_must_be_variable_and_never_a_model_input():
    q = lstm_model(0, 3, 2, 4)
    t = dict(q.tensors)
    t["c"] = QTensor("c", (4,), "int16", 2.0 ** -11, 0)               # not variable
    with pytest.raises(GraphError, match="cell state 'c' must be a variable int16 tensor"):
        QModel("m", t, q.ops, ["x", "c"], ["y"])
    with pytest.raises(GraphError, match="'h' is a variable tensor"):
        QModel("m", q.tensors, q.ops, ["x", "h"], ["y"])
    t = dict(q.tensors)
    t["c"] = QTensor("c", (4,), "int16", 64.0, 0, variable=True)
    with pytest.raises(GraphError, match="cell state 'c': scale 64 .* outside"):
        QModel("m", t, q.ops, ["x"], ["y"])
    with pytest.raises(GraphError, match="holds no constant data"):
        QTensor("s", (2,), "int8", 0.1, 0, np.zeros(2), variable=True)


# ---------------------------------------------------------------------------------------
# The generated C: state in the arena, kept across NAME_invoke until NAME_reset()
# ---------------------------------------------------------------------------------------
def test_tf_lstm_in_c_reset_and_streamed(tmp_path, shim_flags):
    """Host C of the TF-made file, reference and DSP variants (the LSTM runs its reference
    kernel in every variant), against TFLM's stored outputs: each sample after NAME_reset()
    and all of them streamed, the state kept across invokes and across calls."""
    q = from_tflite(os.path.join(ARCH, "lstm.tflite"))
    z = stored("lstm")
    g = codegen.generate(q, tmp_path / "reference", name="m")
    assert g.manifest["reset"] == "m_reset"
    assert {s["name"] for s in g.manifest["state"]} == set(q.states)
    # the state lives the whole invoke, from the input copy to the output copy: nothing
    # else is planned over its bytes
    rows = [r for r in g.manifest["plan"] if set(r["tensors"]) & set(q.states)]
    assert len(rows) == 2 and all((r["first"], r["last"]) == (-1, len(q.ops)) for r in rows)
    for variant, flags in (("reference", ()), ("dsp", shim_flags)):
        if variant != "reference":
            codegen.generate(q, tmp_path / variant, name="m", variant=variant)
        c = codegen.load(tmp_path / variant, flags=flags)
        assert_equal(f"{variant} C, reset", c(z["x0"]), z["y0"])
        c.reset()
        half = len(z["x0"]) // 2
        streamed = np.concatenate([c(z["x0"][:half], stream=True), c(z["x0"][half:], stream=True)])
        assert_equal(f"{variant} C, streamed", streamed, z["stream_y0"])
        c.reset()
        assert_equal(f"{variant} C, after m_reset", c(z["x0"][:5], stream=True), z["stream_y0"][:5])
    sanitized = codegen.load(tmp_path / "reference", sanitize=True)
    assert_equal("sanitized C, reset", sanitized(z["x0"][:6]), z["y0"][:6])
    assert_equal("sanitized C, streamed", sanitized(z["x0"][:6], stream=True), z["stream_y0"][:6])


def test_first_invoke_starts_from_the_reset_state(tmp_path):
    """A fresh library (static arena all zeros, the hidden state's zero point not 0) resets
    itself before its first invoke, as TFLM resets its variable tensors at allocation."""
    q = lstm_model(11, 4, 3, 5)
    assert int(q.tensors["h"].zero_point) != 0
    codegen.generate(q, tmp_path, name="m")
    x = random_x(q, 11, 3)
    q.reset_state()
    assert_equal("first invokes", codegen.load(tmp_path)(x, stream=True), q.stream_int8(x))


@settings(max_examples=40 if THOROUGH else 4)
@given(cfg=lstm_configs())
def test_random_lstm_c_matches_numpy_streamed(cfg):
    q = lstm_model(**cfg)
    x = random_x(q, cfg["seed"], 4)
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(q, d, name="m")
        c = codegen.load(d)
        q.reset_state()
        assert_equal(f"C {cfg}, streamed", c(x, stream=True), q.stream_int8(x))
        assert_equal(f"C {cfg}, reset", c(x), q.predict_int8(x))


@settings(max_examples=10 if THOROUGH else 1)
@given(cfg=lstm_configs(large=True))
def test_large_random_lstm_c_matches_numpy_under_sanitizers(cfg):
    q = lstm_model(**cfg)
    x = random_x(q, cfg["seed"], 3)
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(q, d, name="m")
        q.reset_state()
        assert_equal(f"sanitized C {cfg}", codegen.load(d, sanitize=True)(x, stream=True), q.stream_int8(x))


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="clang or arm-none-eabi-gcc is missing")
@pytest.mark.parametrize("int16", [False, True])
def test_lstm_c_compiles_strictly_with_every_compiler(tmp_path, int16):
    q = lstm_model(2, 3, 2, 4, int16=int16, cell_clip=1.0)
    g = codegen.generate(q, tmp_path, name="m")
    for cc in (["gcc", "-O2"], ["clang", "-O2"], ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-Os",
                                                  "-ffreestanding"]):
        r = subprocess.run(cc + STRICT + ["-c", os.path.join(g.dir, "m_model.c"), "-o", str(tmp_path / "m.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, (cc[0], r.stderr)


@pytest.mark.skipif(any(shutil.which(t) is None for t in FIRMWARE_TOOLS),
                    reason="arm-none-eabi-gcc or qemu-system-arm is missing")
def test_tf_lstm_on_the_m4(tmp_path):
    """The TF-made LSTM on the emulated Cortex-M4 through the firmware harness: each input
    after m_reset(), as TFLM's stored outputs."""
    q = from_tflite(os.path.join(ARCH, "lstm.tflite"))
    z = stored("lstm")
    codegen.generate(q, tmp_path / "m4", name="m")
    r = fw.run(tmp_path / "m4", board="cortex-m4", inputs=z["x0"][:4], timeout=120)
    assert r.status == "ok", r.message
    assert_equal("Cortex-M4", r.outputs.reshape(4, -1), z["y0"][:4])
    assert r.matches_reference is True


def test_ops_table_says_truly_what_an_unrolled_gru_becomes():
    """docs/OPS.md's note on recurrent layers names the builtins an unrolled Keras GRU
    becomes: exactly the kinds of the TF-made gru_unrolled file's LSTM-free graph."""
    from minitiny.quant import supported
    text = supported.markdown()
    note = text[text.index("A GRU has no fused op"):].split("\n")[0]
    named = {b.kind for b in supported.OPS if b.kind and f"`{b.name}`" in note}
    gru = from_tflite(os.path.join(ARCH, "gru_unrolled.tflite"))
    per_step = {op.kind for op in gru.ops} - {"reshape", "softmax"}        # the head and the input
    assert named == per_step
