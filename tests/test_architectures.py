"""The architectures users bring (tests/data/architectures/, made by
scripts/make_architectures.py with TensorFlow 2.21's converter, TFLite Micro's outputs stored
beside each file): every file either imports and runs bit for bit as TFLite Micro ran it, or
is refused with exactly the unsupported items listed in MISSING below.

The oracle is TFLite Micro itself: its outputs on full-range and in-distribution inputs,
computed when the files were made (NAME.expected.npz), so nothing here needs TensorFlow.
One exception, which manifest.json names ("oracle"): TFLM runs dilated_unfused's
SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND chains non-deterministically, so its outputs
are TensorFlow Lite's reference kernels'; minitiny imports each chain as one dilated
convolution, and TFLM running minitiny's file (below) must give those outputs again.
Where tflite-micro is installed, TFLM also runs the file minitiny's writer makes of the
imported model, and must give the stored outputs again. Where `generate` accepts the
imported model, the host C (the reference kernels, and the DSP
kernels through the ACLE shim) must give the same bits as the NumPy reference.
"""
import hashlib
import json
import os
import re

import numpy as np
import pytest

from minitiny import codegen
from minitiny.quant import supported
from minitiny.quant import tflm as tflm_runtime
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import UnsupportedTFLiteError, from_tflite

DATA = os.path.join(os.path.dirname(__file__), "data", "architectures")
with open(os.path.join(DATA, "manifest.json")) as _f:
    MANIFEST = json.load(_f)["files"]

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"     # every sample through the C
IMPORTS = None
# File -> the unsupported items its import error names today (see `missing_items`), or
# IMPORTS. When an op lands and a file gets further, the test fails and prints the new
# set: update the entry here (IMPORTS once it imports; it is then compared with TFLM).
MISSING = {
    "autoencoder.tflite": IMPORTS,
    "cnn_16x8.tflite": IMPORTS,
    "conv1d_gap.tflite": IMPORTS,
    "dense_on_sequence.tflite": IMPORTS,
    "dilated_depthwise.tflite": IMPORTS,
    "dilated_tcn.tflite": IMPORTS,
    "dilated_unfused.tflite": IMPORTS,
    "float_edges.tflite": IMPORTS,
    "gru_unrolled.tflite": IMPORTS,
    "inception.tflite": IMPORTS,
    "kws_separable.tflite": IMPORTS,
    "leaky_prelu_cnn.tflite": IMPORTS,
    "lstm.tflite": IMPORTS,
    "mobilenet_v2.tflite": IMPORTS,
    "mobilenet_v3_small.tflite": IMPORTS,
    "mobilenet_v3_small_min.tflite": IMPORTS,
    "sensor_normalized.tflite": IMPORTS,
    "two_heads.tflite": IMPORTS,
    "uint8_edges.tflite": IMPORTS,
    "unet_small.tflite": IMPORTS,
}
# File -> what `generate` says when it refuses an imported model whose ops all have C
# kernels (a limit of the C generator, not of an op); remove the entry when it lands.
C_REFUSED = {
}


def missing_items(problems):
    """An UnsupportedTFLiteError's problems as a set of short items, without operator and
    tensor indices or names: 'CONCATENATION' (an operator minitiny does not know), 'int16
    activations' / 'int64 bias' (a type), else 'OP: why'."""
    items = set()
    for p in problems:
        p = re.sub(r"tensor #\d+ '[^']*'", "", p)                      # labels, then what they leave
        p = re.sub(r"\(\s*[,\s]*\)", "", p)
        p = re.sub(r"([:,])[:,]", r"\1", re.sub(r"\s+([:,])", r"\1", p))
        m = re.match(r"operator #\d+ (\w+): (.*)$", p)
        op, why = (m.group(1), m.group(2)) if m else ("", p)
        types = re.findall(r"type (\w+) \(an? (activation|bias|weight|operand)", why)
        if types:
            items |= {f"{t} {role if role == 'bias' else role + 's'}" for t, role in types}
        elif why.startswith("not supported (not among"):
            items.add(op)
        else:
            items.add(f"{op}: {why}" if op else why)
    return items


def expected(name):
    with np.load(os.path.join(DATA, name[:-len(".tflite")] + ".expected.npz")) as z:
        return {k: z[k] for k in z.files}


def first(x, n):
    """The first n samples of one input array or of each in a list."""
    return [a[:n] for a in x] if isinstance(x, list) else x[:n]


def outputs_of(result):
    """predict_int8's result as a list, one array per model output."""
    return list(result) if isinstance(result, (list, tuple)) else [result]


def assert_same(label, ours, theirs):
    assert len(ours) == len(theirs), f"{label}: {len(ours)} outputs, TFLM gave {len(theirs)}"
    for j, (a, b) in enumerate(zip(ours, theirs)):
        a = np.asarray(a).reshape(b.shape)
        bad = np.argwhere(a != b)
        assert not len(bad), (f"{label}, output {j}: {len(bad)} of {b.size} values differ; "
                              f"first at {tuple(int(i) for i in bad[0])}: ours {a[tuple(bad[0])]}, theirs {b[tuple(bad[0])]}")


def test_the_files_are_the_ones_the_script_made():
    assert set(MANIFEST) == set(MISSING) == {f for f in os.listdir(DATA) if f.endswith(".tflite")}
    total = 0
    for name, info in MANIFEST.items():
        for key, suffix in (("sha256", ".tflite"), ("expected_sha256", ".expected.npz")):
            path = os.path.join(DATA, name[:-len(".tflite")] + suffix)
            with open(path, "rb") as f:
                data = f.read()
            assert hashlib.sha256(data).hexdigest() == info[key], path
            total += len(data)
        assert info["bytes"] < (450_000 if name == "mobilenet_v2.tflite" else 300_000), name
    assert total < 1_750_000


@pytest.mark.parametrize("name", sorted(MISSING))
def test_architecture(name, tmp_path, shim_flags):
    path = os.path.join(DATA, name)
    try:
        q = from_tflite(path)
    except UnsupportedTFLiteError as e:
        items = missing_items(e.problems)
        assert MISSING[name] is not IMPORTS, f"{name} no longer imports: {sorted(e.problems)}"
        assert items == MISSING[name], (
            f"{name}: the import error names other items than MISSING says; if an op landed, "
            f"set MISSING[{name!r}] = {sorted(items)!r} (or IMPORTS)\nall problems: {e.problems}")
        return
    assert MISSING[name] is IMPORTS, (f"{name} imports now (it was refused for "
                                      f"{sorted(MISSING[name])}): set MISSING[{name!r}] = IMPORTS")
    z = expected(name)
    x = [z[k] for k in sorted(k for k in z if k.startswith("x"))]
    tflm = [z[k] for k in sorted(k for k in z if k.startswith("y"))]
    x = x[0] if len(x) == 1 else x
    ours = outputs_of(q.predict_int8(x))
    assert_same(f"{name}: NumPy vs TFLM", ours, tflm)
    if tflm_runtime.available():                     # minitiny's writer: TFLM runs what it wrote
        written = outputs_of(tflm_runtime.run_tflm(to_tflite(q), x))
        assert_same(f"{name}: TFLM on minitiny's .tflite vs TFLM on the original", written, tflm)

    without_c = sorted({op.kind for op in q.ops} - {b.kind for b in supported.OPS if b.c})
    if without_c or name in C_REFUSED:               # generate must refuse, saying why
        with pytest.raises(codegen.CodegenError) as e:
            codegen.generate(q, tmp_path / "ref", name="m")
        assert any(why in str(e.value) for why in without_c + [C_REFUSED.get(name, "-")]), str(e.value)
        return
    n = len(tflm[0]) if THOROUGH else min(len(tflm[0]), 16)      # CI: the first samples
    few = first(x, n)
    for variant, flags in (("reference", ()), ("dsp", shim_flags)):
        if variant == "dsp" and MANIFEST[name]["bytes"] > 100_000 and not THOROUGH:
            continue                                 # CI: the MobileNets' C compiled once
        codegen.generate(q, tmp_path / variant, name="m", variant=variant)
        c = outputs_of(codegen.load(tmp_path / variant, flags=flags)(few))
        assert_same(f"{name}: {variant} C vs NumPy", c, [o[:n] for o in ours])
    if THOROUGH or MANIFEST[name]["bytes"] < 50_000:  # the small ones under ASan and UBSan too
        c = outputs_of(codegen.load(tmp_path / "reference", sanitize=True)(first(x, 4)))
        assert_same(f"{name}: sanitized reference C vs NumPy", c, [o[:4] for o in ours])


def test_missing_items_reads_each_kind_of_problem():
    problems = ["operator #3 CONCATENATION: not supported (not among the operators `minitiny "
                "import --help` lists)",
                "operator #0 CONV_2D: tensor #0 'in:0': type int16 (an activation must be int8); "
                "tensor #11 'b': type int64 (a bias must be int32)",
                "operator #6 MEAN: mean over axes [1] of a rank-3 input",
                "2 outputs (tensor #18 'S:1', tensor #17 'S:0'): minitiny runs models with one output"]
    assert missing_items(problems) == {"CONCATENATION", "int16 activations", "int64 bias",
                                       "MEAN: mean over axes [1] of a rank-3 input",
                                       "2 outputs: minitiny runs models with one output"}
