"""Every example, end to end in --quick mode, run as a user runs it (a separate process).

Each example itself stops with an error unless its generated C gives the NumPy int8
reference's outputs bit for bit on its whole test set (and the emulated Cortex-M, when the
toolchain is installed, the same outputs). Here we check, independently of the example:
  * it exits 0 and reports every row of its table;
  * the accuracy (or error, or AUC) of the int8 C clears a floor that a broken pipeline
    could not reach: far above chance (a constant answer, a scrambled input, a wrong scale
    or zero point all fall to chance), yet below what the quick runs reach (measured on
    this project's machine, with a wide margin for other machines' rounding of training);
  * int8 stays close to float (quantization must not wreck a model);
  * every model directory it wrote, reloaded from disk, gives C == NumPy int8 on fresh
    random int8 inputs (and the keyword-spotting pipeline on fresh PCM);
  * the numbers the table promises are there: measured flash, RAM and instruction counts
    when the Cortex-M toolchain is installed.
Real-data examples are skipped, with the fetch command, when their data is not cached.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
TOOLCHAIN = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm"))

# example -> (data sets it needs, {row name prefix: (lowest int8 value, highest, max |int8 - float|)})
# Chance levels: digits 0.10, FSDD 0.10, 12-word KWS 0.083, watch 0.14, BasicMotions 0.25,
# faces 0.5, ROC AUC 0.5. The sine's variance is 0.5: a constant answer has MSE >= 0.5.
CASES = {
    "01_single_neuron": ((), {"single neuron": (0.0, 0.5, 0.5)}),
    "02_hello_sine": ((), {"hello world": (0.0, 0.2, 0.05)}),
    "03_digits": (("mnist", "fashion_mnist"), {
        "digits: fashion_mnist MLP": (0.70, 1.0, 0.03),
        "digits: mnist MLP": (0.80, 1.0, 0.03),
        "digits: fashion_mnist CNN": (0.55, 1.0, 0.03)}),
    "04_keyword_spotting": (("spoken_digits", "speech_words"), {
        "keyword spotting A": (0.5, 1.0, 0.05),
        "keyword spotting B": (0.3, 1.0, 0.08)}),
    "05_gestures": (("watch", "basic_motions"), {
        "motion: smartwatch": (0.4, 1.0, 0.05),
        "motion: BasicMotions": (0.7, 1.0, 0.1)}),
    "06_anomaly": (("acsf1",), {
        "anomaly: vibration": (0.9, 1.0, 0.05),
        "anomaly: ACSF1": (0.8, 1.0, 0.08)}),
    "07_visual_wake_words": (("faces", "fashion_mnist"), {
        "visual wake words: 25x25": (0.75, 1.0, 0.1),
        "visual wake words: 96x96": (0.0, 1.0, 0.2)}),     # 2 epochs in quick: size, not skill
}


def missing_data(names):
    """The fetch commands of the data sets that are not in the local cache."""
    import minitiny as mt
    from minitiny.datasets import cache
    out = []
    for name in names:
        info = mt.datasets.info(name)
        if any(cache.stored_path(info, f) is None for f in info.files):
            out.append(info.fetch_command)
    return out


def run_example(name, out):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, os.path.join(EXAMPLES, f"{name}.py"), "--quick", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{name} failed:\n{(p.stdout + p.stderr)[-4000:]}"
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f), p.stdout


def check_generated_models(out):
    """Reload every generated model from disk: C == NumPy int8 on 16 random int8 inputs."""
    from minitiny import codegen
    from minitiny.quant.graph import QModel
    dirs = [os.path.dirname(m) for m in glob.glob(os.path.join(out, "**", "*_manifest.json"), recursive=True)
            if not m.endswith("_pcm_manifest.json")]
    assert dirs, f"no generated model under {out}"
    rng = np.random.default_rng(1)
    for d in dirs:
        (npz,) = glob.glob(os.path.join(d, "*.qmodel.npz"))
        qmodel = QModel.load(npz)
        x = rng.integers(-128, 128, size=(16,) + tuple(qmodel.input.shape), dtype=np.int8)
        assert np.array_equal(codegen.load(d)(x), qmodel.predict_int8(x)), d
    return dirs


@pytest.mark.parametrize("name", list(CASES))
def test_example_quick(name, tmp_path):
    datasets, floors = CASES[name]
    need = missing_data(datasets)
    if need:
        pytest.skip("data not in the cache; fetch it with: " + "; ".join(need))
    rows, stdout = run_example(name, tmp_path)
    for prefix, (lo, hi, drift) in floors.items():
        row = next((r for r in rows if r["example"].startswith(prefix)), None)
        assert row is not None, f"{name}: no row {prefix!r} in {[r['example'] for r in rows]}"
        assert lo <= row["int8_value"] <= hi, f"{row['example']}: int8 {row['metric']} {row['int8_value']}"
        assert abs(row["int8_value"] - row["float_value"]) <= drift, row
        assert row["model_bytes"] > 0 and row["flash"] >= row["model_bytes"] and row["ram"] > 0
        assert row["host_us"] > 0
        if TOOLCHAIN:
            assert row["measured"] and row["m4_instructions"] > 0, row
    assert len(rows) == len(floors)
    check_generated_models(tmp_path)
    if name == "01_single_neuron":
        extra = rows[0]["extra"]
        assert abs(extra["weight"] - 2) < 0.05 and abs(extra["bias"] + 1) < 0.1
        assert abs(extra["int8_predict_10"] - 19) < 0.5
        assert extra["naive_int8_predict_10"] < 10      # calibrated on [-1, 4]: the input saturates
    if name == "04_keyword_spotting":
        check_kws_pipeline(tmp_path)
    if name == "07_visual_wake_words":
        mobilenet = next(r for r in rows if r["example"].startswith("visual wake words: 96x96"))
        assert mobilenet["flash"] <= 1024 * 1024 and mobilenet["ram"] <= 256 * 1024   # the Nano 33 BLE


def check_kws_pipeline(out):
    """The PCM -> class program on fresh audio: C == NumPy front end + int8 model."""
    from minitiny import audio
    from minitiny.codegen import frontend
    from minitiny.quant.graph import QModel
    program = os.path.join(out, "kws_pipeline")
    with open(os.path.join(program, "kws_pcm_manifest.json")) as f:
        manifest = json.load(f)
    (npz,) = glob.glob(os.path.join(program, manifest["model_dir"], "*.qmodel.npz"))
    qmodel, cfg = QModel.load(npz), audio.FrontendConfig(**manifest["frontend"])
    rng = np.random.default_rng(5)
    clips = np.clip(rng.normal(0, 10 ** rng.uniform(1, 4, size=(6, 1)), (6, cfg.clip_samples)),
                    -32768, 32767).astype(np.int16)
    want = qmodel.predict_int8(np.stack([audio.features(c, cfg) for c in clips])[..., None])
    run = frontend.load_pipeline(program, "kws")
    assert np.array_equal(run(clips), want)
    assert np.array_equal(run(clips, as_bytes=True), want)
