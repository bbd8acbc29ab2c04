"""Host time per inference: the generated C (compiled with -O2, called through cffi) beside
minitiny's NumPy int8 reference (QModel.predict_int8), on the models of bench/cortexm_mac.py.

    python bench/codegen_host.py               # mlp, cnn, ds-cnn
    python bench/codegen_host.py --only mlp -n 2000

Columns: microseconds per inference of the C (one NAME_invoke per sample; the cffi call and
the Python loop around it included), of NumPy on one sample at a time, and of NumPy on a
batch of n samples (per sample); then how many times faster the C is than each. Both must
give the same int8 outputs (checked on every sample). Times are the best of --repeat runs.
The C on the host runs the scalar kernels ("auto" keeps them where the CPU has no Arm DSP
extension).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from cortexm_mac import MODELS, quantized     # noqa: E402  (the same three models)
from minitiny import codegen                   # noqa: E402


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(name, n, repeat, work):
    qmodel = quantized(name)
    d = os.path.join(work, name)
    codegen.generate(qmodel, d, name=qmodel.name, variant="auto")
    c = codegen.load(d)
    x = np.random.default_rng(1).integers(-128, 128, size=(n,) + tuple(qmodel.input.shape)).astype(np.int8)
    want = qmodel.predict_int8(x)
    if not np.array_equal(c(x), want):
        raise SystemExit(f"{name}: the C and NumPy disagree")
    k = min(n, 50)                                         # NumPy one at a time is slow: fewer
    t_c = best_of(lambda: c(x), repeat) / n
    t_np1 = best_of(lambda: [qmodel.predict_int8(x[i:i + 1]) for i in range(k)], repeat) / k
    t_npn = best_of(lambda: qmodel.predict_int8(x), repeat) / n
    macs = sum(int(op.params.get("macs", 0)) for op in qmodel.ops)
    return name, macs, t_c, t_np1, t_npn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(MODELS), action="append")
    parser.add_argument("-n", type=int, default=200, help="samples per run (default 200)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        rows = [measure(name, args.n, args.repeat, work) for name in (args.only or list(MODELS))]
    print(f"host: generated C (gcc -O2, cffi) vs NumPy int8 reference, microseconds per inference\n")
    print(f"{'model':8s} {'MACs':>10s} {'C':>10s} {'NumPy x1':>10s} {'NumPy xN':>10s} "
          f"{'C vs x1':>9s} {'C vs xN':>9s}")
    for name, macs, t_c, t_np1, t_npn in rows:
        print(f"{name:8s} {macs:10,d} {t_c * 1e6:10.1f} {t_np1 * 1e6:10.1f} {t_npn * 1e6:10.1f} "
              f"{t_np1 / t_c:8.1f}x {t_npn / t_c:8.1f}x")
    print(f"\n(NumPy xN: a batch of {args.n}, time per sample; best of {args.repeat})")


if __name__ == "__main__":
    main()
