"""The standard property suite for a generated model directory: what `pytest --minitiny DIR`
and `minitiny verify DIR --thorough` run.

    results = run_suite("build/digits", budget=60)
    for r in results: print(r.name, r.ok, r.seconds, r.message)

The properties, cheapest first (each gets a share of the time budget):

    bit-exact       NumPy int8 == C == TFLite Micro on the special and targeted inputs
                    (rounding ties and clamp bounds of every weighted layer: solved for the
                    first, hill-climbed for the deeper ones), then random inputs until its
                    share of the budget is spent; a difference is shrunk and its layer named
    call order      the C gives the same outputs whatever it ran before (one static arena:
                    a kernel that reads a stale value would depend on the previous input)
    sanitizers      the C built under -fsanitize=address,undefined on the same inputs

Each property is a function (c_dir, qmodel, budget, progress) that raises AssertionError.
"""
import os
import time
from dataclasses import dataclass

import numpy as np

from minitiny import codegen
from minitiny.codegen.loader import read_manifest
from minitiny.quant.graph import QModel

from .equivalence import assert_equivalent, packed_outputs, standard_inputs, unpack_inputs


def load_model(c_dir):
    """The QModel a generated directory was made from (NAME.qmodel.npz beside the C)."""
    m = read_manifest(c_dir)
    path = os.path.join(os.fspath(c_dir), f"{m['name']}.qmodel.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{c_dir}: {m['name']}.qmodel.npz is missing (it is written by "
                                f"minitiny generate beside the C; regenerate the directory)")
    qmodel = QModel.load(path)
    qmodel.prepare()
    return qmodel


def bit_exact(c_dir, qmodel, budget, progress=None, tflite=None, flags=(), use_tflm=None):
    """NumPy int8 == C == TFLite Micro (assert_equivalent), searching deeper layers' edges."""
    return assert_equivalent(qmodel, c_dir, tflite=tflite, budget=budget, search_steps=40,
                             progress=progress, flags=flags, use_tflm=use_tflm)


def _some_inputs(qmodel, budget, n=64):
    """n standard inputs, packed (N, ...), the targeted ones found in half the budget."""
    return np.concatenate(list(standard_inputs(qmodel, n=n, deadline=time.monotonic() + budget / 2)))


def call_order(c_dir, qmodel, budget, progress=None, **_):
    """The same inputs, forward then backward and one at a time: identical outputs."""
    fn = codegen.load(c_dir)
    x = _some_inputs(qmodel, budget)                              # packed for several inputs
    forward = packed_outputs(qmodel, fn(unpack_inputs(qmodel, x)))
    backward = packed_outputs(qmodel, fn(unpack_inputs(qmodel, x[::-1])))[::-1]
    if not np.array_equal(forward, backward):
        i = int(np.argmax(np.any(forward != backward, axis=1)))
        raise AssertionError(f"{c_dir}: input {i} gives different outputs depending on the input run "
                             f"before it (a kernel reads a stale arena value)")
    if progress:
        progress(len(x))
    return len(x)


def sanitizers(c_dir, qmodel, budget, progress=None, **_):
    """The C under AddressSanitizer and UBSan on the special, targeted and random inputs:
    no out-of-bounds access, no undefined behaviour (its outputs are bit-exact's business)."""
    x = _some_inputs(qmodel, budget)
    try:
        codegen.load(c_dir, sanitize=True)(unpack_inputs(qmodel, x))
    except codegen.SanitizerError as e:
        raise AssertionError(str(e)) from None
    if progress:
        progress(len(x))
    return len(x)


# name -> (property, share of the budget)
PROPERTIES = {"bit-exact": (bit_exact, 0.8), "call order": (call_order, 0.05), "sanitizers": (sanitizers, 0.15)}


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float
    inputs: int
    message: str = ""


def run_property(name, c_dir, qmodel, budget=60.0, progress=None, **options):
    fn, share = PROPERTIES[name]
    start = time.monotonic()
    try:
        n = fn(c_dir, qmodel, budget * share, progress, **options)
        return Result(name, True, time.monotonic() - start, n)
    except AssertionError as e:
        return Result(name, False, time.monotonic() - start, 0, str(e))


def run_suite(c_dir, budget=60.0, progress=None, names=None, **options):
    """Every property (or those in `names`) on the model in c_dir -> [Result]."""
    qmodel = load_model(c_dir)
    return [run_property(name, c_dir, qmodel, budget, progress, **options)
            for name in (names or PROPERTIES)]
