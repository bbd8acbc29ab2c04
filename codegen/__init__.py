"""minitiny.codegen: a QModel becomes readable, dependency-free C99.

    minitiny.codegen.generate(qmodel, "build/sine", name="sine")
        # -> sine_model.h, sine_model.c, sine_manifest.json, sine.qmodel.npz
    fn = minitiny.codegen.load("build/sine")   # compiled on the host (cffi), cached
    fn(x_int8)                                 # == qmodel.predict_int8(x_int8), bit for bit

Files, in reading order:
    names.py      identifiers and comments that cannot break the C
    planner.py    the arena: lifetimes, shared buffers, greedy offsets
    inplace.py    which kernels may write over their own input, and how far before it
    stream.py     runs of convolutions computed in bands of rows, under a RAM budget
    templating.py the Jinja2 environment and the filters that format numbers
    generator.py  QModel -> template context -> files (written atomically); the kernel variants
    dsp.py        the DSP-SIMD kernels' weight layouts (variant "dsp" / "auto")
    elementwise.py  the element-wise layers: their loop, broadcast strides, constant operand
    templates/    model.c.j2 / model.h.j2 around the layers, fixedpoint.c.j2 with the integer
                  helpers, one template per op kind and variant: reference/ (TFLM's reference
                  kernels, the C to read), scalar/ (tuned portable C), dsp/ (Cortex-M DSP SIMD)
    loader.py     compile on the host and call through cffi; sanitizer builds; the check
                  that a folder's .c, .h and manifest are of one model
    float_codegen.py  the float32 C of an unquantized model, to read beside the int8 C
"""
from .generator import generate, model_hash
from .output import CodegenError, Generated, write_atomically     # {file: bytes} -> a folder, whole
from .loader import CompileError, MixedModelError, SanitizerError, load
from .planner import plan_qmodel
from .templating import environment as template_environment      # Jinja2 over templates/

__all__ = ["generate", "load", "plan_qmodel", "model_hash", "Generated", "CodegenError",
           "CompileError", "MixedModelError", "SanitizerError", "template_environment",
           "write_atomically"]
