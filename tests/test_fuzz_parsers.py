"""Bad input: every parser of outside data, fuzzed for a bounded budget, and what fuzzing found.

The fuzzer is bench/fuzz.py (longer runs: `python bench/fuzz.py --seconds 600`). Here it
runs once per module, in a child process under a 3 GB address-space limit, with a fixed
seed and a fixed number of inputs per target (the same inputs on every machine; about 20 s
in all), and every target must end with zero crashes: an exception other than the parser's
documented error, an input slower than 5 s (60 s for a command line, which may build
firmware), or memory beyond the limit. How many inputs each target tried is printed at the
end of the module.

The second half pins every crash the fuzzer found, as a small input written by hand, with
the error the parser now gives. A finding not yet fixed in a file this suite may not change
goes in KNOWN (xfail, strict: it fails loudly once fixed, so the marker gets removed).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minitiny as mt
from minitiny.datasets import DatasetError, parse_idx, parse_ts, parse_wav
from minitiny.quant.graph import GraphError, QModel, QTensor
from minitiny.saving import ModelFileError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "bench", "fuzz.py")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import fuzz  # noqa: E402
from figures import show as show_figures  # noqa: E402  (tests/figures.py)

# inputs per target: each about 2-4 s on a CI core (measured), ~20 s in all
BUDGET = {"keras_npz": 2000, "qmodel_npz": 1000, "tflite": 15000, "idx": 200000, "ts": 100000,
          "wav": 200000, "npy_data": 500, "cli": 300}
# targets with a known, unfixed finding in a file this suite does not own (xfail, strict)
KNOWN = {}


@pytest.fixture(scope="module")
def figures(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "figures.json"
    cmd = [sys.executable, FUZZ, "--seconds", "60", "--seed", "0", "--json", str(out)]
    cmd += [f"--inputs={name}={n}" for name, n in BUDGET.items()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=str(out.parent))
    assert out.exists(), f"the fuzzer did not finish:\n{run.stdout}\n{run.stderr}"
    results = {r["target"]: r for r in json.loads(out.read_text())}
    yield results
    text = "\nfuzzing (inputs tried, crashes):\n" + fuzz.table(list(results.values()))
    show_figures(request, text)


@pytest.mark.parametrize("target", [
    pytest.param(t, marks=pytest.mark.xfail(reason=KNOWN[t], strict=True)) if t in KNOWN else t
    for t in BUDGET])
def test_fuzzing_finds_no_crash(figures, target):
    r = figures[target]
    if r.get("skipped"):
        pytest.skip(f"{target}: {r['skipped']}")
    assert r["inputs"] >= min(BUDGET[target], 100), r
    assert not r["crashes"], "\n" + fuzz.table([r])


def test_the_fuzzer_catches_a_planted_crash(tmp_path):
    """The harness itself: a parser that raises the wrong error must be reported."""
    class Planted(fuzz.IdxTarget):
        def run(self, data, work):
            if len(data) > 3 and data[3] == 0:
                raise IndexError("planted")
            super().run(data, work)
    r = fuzz.fuzz(Planted(), seconds=10, inputs=3000)
    assert [c["type"] for c in r["crashes"]] == ["IndexError"], r


# =======================================================================================
# Regression tests: the fuzzer's findings, each as a hand-made input
# =======================================================================================
# ---- IDX ------------------------------------------------------------------------------------
def test_idx_zero_dimension_beside_huge_ones():
    """Found: dims (2^32-1, 2^32-1, 0) need 0 data bytes, but NumPy refused the shape
    (ValueError from reshape)."""
    data = bytes([0, 0, 0x08, 3]) + (2 ** 32 - 1).to_bytes(4, "big") * 2 + bytes(4)
    with pytest.raises(DatasetError, match="too large"):
        parse_idx(data, "big.idx")
    empty = bytes([0, 0, 0x08, 2]) + (5).to_bytes(4, "big") + bytes(4)
    assert parse_idx(empty).shape == (5, 0)


def _rewrite(path, edit=None, arrays_edit=None):
    """Rewrite a saved model file (.npz: arrays + a JSON config) with its config and arrays
    edited in place by the given functions: a forged file, shaped by the test."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(arrays["config"].tobytes())
    if edit:
        edit(config)
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), np.uint8)
    if arrays_edit:
        arrays_edit(arrays)
    np.savez(path, **arrays)
    return path


# ---- float model files (minitiny.load_model) --------------------------------------------------
def _keras_file(tmp_path, edit=None, arrays_edit=None):
    mt.random.seed(0)
    model = mt.Sequential([mt.layers.Dense(3, activation="relu", input_shape=(4,)),
                           mt.layers.Dense(2)])
    model.compile("adam", "mse")
    path = tmp_path / "m.npz"
    model.save(path)
    return _rewrite(path, edit, arrays_edit)


def _set(path, value):
    def edit(c):
        node = c
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


@pytest.mark.parametrize("path,value,message", [
    (("model", "layers", 0), "Dense", "layer 0 must be dict"),          # was AttributeError
    (("model", "layers"), [], "no layers"),                              # was IndexError
    (("compile",), "adam", "'compile' must be a JSON object"),           # was AttributeError
    (("compile", "optimizer"), "adam", "optimizer must be"),             # was AttributeError
    (("compile", "loss"), 3, "loss must be"),                            # was AttributeError
    (("compile", "metrics"), [1], "metrics must be a list of names"),
    (("weights", 0), None, "weight entry 0 must be dict"),
    (("model", "input_shape"), 4, "'input_shape' must be"),
])
def test_forged_float_model_configs(tmp_path, path, value, message):
    with pytest.raises(ModelFileError, match=message) as e:
        mt.load_model(_keras_file(tmp_path, _set(path, value)))
    assert "m.npz" in str(e.value)


def test_functional_layer_reading_nothing(tmp_path):
    """Found: a functional model's layer with "inputs": [] raised IndexError."""
    x = mt.Input((4,))
    model = mt.Model(x, mt.layers.Dense(2, name="d")(mt.layers.Dense(3, name="c")(x)))
    model.save(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz") as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(arrays["config"].tobytes())
    config["model"]["layers"][1]["inputs"] = []
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), np.uint8)
    np.savez(tmp_path / "f.npz", **arrays)
    with pytest.raises(ModelFileError, match="'d' reads no input"):
        mt.load_model(tmp_path / "f.npz")


def test_a_file_declaring_a_gigantic_layer_is_refused_without_filling_memory(tmp_path):
    """Found (MemoryError after drawing 22 GB of random weights): a forged Dense(10^9)
    must fail at the shape check; loading draws no weights at all."""
    path = _keras_file(tmp_path, _set(("model", "layers", 0, "config", "units"), 10 ** 9))
    with pytest.raises(ModelFileError, match="m.npz"):
        mt.load_model(path)


def test_loading_a_model_does_not_move_the_random_stream(tmp_path):
    path = _keras_file(tmp_path)
    mt.random.seed(7)
    want = mt.random.rng().random(3)
    mt.random.seed(7)
    mt.load_model(path)
    assert np.array_equal(mt.random.rng().random(3), want)


# ---- int8 model files (QModel.load) ------------------------------------------------------------
def _qmodel_file(tmp_path, edit=None, arrays_edit=None):
    q = fuzz.seed_qmodels()[1]
    path = tmp_path / "q.npz"
    q.save(path)
    return _rewrite(path, edit, arrays_edit)


@pytest.mark.parametrize("path,value,message", [
    (("ops", 0, "options"), None, "'options' must be dict"),        # was AttributeError
    (("tensors", 0, "shape"), [1e308], "shape"),                     # was OverflowError
    (("tensors", 0, "shape"), [-3], "shape"),
    (("tensors",), {}, "'tensors' must be list"),
    (("ops", 0, "inputs"), ["x", 1], "list of tensor names"),
    (("single_rounding",), 1, "'single_rounding' must be bool"),
])
def test_forged_int8_model_configs(tmp_path, path, value, message):
    with pytest.raises(GraphError, match=message) as e:
        QModel.load(_qmodel_file(tmp_path, _set(path, value)))
    assert "q.npz" in str(e.value)


def test_int8_model_config_stored_as_a_number(tmp_path):
    """Found (MemoryError): bytes(np.array(10**9)) makes a billion zero bytes."""
    def edit(arrays):
        arrays["config"] = np.array(10 ** 9)
    with pytest.raises(GraphError, match="1-D uint8"):
        QModel.load(_qmodel_file(tmp_path, arrays_edit=edit))


def test_int8_weights_out_of_range_are_refused_not_wrapped(tmp_path):
    """int16 weights of 300 would silently become 44 as int8."""
    def edit(arrays):
        key = next(k for k in arrays if k.startswith("data_"))
        arrays[key] = arrays[key].astype(np.int16) + 300
    with pytest.raises(GraphError, match="dtype int16, expected int8"):
        QModel.load(_qmodel_file(tmp_path, arrays_edit=edit))
    with pytest.raises(GraphError, match=r"integers in \[-128, 127\]"):
        QTensor("w", (1,), "int8", 0.1, 0, np.array([300]))


def test_int8_model_file_that_is_a_plain_npy(tmp_path):
    """Found through the command line (`minitiny generate x.npy`): TypeError, 'ndarray does
    not support the context manager protocol'."""
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(GraphError, match="not a .npz"):
        QModel.load(tmp_path / "x.npy")


def test_int8_model_with_an_unknown_zip_compression(tmp_path):
    """Found: NotImplementedError('That compression method is not supported') from zipfile."""
    path = _qmodel_file(tmp_path)
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")                   # the first central directory entry
    data[central + 10:central + 12] = (99).to_bytes(2, "little")      # its method: 99
    path.write_bytes(bytes(data))
    with pytest.raises(GraphError, match="q.npz"):
        QModel.load(path)


# ---- .tflite files (minitiny.from_tflite) --------------------------------------------------------
@pytest.mark.parametrize("kind", ["logistic", "tanh"])
def test_a_logistic_input_scale_tflm_cannot_rescale(kind):
    """Found (a raw ValueError 'negative shift count' from fixedpoint.calculate_input_radius):
    a .tflite whose LOGISTIC input scale is below 2^-28."""
    import struct
    from minitiny.quant.tflite_io import to_tflite
    from minitiny.quant.tflite_read import from_tflite
    import int8_oracle as O
    with pytest.raises(GraphError, match="below 2\\^-28"):
        O.elementwise_model(kind, np.float32(1e-12), 0)
    good = O.elementwise_model(kind, np.float32(2.0 ** -20), 0)
    data = to_tflite(good)
    scale = struct.pack("<f", 2.0 ** -20)
    assert data.count(scale) >= 1
    with pytest.raises(GraphError, match="below 2\\^-28"):
        from_tflite(data.replace(scale, struct.pack("<f", 1e-12)))


# ---- the command line's --data x.npy,y.npy (minitiny/cli/__init__.py) ------------------------------
def _npy_with_header(header):
    body = (header + " " * (64 - 10 - len(header) - 1) + "\n").encode()
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


@pytest.mark.parametrize("header", ["{'descr': '<f8', 'fortran_order': False, 'shape': (3,",
                                    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,))}"])
def test_cli_data_with_a_damaged_npy_header(tmp_path, header):
    """Found: np.load's header parser raised tokenize.TokenError, SyntaxError and EOFError,
    which cli._load_npy let through (exit 1, 'error: TokenError: ...')."""
    from minitiny import cli
    (tmp_path / "x.npy").write_bytes(_npy_with_header(header))
    with pytest.raises(cli.UsageError):
        cli.load_data(str(tmp_path / "x.npy"))


# ---- text and audio parsers: edges the fuzzer walks through -------------------------------------
@pytest.mark.parametrize("text", [b"@data\n", b"@classLabel true a\n@data\n1,2:b\n",
                                  b"@dimensions 0\n@data\n1\n", b"@data\n1,,2\n",
                                  b"\xff\xfe@data\n1\n", b"@data\n1e999,nan,?\n", b"@data\n:\n"])
def test_ts_edges_are_read_or_refused_naming_the_file(text):
    try:
        ts = parse_ts(text, "edge.ts")
    except DatasetError as e:
        assert "edge.ts" in str(e)
    else:
        assert ts.series and all(s.ndim == 2 and s.dtype == np.float64 for s in ts.series)


def test_wav_edges_are_refused_naming_the_problem():
    with pytest.raises(DatasetError, match="block_align"):
        parse_wav(fuzz.wav_bytes([1, 2]).replace(b"\x02\x00\x10\x00", b"\x03\x00\x10\x00", 1))
    with pytest.raises(DatasetError, match="truncated"):
        parse_wav(fuzz.wav_bytes([1, 2, 3])[:-3])
    with pytest.raises(DatasetError, match="IEEE float"):
        parse_wav(fuzz.wav_bytes([1]).replace(b"fmt \x10\x00\x00\x00\x01", b"fmt \x10\x00\x00\x00\x03", 1))
