"""Mutation testing of the verification modes: plant faults in generated C, count what each
mode finds.

    python bench/mutation.py                    # three models, every kernel variant, 20 s budget
    python bench/mutation.py --budget 60 --out bench/results/mutation.md
    python bench/mutation.py --quick            # one small model, a few faults (what CI runs)

Models: the demo MLP (784 -> 20 relu -> 10 softmax, trained one epoch on MNIST when it is in
the cache), a small CNN and a DS-CNN-like model (both on 28x28x1, trained the same way).
For each kernel variant codegen offers (the DSP one built for the host with the ACLE shim
of tests/dsp_host.py), faults are planted in a copy of the generated C, one per copy, in a
temporary directory: the requantization's rounding (the doubling high multiply's nudge, the
short road's sign correction and round bit, RoundingDivideByPOT's threshold), a shift, the
saturation branch, clamp bounds, zero-point offsets, multipliers, bias and weight
constants, loop bounds.

Each fault is then decided:
    equivalent      proven: the faulty helper or layer gives the same int8 values over a
                    superset of its reachable inputs, evaluated exhaustively:
                    - every accumulator a channel's weights allow and every MEAN sum, with
                      each input within the bounds interval arithmetic gives it through the
                      graph (minitiny.testing.reach: a ReLU's output never below its zero
                      point, a dead channel constant): the helper's C compiled in a harness
                      beside TFLM's formula, a constant's effect on the layer in NumPy;
                    - a softmax, for faults in the helpers it shares, split where a row
                      enters it (each difference d from the row's max adds exp(d) to a sum
                      S; each output depends on d and S only): the faulty helpers against
                      the original's on every d and every S a row can sum to
    non-equivalent  proven by a witness: an input on which the faulty C's model output
                    differs from the NumPy int8 reference (found by the decision or any mode)
    undecided       neither (a layer-level difference no input was found to carry to the
                    output, a weight or loop fault, a range too large to cover)
and each verification mode is run on it, timed:
    verify          today's `minitiny verify DIR --data mnist -n 300` (300 test images;
                    random int8 inputs without the data set)
    property        assert_equivalent(qmodel, DIR, strategy=int8_inputs(qmodel), budget=B):
                    special and solved inputs, random ones until B/2, up to 100 hypothesis
                    draws until 3B/4
    thorough        `minitiny verify DIR --thorough --budget B`'s bit-exact property:
                    targeted search of every layer's edges until B/2, then random inputs
                    until 3B/4
                    (in both, a difference found is shrunk until B: the time includes it)
The table gives, per model and variant, faults found / non-equivalent / equivalent /
undecided per mode, and the time each mode takes.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))       # dsp_host: the ACLE shim

import minitiny as mt  # noqa: E402
from minitiny import codegen  # noqa: E402
from minitiny.codegen import generator  # noqa: E402
from minitiny.quant import fixedpoint as fp  # noqa: E402
from minitiny.codegen.loader import read_manifest  # noqa: E402
from minitiny.files import atomic_write  # noqa: E402
from minitiny.testing import Mismatch, assert_equivalent, int8_inputs, reach, suite, targets  # noqa: E402
from minitiny.testing.models import Builder  # noqa: E402

MODES = ("verify", "property", "thorough")


# =======================================================================================
# Models
# =======================================================================================
def _mnist(n_train=3000):
    """(x_train, y_train, x_test) as float32 in [0, 1], or None without the data set."""
    from minitiny import datasets
    try:
        (x, y), (xt, _) = datasets.load_mnist()
    except datasets.DataMissingError:
        return None
    f = lambda a: a.astype(np.float32)[..., None] / 255.0
    return f(x[:n_train]), y[:n_train], f(xt[:300])


def _train(model, data, epochs=1):
    x, y, _ = data
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x if model.input_shape[-1] == 1 else x[..., 0], y, epochs=epochs, batch_size=32, verbose=0)
    return mt.quantize(model, x[:300] if model.input_shape[-1] == 1 else x[:300, ..., 0])


def build_models(quick=False, only=None):
    """{name: (qmodel, int8 test inputs for `verify`)}; only: the names to build (all: None)."""
    from minitiny.layers import (Conv2D, Dense, DepthwiseConv2D, Flatten, GlobalAveragePooling2D,
                                 MaxPooling2D)
    data = None if quick else _mnist()
    if data is None or quick:
        return _random_models(quick)
    mt.random.seed(0)
    mlp = mt.Sequential([Flatten(input_shape=(28, 28)), Dense(20, activation="relu"),
                         Dense(10, activation="softmax")], name="mlp")
    cnn = mt.Sequential([Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2),
                         Conv2D(16, 3, activation="relu"), MaxPooling2D(2), Flatten(),
                         Dense(10, activation="softmax")], name="cnn")
    ds = mt.Sequential([Conv2D(16, 3, strides=2, padding="same", activation="relu", input_shape=(28, 28, 1)),
                        DepthwiseConv2D(3, padding="same", activation="relu"), Conv2D(16, 1, activation="relu"),
                        DepthwiseConv2D(3, padding="same", activation="relu"), Conv2D(16, 1, activation="relu"),
                        GlobalAveragePooling2D(), Dense(10, activation="softmax")], name="ds_cnn")
    out = {}
    for model in (mlp, cnn, ds):
        if only is not None and model.name not in only:
            continue
        qmodel = _train(model, data)
        x = data[2] if model.input_shape[-1] == 1 else data[2][..., 0]
        out[model.name] = (qmodel, qmodel.quantize_input(x))
    return out


def _random_models(quick):
    """Without MNIST (or --quick): models of the same shapes from int8 builders."""
    def mlp(seed, n_in=784, hidden=20):
        b = Builder(seed, (n_in,), "mlp")
        return b.dense(hidden, "relu").dense(10).softmax().model()
    if quick:
        models = {"mlp_small": mlp(10, 32, 8)}
    else:
        cnn = Builder(1, (28, 28, 1), "cnn").conv(8, activation="relu").pool().conv(16, activation="relu").pool()
        models = {"mlp": mlp(0), "cnn": cnn.flatten().dense(10).softmax().model()}
    rng = np.random.default_rng(0)
    return {name: (q, rng.integers(-128, 128, (300,) + q.input.shape).astype(np.int8))
            for name, q in models.items()}


# =======================================================================================
# Faults: (operator, regex, replacement); every match is one fault
# =======================================================================================
def _plus(k):
    return lambda m: m.group(1) + str(int(m.group(2)) + k)


OPERATORS = [
    # requantization helpers (fixedpoint.c.j2) and their DSP twins
    ("rounding: high-mul nudge", r"\(1LL << 30\)", "((1LL << 30) - 1)"),
    ("rounding: sign correction", r"\(int32_t\)\(high - \(high >> 31\)\)", "(int32_t)high"),
    ("rounding: round bit", r"\(\(z >> \(right_shift - 1\)\) & 1\)", "0"),
    ("rounding: RDBPOT threshold", r"\(mask >> 1\) \+ \(x < 0 \? 1 : 0\)", "(mask >> 1)"),
    ("shift: >> 31", r"(\)) >> 31\)", r"\1 >> 30)"),
    ("saturation branch", r"if \(a == INT32_MIN && b == INT32_MIN\)", "if (0)"),
    ("saturation: multiply by POT", r"if \(x > threshold\)", "if (x > threshold + 1)"),
    # per-layer constants
    ("clamp: activation min", r"(output_activation_min = )(-?\d+)", _plus(1)),
    ("clamp: activation max", r"(output_activation_max = )(-?\d+)", _plus(-1)),
    ("offset: output zero point", r"(output_offset = )(-?\d+)", _plus(1)),
    ("offset: input zero point", r"(input_offset = )(-?\d+)", _plus(1)),
    ("multiplier", r"(output_multiplier = )(-?\d+)", _plus(1)),
    ("shift constant", r"(output_shift = )(-?\d+)", _plus(1)),
    ("bias constant", r"(_bias\[\d+\] = \{\s*)(-?\d+)", _plus(1)),
    ("weight constant", r"(_weight(?:\[\d+\])+ = \{\s*\{?\s*)(-?\d+)", _plus(1)),
    ("loop bound", r"(for \(int \w+ = 0; \w+ < )(\d+)", _plus(-1)),
]


def plant(text, regex, replace, index):
    """`text` with the index-th match of `regex` replaced, or None past the last match."""
    matches = list(re.finditer(regex, text))
    if index >= len(matches):
        return None
    m = matches[index]
    new = m.expand(replace) if isinstance(replace, str) else replace(m)
    return text[:m.start()] + new + text[m.end():]


def faults(text, per_operator, rng):
    """[(operator, site index, faulty text)]: up to per_operator sites of each operator."""
    out = []
    for name, regex, replace in OPERATORS:
        n = len(re.findall(regex, text))
        for i in sorted(rng.permutation(n)[:per_operator]):
            new = plant(text, regex, replace, int(i))
            if new is not None and new != text:
                out.append((name, int(i), new))
    return out


# =======================================================================================
# Deciding equivalence
# =======================================================================================
HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "{source}"

/* TFLM's MultiplyByQuantizedMultiplier as written in tensorflow/lite/kernels/internal/
 * common.h and gemmlowp's fixedpoint.h (double rounding): the oracle the faulty helper
 * above is compared with, written here independently of the generated file. */
static int32_t oracle_high_mul(int32_t a, int32_t b)
{{
    if (a == INT32_MIN && b == INT32_MIN) {{
        return INT32_MAX;
    }}
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    const int64_t t = ab + nudge;
    return (int32_t)(t >= 0 ? t / (1LL << 31) : -((-t) / (1LL << 31)));
}}

static int32_t oracle_divide_by_pot(int32_t x, int exponent)
{{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}}

static int32_t oracle(int32_t x, int32_t multiplier, int shift)
{{
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return oracle_divide_by_pot(oracle_high_mul((int32_t)((uint32_t)x << left), multiplier), right);
}}

static int32_t clamp(int32_t v, int32_t lo, int32_t hi)
{{
    return v < lo ? lo : v > hi ? hi : v;
}}

/* argv: lo hi multiplier shift offset act_min act_max -> the accs (at most 64) where the
 * clamped outputs differ, one per line, then their count */
int main(int argc, char **argv)
{{
    const long lo = atol(argv[1]), hi = atol(argv[2]);
    const int32_t m = (int32_t)atol(argv[3]), off = (int32_t)atol(argv[5]);
    const int shift = atoi(argv[4]);
    const int32_t a_min = (int32_t)atol(argv[6]), a_max = (int32_t)atol(argv[7]);
    long n = 0;
    (void)argc;
    for (long acc = lo; acc <= hi; ++acc) {{
        const int32_t got = clamp(MultiplyByQuantizedMultiplier((int32_t)acc, m, shift) + off, a_min, a_max);
        const int32_t want = clamp(oracle((int32_t)acc, m, shift) + off, a_min, a_max);
        if (got != want && n++ < 64) {{
            printf("%ld\n", acc);
        }}
    }}
    printf("count %ld\n", n);
    return 0;
}}
"""
REQUANT_OPERATORS = {"rounding: high-mul nudge", "rounding: sign correction", "rounding: round bit",
                     "rounding: RDBPOT threshold", "shift: >> 31", "saturation branch",
                     "saturation: multiply by POT"}
CONSTANT_OPERATORS = {"clamp: activation min", "clamp: activation max", "offset: output zero point",
                      "multiplier", "shift constant", "bias constant"}


def _helper_only_in_mbqm(qmodel, text, operator):
    """Is the mutated code reached only through MultiplyByQuantizedMultiplier called by
    weighted layers and MEAN (so its reachable inputs are their accumulators and sums),
    and through the softmax's helpers (_softmax_equivalent covers those)?"""
    kinds = {op.kind for op in qmodel.ops}
    others = kinds - set(targets.WEIGHTED) - {"reshape", "max_pool_2d", "mean", "softmax"}   # covered
    if operator in ("rounding: sign correction", "rounding: round bit"):
        return not (others & {"add", "relu", "logistic", "tanh"})   # MBQM's short road only
    return not others


def _call_sites(qmodel, bounds):
    """Every call of MultiplyByQuantizedMultiplier the model makes, as
    (op, channel, acc lo, acc hi, multiplier, shift, output offset, act min, act max):
    a weighted layer's channels over the accumulators its inputs' bounds allow, MEAN's
    outputs over the sums (minus Z_in * count) its inputs' bounds allow."""
    sites = []
    for op in qmodel.ops:
        p = op.params
        if op.kind in targets.WEIGHTED:
            layer = targets.LinearLayer(qmodel, op, bounds[op.inputs[0]])
            lo, hi = layer.acc_range()
            for c in np.unique(layer.channel):
                at = layer.channel == c
                sites.append((op, int(c), int(lo[at].min()), int(hi[at].max()), p["output_multiplier"][c],
                              p["output_shift"][c], p["output_offset"], p["act_min"], p["act_max"]))
        elif op.kind == "mean":
            for k, (lo, hi) in enumerate(zip(*_mean_sums(op, bounds))):
                sites.append((op, k, int(lo), int(hi), p["output_multiplier"], p["output_shift"],
                              p["output_zero_point"], -128, 127))
    return sites


def _mean_sums(op, bounds):
    """(lo, hi), one per output value, of MEAN's sum(q) - Z_in * count."""
    p = op.params
    axes = tuple(a + 1 for a in p["axes"])
    lo, hi = bounds[op.inputs[0]]
    z = p["input_zero_point"] * p["count"]
    return lo.sum(axis=axes).reshape(-1) - z, hi.sum(axis=axes).reshape(-1) - z


def _requant_equivalent(qmodel, faulty_c, tmp, cflags, bounds):
    """Compile the faulty file's MultiplyByQuantizedMultiplier in a harness beside an
    oracle (TFLM's formula, written in the harness); run both on every reachable acc of
    every call site (_call_sites), after the output offset and clamp.
    -> (True if no acc differs, False if some does, None if the ranges were too large to
    cover; [(op, channel, some differing accs)])."""
    with open(os.path.join(tmp, "faulty_model.c"), "w") as f:
        f.write(faulty_c)
    harness = os.path.join(tmp, "harness.c")
    with open(harness, "w") as f:
        f.write(HARNESS.format(source="faulty_model.c"))
    exe = os.path.join(tmp, "harness")
    cmd = [codegen.loader.default_compiler(), "-O2", "-w", "-I", tmp] + cflags + ["-o", exe, harness, "-lm"]
    if subprocess.run(cmd, capture_output=True, text=True).returncode != 0:
        return None, []
    bad, complete = [], True
    for op, c, lo, hi, m, shift, off, a_min, a_max in _call_sites(qmodel, bounds):
        if hi - lo > MAX_EXHAUSTIVE:          # too many: the accs the clamp lets through
            lo, hi = _unclamped_window(m, shift, off, a_min, a_max, lo, hi)
            complete = False
        args = [lo, hi, m, shift, off, a_min, a_max]
        out = subprocess.run([exe] + [str(int(a)) for a in args], capture_output=True, text=True,
                             check=True).stdout.split("\n")
        accs = [int(v) for v in out if v and not v.startswith("count")]
        if accs:
            bad.append((op, int(c), np.array(accs, np.int64)))
    if bad:
        return False, bad
    return (True if complete else None), bad


# The softmax's fixed-point helpers (fixedpoint.c.j2), as the original file defines them:
# copied into the harness with an "oracle_" prefix, beside the faulty file's own.
HELPERS = ("SaturatingRoundingDoublingHighMul", "RoundingDivideByPOT", "SaturatingRoundingMultiplyByPOT",
           "MultiplyByQuantizedMultiplierGreaterThanOne", "RoundingHalfSum",
           "exp_on_interval_between_negative_one_quarter_and_0_excl", "exp_on_negative_values",
           "newton_raphson_reciprocal", "one_over_one_plus_x_for_x_in_0_1", "CountLeadingZeros", "GetReciprocal")

SOFTMAX_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "{source}"

{oracle}

/* One softmax row, as softmax.c.j2 computes it, split where the row enters: each value
 * d = x - max >= diff_min adds exp_q12(d) to the sum S; the output for d then depends on
 * d and S only. A faulty helper leaves the softmax equivalent iff exp_q12 agrees on every
 * d and the output agrees on every (d, S) with S in [exp_q12(0), depth * exp_q12(0)]. */
#define ROW(P) \
    static int32_t P##scaled(int32_t d, int32_t m, int ls) \
    {{ return P##MultiplyByQuantizedMultiplierGreaterThanOne(d, m, ls); }} \
    static int32_t P##exp_q12(int32_t d, int32_t m, int ls) \
    {{ return P##RoundingDivideByPOT(P##exp_on_negative_values(P##scaled(d, m, ls), 5), 12); }} \
    static int32_t P##out(int32_t e0, int32_t shifted_scale, int bits) \
    {{ const int32_t u = P##RoundingDivideByPOT(P##SaturatingRoundingDoublingHighMul(shifted_scale, e0), bits + 31 - 8) - 128; \
       return u > 127 ? 127 : u < -128 ? -128 : u; }}
ROW()
ROW(oracle_)

/* argv: beta multiplier, left shift, diff_min, depth -> the differing (d) or (d, S), at most
 * 64, one per line, then their count */
int main(int argc, char **argv)
{{
    const int32_t m = (int32_t)atol(argv[1]);
    const int ls = atoi(argv[2]);
    const int32_t diff_min = (int32_t)atol(argv[3]), depth = (int32_t)atol(argv[4]);
    const int32_t d_lo = diff_min > -255 ? diff_min : -255;
    static int32_t e[256], oe[256];
    long n = 0;
    (void)argc;
    for (int32_t d = d_lo; d <= 0; ++d) {{
        e[-d] = exp_on_negative_values(scaled(d, m, ls), 5);
        oe[-d] = oracle_exp_on_negative_values(oracle_scaled(d, m, ls), 5);
        if (exp_q12(d, m, ls) != oracle_exp_q12(d, m, ls) && n++ < 64) {{
            printf("%ld\n", (long)d);
        }}
    }}
    if (n == 0) {{
        const int32_t one = oracle_exp_q12(0, m, ls);
        for (long sum = one; sum <= (long)depth * one; ++sum) {{
            int bits, obits;
            const int32_t scale = GetReciprocal((int32_t)sum, 12, &bits);
            const int32_t oscale = oracle_GetReciprocal((int32_t)sum, 12, &obits);
            for (int32_t d = d_lo; d <= 0; ++d) {{
                if (out(e[-d], scale, bits) != oracle_out(oe[-d], oscale, obits) && n++ < 64) {{
                    printf("%ld %ld\n", (long)d, sum);
                }}
            }}
        }}
    }}
    printf("count %ld\n", n);
    return 0;
}}
"""
# at most this many (d, S) pairs per softmax (about a minute of the harness)
MAX_SOFTMAX_PAIRS = 6 * 10 ** 9


def _oracle_helpers(original):
    """The original file's definitions of the softmax's helpers, renamed oracle_NAME."""
    names = "|".join(HELPERS)
    bodies = [m.group(0) for m in re.finditer(rf"^static (?:inline )?\w+ ({names})\([^)]*\)\n{{.*?^}}\n",
                                               original, re.M | re.S)]
    return re.sub(rf"\b({names})\b", r"oracle_\1", "\n".join(bodies))


def _softmax_equivalent(qmodel, original, faulty_c, tmp, cflags):
    """Every softmax of the model with the faulty file's helpers against the original's,
    over every row difference d and every sum S (SOFTMAX_HARNESS). True: equivalent;
    False: some (d) or (d, S) differs; None: not run (no softmax helpers, or too many
    pairs)."""
    ops = [op for op in qmodel.ops if op.kind == "softmax"]
    if not ops or "GetReciprocal(" not in original:
        return None
    with open(os.path.join(tmp, "faulty_model.c"), "w") as f:
        f.write(faulty_c)
    harness = os.path.join(tmp, "softmax_harness.c")
    with open(harness, "w") as f:
        f.write(SOFTMAX_HARNESS.format(source="faulty_model.c", oracle=_oracle_helpers(original)))
    exe = os.path.join(tmp, "softmax_harness")
    cmd = [codegen.loader.default_compiler(), "-O2", "-w", "-I", tmp] + cflags + ["-o", exe, harness, "-lm"]
    if subprocess.run(cmd, capture_output=True, text=True).returncode != 0:
        return None
    for op in ops:
        p = op.params
        if p["depth"] * (1 << 19) * 256 > MAX_SOFTMAX_PAIRS:
            return None
        out = subprocess.run([exe] + [str(int(p[k])) for k in ("input_multiplier", "input_left_shift", "diff_min",
                                                               "depth")],
                             capture_output=True, text=True, check=True).stdout
        if not out.endswith("count 0\n"):
            return False
    return True


# Above this many accumulators per channel the harness evaluates only the window where the
# correct output is not clamped (plus a margin): a difference there is still a lead for the
# witness search, but no difference there proves nothing (undecided).
MAX_EXHAUSTIVE = 1 << 27


def _unclamped_window(m, shift, off, a_min, a_max, lo, hi):
    """The accs whose correct output lies within [a_min - 2, a_max + 2], within [lo, hi]."""
    rate = int(m) * 2.0 ** (int(shift) - 31)                 # output per acc
    a = (a_min - 2 - off) / rate
    b = (a_max + 2 - off) / rate
    return max(lo, int(np.floor(a))), min(hi, int(np.ceil(b)))


def _owner(qmodel, c_dir, original, at):
    """The layer whose code holds offset `at` of the C: the last declaration before it
    (a function, an array or a params struct) named for a layer (C names from the
    manifest, one per op), or None."""
    names = {layer["c_name"]: op for layer, op in zip(read_manifest(c_dir)["layers"], qmodel.ops)}
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    found = list(re.finditer(rf"^static (?:const )?[\w ]*?\b({alternatives})(?:_\w+)?\s*[\[(=]", original[:at], re.M))
    return names[found[-1].group(1)] if found else None


def _constant_equivalent(qmodel, operator, original, faulty, c_dir, bounds):
    """A per-layer constant changed: find its layer (_owner), evaluate that layer's
    epilogue with the changed constant over every reachable acc (or MEAN's sum) of every
    call site (_call_sites). True: equivalent; False: a visible difference at the layer;
    None: not a weighted layer or MEAN (not decided here)."""
    at = next(i for i, (a, b) in enumerate(zip(original, faulty)) if a != b)
    op = _owner(qmodel, c_dir, original, at)
    if op is None or (op.kind not in targets.WEIGHTED and op.kind != "mean"):
        return None, []
    bad = []
    sites = [site for site in _call_sites(qmodel, bounds) if site[0] is op]
    for _, c, lo, hi, *epilogue in sites:
        if operator == "bias constant" and c != 0:
            continue                      # the fault is in the array's first entry: channel 0
        differs = []
        for start in range(lo, hi + 1, 1 << 22):               # in chunks: ranges reach 10^8
            acc = np.arange(start, min(start + (1 << 22), hi + 1), dtype=np.int64)
            new = _epilogue(acc, *epilogue, operator)
            old = _epilogue(acc, *epilogue, None)
            differs.extend(acc[new != old][:64 - len(differs)].tolist())
            if len(differs) >= 64:
                break
        if differs:
            bad.append((op, int(c), np.array(differs, np.int64)))
    return not bad, bad


def _epilogue(acc, m, s, off, a_min, a_max, operator):
    """clamp(MBQM(acc, M, shift) + offset) of one call site, with `operator`'s constant changed."""
    m, s = int(m), int(s)
    if operator == "clamp: activation min":
        a_min += 1
    elif operator == "clamp: activation max":
        a_max -= 1
    elif operator == "offset: output zero point":
        off += 1
    elif operator == "multiplier":
        m += 1
    elif operator == "shift constant":
        s += 1
    elif operator == "bias constant":
        acc = acc + 1
    return np.clip(fp.multiply_by_quantized_multiplier(acc, m, s) + off, a_min, a_max)


def decide(qmodel, operator, original, text, d, clean, flags, bounds):
    """(True: equivalent, False: differs at a layer, None: not decided; [(op, channel,
    differing accs)]) for the fault `text` (in directory d) of `original` (in clean)."""
    if operator in REQUANT_OPERATORS and _helper_only_in_mbqm(qmodel, text, operator):
        decision, bad = _requant_equivalent(qmodel, text, d, flags, bounds)
        if decision is not False and any(op.kind == "softmax" for op in qmodel.ops):
            softmax = _softmax_equivalent(qmodel, original, text, d, flags)
            decision = (decision and softmax) if softmax is not None else None
        return decision, bad
    if operator in CONSTANT_OPERATORS:
        return _constant_equivalent(qmodel, operator, original, text, clean, bounds)
    return None, []


def redecide(rows, log=print):
    """Decide again the undecided faults of the requantization's helpers in rows of an
    earlier run (one made before the softmax's helpers were decided): the same models
    (training is deterministic), the same faults (model, variant, operator, site); only
    the decision runs, not the modes (they found nothing on these)."""
    todo = [r for r in rows if r["status"] == "undecided" and r["operator"] in REQUANT_OPERATORS]
    flags = dict(variants())
    for name in sorted({r["model"] for r in todo}):
        qmodel = build_models(False, [name])[name][0]
        qmodel.prepare()
        bounds = reach.tensor_bounds(qmodel)
        for r in [r for r in todo if r["model"] == name]:
            with tempfile.TemporaryDirectory() as tmp:
                clean, d = os.path.join(tmp, "clean"), os.path.join(tmp, "fault")
                codegen.generate(qmodel, clean, name="m", variant=r["variant"])
                with open(os.path.join(clean, "m_model.c")) as f:
                    original = f.read()
                regex, replace = next((rx, rp) for op, rx, rp in OPERATORS if op == r["operator"])
                text = plant(original, regex, replace, r["site"])
                shutil.copytree(clean, d)
                with open(os.path.join(d, "m_model.c"), "w") as f:
                    f.write(text)
                decision = decide(qmodel, r["operator"], original, text, d, clean, flags[r["variant"]], bounds)[0]
            if decision is True:
                r["status"] = "equivalent"
            log(f"  {name} ({r['variant']}) {r['operator']:30s} #{r['site']}: {r['status']}")
    return rows


def witness_search(qmodel, d, flags, bad, rng, per_channel=4, steps=60):
    """An input on which the faulty C's model output differs, aimed at the accumulators
    where the decision saw the faulty layer differ: solved for a layer reading the model
    input (from 16 starts, those where a step of that output reaches the model output
    first), hill-climbed for a deeper one. None if none is found."""
    fn = codegen.load(d, flags=flags)
    for op, c, accs in [b for b in bad if b[0].kind in targets.WEIGHTED][:4]:
        layer = targets.LinearLayer(qmodel, op)
        members = np.flatnonzero(layer.channel == c)
        first = targets.reads_model_input(qmodel, op)
        for acc in rng.choice(accs, min(per_channel, len(accs)), replace=False):
            e = int(rng.choice(members))
            if first:
                xs = [x for x in layer.solve_many(e, int(acc), rng.integers(-128, 128, (16,) + qmodel.input.shape))
                      if x is not None]
                if not xs:
                    continue
                xs = np.stack(xs).reshape((-1,) + qmodel.input.shape).astype(np.int8)
                xs = xs[np.argsort(~targets.sensitivity(qmodel, op, xs, [e])[:, 0], kind="stable")]
            else:                               # aim at every differing acc at once
                x0 = rng.integers(-128, 128, qmodel.input.shape).astype(np.int8)
                x, dist = targets.hill_climb(qmodel, op, e, accs, x0, rng, steps=steps)
                if dist != 0:
                    continue
                xs = np.asarray(x, np.int8)[None]
            differs = np.any(fn(xs).reshape(len(xs), -1) != qmodel.predict_int8(xs).reshape(len(xs), -1), axis=1)
            if differs.any():
                return xs[int(np.argmax(differs))]
    return None


# =======================================================================================
# The modes
# =======================================================================================
def _found(fn):
    t = time.monotonic()
    try:
        fn()
        return False, time.monotonic() - t, None
    except Mismatch as e:
        return True, time.monotonic() - t, e.input


def run_modes(qmodel, d, x_verify, flags, budget):
    """{mode: (found, seconds, witness input or None)} for the model generated in d."""
    results = {}
    t = time.monotonic()
    fn = codegen.load(d, flags=flags)
    got, want = fn(x_verify), qmodel.predict_int8(x_verify)
    bad = np.any(got.reshape(len(x_verify), -1) != want.reshape(len(x_verify), -1), axis=1)
    results["verify"] = (bool(bad.any()), time.monotonic() - t, x_verify[int(np.argmax(bad))] if bad.any() else None)
    results["property"] = _found(lambda: assert_equivalent(qmodel, d, strategy=int8_inputs(qmodel), budget=budget,
                                                           max_examples=100, flags=flags, use_tflm=False))
    results["thorough"] = _found(lambda: suite.bit_exact(d, qmodel, budget, flags=flags, use_tflm=False))
    return results


def _witness(qmodel, d, x, flags):
    """Does the faulty C's model output differ from NumPy's on input x (checked again)?"""
    if x is None:
        return False
    return not np.array_equal(codegen.load(d, flags=flags)(x[None]), qmodel.predict_int8(x[None]))


# =======================================================================================
# The benchmark
# =======================================================================================
def variants():
    """[(variant, extra C flags for the host)]: each KERNEL_VARIANTS entry but 'auto' (the
    DSP and scalar kernels together; each is measured on its own); DSP ones with the shim."""
    from dsp_host import ACLE_SHIM
    shim = tempfile.mkdtemp(prefix="acle-")
    with open(os.path.join(shim, "arm_acle.h"), "w") as f:
        f.write(ACLE_SHIM)
    out = []
    for v in generator.KERNEL_VARIANTS:
        if v == "auto":
            continue
        dsp = v in getattr(generator, "DSP_VARIANTS", {"dsp"})
        out.append((v, ["-D__ARM_FEATURE_DSP=1", "-isystem", shim] if dsp else []))
    return out


def bench(quick=False, budget=20.0, per_operator=2, seed=0, log=print, models=None, only_variants=None):
    """[row dict] per (model, variant, fault); models: {name: (qmodel, int8 inputs for
    `verify`)} instead of build_models(quick). A row's 'source' is the faulty C."""
    rows = []
    rng = np.random.default_rng(seed)
    models = build_models(quick) if models is None else models
    for name, (qmodel, x_verify) in models.items():
        qmodel.prepare()
        bounds = reach.tensor_bounds(qmodel)
        chosen = [(v, f) for v, f in variants() if only_variants is None or v in only_variants]
        for variant, flags in (chosen[:1] if quick else chosen):
            with tempfile.TemporaryDirectory() as tmp:
                clean = os.path.join(tmp, "clean")
                codegen.generate(qmodel, clean, name="m", variant=variant)
                with open(os.path.join(clean, "m_model.c")) as f:
                    original = f.read()
                planted = faults(original, 1 if quick else per_operator, rng)
                log(f"{name} ({variant}): {len(planted)} faults")
                for k, (operator, site, text) in enumerate(planted):
                    d = os.path.join(tmp, f"fault{k}")
                    shutil.copytree(clean, d)
                    with open(os.path.join(d, "m_model.c"), "w") as f:
                        f.write(text)
                    try:
                        codegen.load(d, flags=flags)
                    except codegen.CompileError:
                        continue                      # does not compile: not a silent fault
                    decision, bad = decide(qmodel, operator, original, text, d, clean, flags, bounds)
                    modes = run_modes(qmodel, d, x_verify, flags, budget)
                    witnessed = any(_witness(qmodel, d, x, flags) for _, _, x in modes.values())
                    if not witnessed and bad:
                        witnessed = witness_search(qmodel, d, flags, bad, rng) is not None
                    status = ("equivalent" if decision is True and not witnessed else
                              "non-equivalent" if witnessed else "undecided")
                    if decision is True and witnessed:
                        status = "DECISION WRONG"       # a proof and a witness disagree: a bug here
                    rows.append(dict(model=name, variant=variant, operator=operator, site=site, status=status,
                                     source=text, flags=flags,
                                     **{f"{m}_found": modes[m][0] for m in MODES},
                                     **{f"{m}_s": modes[m][1] for m in MODES}))
                    log(f"  {operator:30s} #{site}: {status:14s} " +
                        "  ".join(f"{m} {'found' if modes[m][0] else '-'} {modes[m][1]:.1f}s" for m in MODES))
    return rows


def table(rows, budget):
    """The results as Markdown: per model and variant, then the total."""
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], r["variant"]), []).append(r)
    groups[("all", "")] = rows
    lines = ["| model | variant | faults | non-equivalent | equivalent | undecided | "
             + " | ".join(f"{m}: found (of non-equiv.), mean s" for m in MODES) + " | thorough: slowest find |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * (len(MODES) + 1)]
    for (model, variant), rs in groups.items():
        ne = [r for r in rs if r["status"] == "non-equivalent"]
        cells = [model, variant, str(len(rs)), str(len(ne)),
                 str(sum(r["status"] == "equivalent" for r in rs)),
                 str(sum(r["status"] == "undecided" for r in rs))]
        for m in MODES:
            found = sum(r[f"{m}_found"] for r in ne)
            mean = np.mean([r[f"{m}_s"] for r in rs]) if rs else 0.0
            cells.append(f"{found}/{len(ne)} ({found / max(len(ne), 1):.0%}), {mean:.1f} s")
        finds = [r["thorough_s"] for r in ne if r["thorough_found"]]
        cells.append(f"{max(finds):.1f} s" if finds else "-")
        lines.append("| " + " | ".join(cells) + " |")
    wrong = [r for r in rows if r["status"] == "DECISION WRONG"]
    if wrong:
        lines.append(f"\n{len(wrong)} faults proven equivalent were found by a mode: the decision is wrong.")
    return "\n".join(lines)


def details(rows):
    """What the table hides: per operator, the faults still undecided and the
    non-equivalent ones --thorough missed (model/variant#site)."""
    lines = []
    for title, pick in (("Undecided", lambda r: r["status"] == "undecided"),
                        ("Non-equivalent, missed by --thorough",
                         lambda r: r["status"] == "non-equivalent" and not r["thorough_found"])):
        by_op = {}
        for r in filter(pick, rows):
            by_op.setdefault(r["operator"], []).append(f"{r['model']}/{r['variant']}#{r['site']}")
        lines.append(f"\n{title}: " + ("; ".join(f"{op} ({len(v)}): {', '.join(v)}" for op, v in by_op.items())
                                        if by_op else "none"))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small model, one site per operator")
    ap.add_argument("--budget", type=float, default=20.0, help="--thorough's budget per fault (seconds)")
    ap.add_argument("--per-operator", type=int, default=2, help="fault sites per operator (default 2)")
    ap.add_argument("--models", help="a comma-separated subset of mlp,cnn,ds_cnn (default: all)")
    ap.add_argument("--variants", help="a comma-separated subset of the kernel variants (default: all)")
    ap.add_argument("--rows", help="also write the rows (JSON) here, for --merge (with --merge of one run: "
                                   "its rows re-decided)")
    ap.add_argument("--merge", help="comma-separated --rows files of several runs: their rows in one table "
                                    "(nothing is run)")
    ap.add_argument("--redecide", action="store_true", help="with --merge: decide the undecided helper faults "
                                                                "again (runs made before the softmax was decided)")
    ap.add_argument("--out", help="write the results (Markdown) here, e.g. bench/results/mutation.md")
    args = ap.parse_args(argv)
    t = time.monotonic()
    if args.merge:
        runs = []
        for path in args.merge.split(","):
            with open(path) as f:
                runs.append(json.load(f))
        if args.redecide:           # each run's rows, re-decided (the time it took kept with them)
            for run in runs:
                t = time.monotonic()
                redecide(run["rows"])
                run["redecided"] = run.get("redecided", 0) + time.monotonic() - t
        if args.rows and len(runs) == 1:
            atomic_write(args.rows, json.dumps(runs[0], default=_plain))
        rows = [r for run in runs for r in run["rows"]]
        again = lambda run: f", re-decided in {run['redecided']:.0f} s" if run.get("redecided") else ""
        header = ("Regenerate, one run per model and kernel variant, one after another (a run marked "
                  "'re-decided' was made before the softmax's helpers were decided: its undecided helper faults "
                  "were decided again with `--merge NAME.json --redecide --rows NAME.json`); then merged:\n\n"
                  + "".join(f"    {run['command']} --rows {path}    # {run['seconds']:.0f} s{again(run)}\n"
                            for run, path in zip(runs, args.merge.split(",")))
                  + f"    python bench/mutation.py --merge {args.merge}{' --redecide' if args.redecide else ''} "
                    f"--out {args.out}\n")
    else:
        only = args.models.split(",") if args.models else None
        if only and set(only) - {"mlp", "cnn", "ds_cnn"}:
            ap.error(f"--models: unknown {', '.join(sorted(set(only) - {'mlp', 'cnn', 'ds_cnn'}))}; "
                     f"known: mlp, cnn, ds_cnn")
        models = build_models(args.quick, only)
        if only:
            models = {k: v for k, v in models.items() if k in only}
        rows = bench(args.quick, args.budget, args.per_operator, models=models,
                     only_variants=args.variants.split(",") if args.variants else None)
        rows = [{k: v for k, v in r.items() if k not in ("source", "flags")} for r in rows]
        chosen = (f" --models {args.models}" if args.models else "") + \
            (f" --variants {args.variants}" if args.variants else "")
        command = (f"python bench/mutation.py --budget {args.budget:g} --per-operator {args.per_operator}"
                   f"{chosen}")
        seconds = time.monotonic() - t
        header = f"Regenerate: `{command} --out {args.out}` ({seconds:.0f} s on this machine).\n"
        if args.rows:
            atomic_write(args.rows, json.dumps(dict(command=command, seconds=seconds, rows=rows), default=_plain))
    text = table(rows, args.budget) + "\n" + details(rows)
    print(text)
    if args.out:
        atomic_write(args.out, f"# Mutation testing of the verification modes\n\n{header}\n"
                               f"{__doc__.split(chr(10) + chr(10), 1)[1]}\n{text}\n")
    return 0


def _plain(v):
    """numpy scalars as JSON numbers"""
    return v.item() if hasattr(v, "item") else str(v)


if __name__ == "__main__":
    sys.exit(main())
