"""The last steps of the workflow, shared by `minitiny demo` and the examples: check the
generated C on this machine, run it on an emulated microcontroller, print a table.

    check = deploy.verify_on_host(qmodel, "build/sine", x_int8)    # the C (cffi) vs NumPy int8
    check.ok, check.same, check.n, check.outputs
    fw, why = deploy.run_on_board("build/sine", x_int8[:4], "cortex-m4")   # QEMU, or why not
    print(deploy.text_table(("step", "result"), [("verify", "40/40 identical")]))

The generated C must give the NumPy int8 reference's outputs bit for bit: any difference is
a bug, never rounding. What to do about one (stop, or count it as a failed step) is the
caller's choice, so these functions report and do not raise.
"""
from dataclasses import dataclass

import numpy as np


# ---- the C on this machine ---------------------------------------------------------------
@dataclass
class Check:
    """The generated C against the NumPy int8 reference, on the same int8 inputs."""
    outputs: np.ndarray         # the C's int8 outputs (N, *output_shape); a list for several
    reference: np.ndarray       # qmodel.predict_int8 on the same inputs
    model: object               # the compiled model (codegen.load): call it again, time it

    @property
    def n(self):
        return len(_rows(self.reference))

    @property
    def same(self):
        """How many inputs gave identical outputs (every value of every output equal)."""
        return int(np.sum(np.all(_rows(self.outputs) == _rows(self.reference), axis=1)))

    @property
    def ok(self):
        return self.same == self.n


def _rows(outputs):
    """(N, values): every output of a sample in one row (a list of outputs side by side)."""
    parts = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return np.concatenate([np.asarray(a).reshape(len(a), -1) for a in parts], axis=1)


def verify_on_host(qmodel, model_dir, x_int8, progress=None, chunk=1000):
    """Compile the C in model_dir (gcc -std=c99 -Wall -Wextra -Werror, through cffi) and run
    it and the NumPy int8 reference on every input (a list of arrays for several model
    inputs); `progress` (a reporting.Progress bar) advances by each chunk of inputs."""
    from minitiny import codegen
    model = codegen.load(model_dir)
    reference = qmodel.predict_int8(x_int8)                           # (N, *output_shape)
    xs = list(x_int8) if isinstance(x_int8, (list, tuple)) else [x_int8]
    outputs = []
    for i in range(0, len(xs[0]), chunk):
        part = [x[i:i + chunk] for x in xs]
        y = model(part if len(xs) > 1 else part[0])
        outputs.append(y if isinstance(y, list) else [y])
        if progress is not None:
            progress.update(len(part[0]))
    outputs = [np.concatenate([o[k] for o in outputs]) for k in range(len(outputs[0]))]
    return Check(outputs if len(outputs) > 1 else outputs[0], reference, model)


# ---- the C on an emulated Cortex-M ---------------------------------------------------------
def run_on_board(model_dir, x_int8, board, **options):
    """firmware.run on every input in QEMU -> (FirmwareResult, None), or (None, why) when the
    Cortex-M toolchain or the emulator is missing. `options` go to firmware.run (profile,
    expected, timeout, ...). A model that does not fit the board raises firmware.DoesNotFit,
    as it would fail to link for the real board."""
    from minitiny.reporting.model_report import toolchain_missing
    why = toolchain_missing()
    if why:
        return None, why
    from minitiny import firmware
    try:
        return firmware.run(model_dir, board=board, inputs=x_int8, n=None, **options), None
    except firmware.ToolchainError as e:
        return None, str(e).splitlines()[0]


# ---- the results table --------------------------------------------------------------------
def text_table(header, rows, right=(), markdown=False):
    """Rows of strings as aligned text (columns in `right` aligned right), a rule under the
    header; or, with markdown=True, a Markdown table."""
    cells = [tuple(header)] + [tuple(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        lines.insert(1, "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|")
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(v.rjust(w) if i in right else v.ljust(w)
                       for i, (v, w) in enumerate(zip(c, widths))).rstrip() for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
