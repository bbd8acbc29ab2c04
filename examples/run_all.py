"""Run every example and write the results table: docs/RESULTS.md.

    python examples/run_all.py                 # full runs (minutes each), writes docs/RESULTS.md
    python examples/run_all.py --quick         # the CI sizes; writes build/examples/RESULTS.md
    python examples/run_all.py 03 04           # only some examples (by number or name)

Each example runs in its own process with its output under build/examples/<example>/ (the
generated C, the plots, results.json). OPENBLAS_NUM_THREADS=1 is set for them: on a busy
2-core machine a multi-threaded BLAS can be many times slower than a single thread, and the
training times should not depend on what else runs.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from common import Result, table_text  # noqa: E402  (after the path is set)

EXAMPLES = ["01_single_neuron", "02_hello_sine", "03_digits", "04_keyword_spotting", "05_gestures",
            "06_anomaly", "07_visual_wake_words"]


def run(name, out, quick, extra=()):
    """Run one example in a subprocess; return (seconds, [Result])."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, os.path.join(HERE, f"{name}.py"), "--out", out] + (["--quick"] if quick else []) + list(extra)
    start = time.time()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.time() - start
    with open(os.path.join(out, "log.txt"), "w") as f:
        f.write(p.stdout + p.stderr)
    if p.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {p.returncode}); its output is in {out}/log.txt:\n"
                           + (p.stdout + p.stderr)[-3000:])
    with open(os.path.join(out, "results.json")) as f:
        return seconds, [Result(**r) for r in json.load(f)]


def tool_version(tool):
    path = shutil.which(tool)
    if not path:
        return "not installed"
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else path


def markdown(results, times, quick, command):
    rows = [r for name in results for r in results[name]]
    lines = ["# Results of the examples", "",
             "Every number is computed on held-out test data the model never trained on; the int8",
             "column is the generated C's answer (checked bit for bit against minitiny's NumPy int8",
             "reference on the whole test set before it is counted). Regenerate this file with:", "",
             f"    {command}", "",
             table_text(rows, markdown=True), "",
             "Columns: **model B** int8 weights and biases; **flash B** the whole firmware as linked for",
             "the emulated Cortex-M4 (the model plus about 1.3 KB of startup, harness and",
             "semihosting; for the keyword-spotting pipeline also the audio front end); **RAM B** its",
             "static data plus the stack the run used (a `~` marks estimates from the manifest when",
             "the toolchain is missing); **host us/inf** the generated C on the machine below, per",
             "inference, through cffi; **M4 instr/inf** instructions per inference counted by QEMU",
             "(instructions, not cycles: QEMU has no timing model).", "", "## Notes", ""]
    for r in rows:
        if r.notes:
            lines.append(f"- **{r.example}**: {r.notes}")
    lines += ["", "## Run", "",
              f"- mode: {'--quick (CI sizes: less data, fewer epochs)' if quick else 'full'}",
              "- wall time per example (compile caches warm): "
              + ", ".join(f"{n} {t:.0f} s" for n, t in times.items()),
              f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"NumPy {__import__('numpy').__version__}, OPENBLAS_NUM_THREADS=1",
              f"- C compiler (host): {tool_version('gcc')}",
              f"- Cortex-M: {tool_version('arm-none-eabi-gcc')}; {tool_version('qemu-system-arm')}",
              "- seed 0 everywhere (`--seed` changes it)", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("only", nargs="*", help="example numbers or names (default: all)")
    p.add_argument("--quick", action="store_true", help="the small CI runs")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "examples"))
    p.add_argument("--results", default=None,
                   help="where to write the table (default docs/RESULTS.md, or OUT/RESULTS.md with --quick)")
    args = p.parse_args(argv)
    chosen = [e for e in EXAMPLES if not args.only or any(e.startswith(o) or o in e for o in args.only)]
    results, times = {}, {}
    for name in chosen:
        print(f"running {name}{' --quick' if args.quick else ''} ...", flush=True)
        times[name], results[name] = run(name, os.path.join(args.out, name), args.quick)
        print(f"  {times[name]:.0f} s", flush=True)
    rows = [r for name in chosen for r in results[name]]
    print(table_text(rows))
    target = args.results or (os.path.join(args.out, "RESULTS.md") if args.quick or args.only
                              else os.path.join(ROOT, "docs", "RESULTS.md"))
    command = "python examples/run_all.py" + (" --quick" if args.quick else "") + \
              ("" if not args.only else " " + " ".join(args.only))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(markdown(results, times, args.quick, command))
    os.replace(tmp, target)
    print(f"wrote {os.path.relpath(target, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
