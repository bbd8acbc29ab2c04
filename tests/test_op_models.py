"""One TensorFlow-made model per operator and mode (tests/data/ops/, scripts/make_op_models.py),
and the rule that keeps the supported table honest: every (builtin, mode) row of
minitiny/quant/supported.py appears in some file TensorFlow made (tests/data/*/ with a
manifest naming its script), or in NOT_FROM_KERAS with the reason TensorFlow never writes it.

Each file here imports and runs bit for bit as its oracle ran it (manifest.json "oracle":
TFLite Micro, or TFLite's reference kernels where TFLM cannot run the file); TFLM runs the
file minitiny's writer makes of it and gives the same outputs; the host C == NumPy.
"""
import hashlib
import json
import os

import numpy as np
import pytest

from minitiny import codegen
from minitiny.quant import supported
from minitiny.quant import tflm as tflm_runtime
from minitiny.quant.tflite_float_unary import fold_float_unary
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import TensorType, from_tflite, op_name, read_flatbuffer
from test_architectures import assert_same, expected, first, outputs_of

DATA = os.path.join(os.path.dirname(__file__), "data")
OPS = os.path.join(DATA, "ops")
with open(os.path.join(OPS, "manifest.json")) as _f:
    MANIFEST = json.load(_f)["files"]
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"

# (builtin, mode) -> why no TensorFlow-made file can hold it (checked: the row exists, and
# no file holds it; when one does, the entry must go)
NOT_FROM_KERAS = {
    ("SQUEEZE", "int8"): "TensorFlow 2.21 writes RESHAPE for keras.ops.squeeze and tf.squeeze",
    ("SQUEEZE", "int16x8"): "as in int8",
    ("ELU", "int8"): "TensorFlow 2.21's converter keeps ELU in float32, between DEQUANTIZE and "
                     "QUANTIZE (TFLM's int8 ELU runs files other tools write)",
    ("PRELU", "int16x8"): "TensorFlow 2.21's converter refuses it ('Quantization to 16x8-bit not "
                          "yet supported for op: PRELU'); TFLM runs it with an int8 alpha "
                          "(tests/test_int16_ops.py runs minitiny's files in TFLM)",
    ("PADV2", "int16x8"): "TensorFlow 2.21 writes a 16x8 PADV2's constant_values as float32, "
                          "which TFLM refuses (pad_common.cc); minitiny's writer writes int16 "
                          "(tests/test_int16_ops.py runs those files in TFLM)",
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", "int16x8"): "TensorFlow 2.21's calibrator refuses it "
                                                 "('Quantization to 16x8-bit not yet supported'); "
                                                 "TFLM runs it: tests/test_lstm.py compares minitiny "
                                                 "with TFLM on 16x8 LSTM files minitiny's writer makes",
}


def tf_made_files():
    """Every .tflite under tests/data whose directory's manifest names the script that made it."""
    for d in sorted(os.listdir(DATA)):
        manifest = os.path.join(DATA, d, "manifest.json")
        if not os.path.exists(manifest):
            continue
        with open(manifest) as f:
            if not str(json.load(f).get("made_by", "")).startswith("scripts/make_"):
                continue
        for name in sorted(os.listdir(os.path.join(DATA, d))):
            if name.endswith(".tflite"):
                yield os.path.join(DATA, d, name)


def builtins_and_modes(path):
    """{(builtin name, mode)} of a file's operators. An operator's mode is its activations'
    type: that of its first activation input (an int8 LSTM keeps int16 state and gates inside),
    or of its output where that input is float32 or uint8 (the QUANTIZE at an edge); int16 is
    the 16x8 mode, and a float operator has none (but NEG and SQUARE between DEQUANTIZE and
    QUANTIZE, the int8 operator minitiny imports the three as)."""
    with open(path, "rb") as f:
        tensors, ops, _, outputs, _ = read_flatbuffer(f.read(), path)
    # NEG and SQUARE run in float32 between DEQUANTIZE and QUANTIZE in an int8 model: the
    # importer folds the three into one int8 operator (minitiny/quant/tflite_float_unary.py)
    ops, _ = fold_float_unary(ops, tensors, outputs)
    modes = {TensorType.INT8: "int8", TensorType.INT16: "int16x8"}
    found = set()
    for op in ops:
        data = [t for t in op.inputs if t >= 0 and tensors[t].data is None]
        for t in data[:1] + op.outputs[:1]:
            if tensors[t].type in modes:
                found.add((op_name(op.code), modes[tensors[t].type]))
                break
    return found


def test_every_supported_op_and_mode_is_in_a_file_tensorflow_made():
    seen = set()
    for path in tf_made_files():
        seen |= builtins_and_modes(path)
    rows = {(op.name, mode) for op in supported.OPS for mode in op.modes}
    assert set(NOT_FROM_KERAS) <= rows, sorted(set(NOT_FROM_KERAS) - rows)
    missing = sorted(rows - seen - set(NOT_FROM_KERAS))
    assert not missing, f"no TensorFlow-made file has {missing}: add one to scripts/make_op_models.py"
    stale = sorted(set(NOT_FROM_KERAS) & seen)
    assert not stale, f"a TensorFlow-made file has {stale} now: remove it from NOT_FROM_KERAS"


def test_the_files_are_the_ones_the_script_made():
    assert set(MANIFEST) == {f for f in os.listdir(OPS) if f.endswith(".tflite")}
    for name, info in MANIFEST.items():
        for key, suffix in (("sha256", ".tflite"), ("expected_sha256", ".expected.npz")):
            with open(os.path.join(OPS, name[:-len(".tflite")] + suffix), "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == info[key], name
        assert info["bytes"] < 50_000, name


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_op_model(name, tmp_path, shim_flags):
    path = os.path.join(OPS, name)
    q = from_tflite(path)
    z = expected(os.path.join("..", "ops", name))
    x = z["x0"]
    oracle = [z[k] for k in sorted(k for k in z if k.startswith("y"))]
    assert_same(f"{name}: NumPy vs {MANIFEST[name]['oracle']}", outputs_of(q.predict_int8(x)), oracle)
    if tflm_runtime.available():                   # TFLM on minitiny's own file of the model
        assert_same(f"{name}: TFLM on minitiny's .tflite", outputs_of(tflm_runtime.run_tflm(to_tflite(q), x)),
                    oracle)
    no_c = sorted({op.kind for op in q.ops} & {b.kind for b in supported.OPS if not b.c})
    if no_c:                                         # (ARG_MAX's int32 output): refused by name
        with pytest.raises(codegen.CodegenError, match=rf"op kind\(s\) {', '.join(no_c)} have no C"):
            codegen.generate(q, tmp_path / "refused", name="m")
        return
    few = first(x, len(x) if THOROUGH else 16)
    want = outputs_of(q.predict_int8(few))
    int16 = q.tensors[q.inputs[0]].dtype == "int16"
    for variant, flags in (("reference", ()), ("dsp", shim_flags)):
        if variant == "dsp" and int16:
            continue                                 # 16x8 C: the reference kernels only
        codegen.generate(q, tmp_path / variant, name="m", variant=variant)
        got = outputs_of(codegen.load(tmp_path / variant, flags=flags)(few))
        assert_same(f"{name}: {variant} C vs NumPy", got, want)
    got = outputs_of(codegen.load(tmp_path / "reference", sanitize=True)(first(x, 4)))
    assert_same(f"{name}: sanitized reference C vs NumPy", got, [o[:4] for o in want])
