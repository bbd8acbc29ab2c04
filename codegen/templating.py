"""The Jinja2 environment both C generators render with (generator.py for int8,
float_codegen.py for float32), and the filters that format numbers for it.

Templates live in templates/: model.c.j2 and model.h.j2 around the layers, fixedpoint.c.j2
with the integer helpers, and one template per op kind and kernel variant in
templates/reference/, templates/scalar/ and templates/dsp/ (generator.KERNEL_VARIANTS says
which). The C is never assembled from strings in Python: the filters below only format
numbers (`c_int`, `c_row`, ...) and comments.
"""
import functools
import os

import jinja2
import numpy as np

from .names import c_comment, template_identifiers

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def c_int(value):
    """An integer literal; INT32_MIN cannot be written as a literal in C."""
    value = int(value)
    if value == -(1 << 31):
        return "(-2147483647 - 1)"
    return str(value)


def c_float(value):
    """A float literal that reads back to the same float32: '%.9g' plus 'f'."""
    text = "%.9g" % float(np.float32(value))
    if not any(ch in text for ch in ".eEn"):
        text += ".0"
    return text + "f"


def _braces(array, literal):
    """A (nested) brace initializer on one line, each value written by `literal`."""
    if array.ndim == 0:
        return literal(array)
    if array.ndim == 1:
        return "{" + ", ".join(literal(v) for v in array.tolist()) + "}"
    return "{" + ", ".join(_braces(sub, literal) for sub in array) + "}"


def c_row(array):
    """Integers, one line: [[1, 2], [3, 4]] -> '{{1, 2}, {3, 4}}'."""
    return _braces(np.asarray(array), c_int)


def c_float_row(array):
    """float32 values, one line: [[0.5, 1]] -> '{{0.5f, 1.0f}}'."""
    return _braces(np.asarray(array, dtype=np.float32), c_float)


def c_dims(shape):
    """The array part of a C declaration: (20, 784) -> '[20][784]'."""
    return "".join(f"[{int(d)}]" for d in shape)


def shape_text(shape, dtype="int8"):
    """(20, 784) -> 'int8[20][784]', for comments; a scalar is 'int8[1]'."""
    return f"{dtype}[{']['.join(str(int(d)) for d in shape)}]" if shape else f"{dtype}[1]"


@functools.lru_cache(maxsize=None)
def environment():
    """The Jinja2 environment (built once: it caches the compiled templates)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(c_int=c_int, c_float=c_float, c_row=c_row, c_float_row=c_float_row, c_dims=c_dims,
                       comment=c_comment, shape=shape_text)
    return env


def template_paths():
    """Every template, as the loader names it ('model.c.j2', 'reference/conv_2d.c.j2', ...)."""
    return sorted(environment().list_templates(filter_func=lambda name: name.endswith(".j2")))


@functools.lru_cache(maxsize=None)
def identifiers():
    """Every identifier the templates spell out: a layer may not take one as its name."""
    texts = []
    for name in template_paths():
        with open(os.path.join(TEMPLATE_DIR, name), encoding="utf-8") as f:
            texts.append(f.read())
    return frozenset(template_identifiers(texts))
