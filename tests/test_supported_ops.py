"""The one table of supported TFLite operators (minitiny/quant/supported.py) is the door:
the importer maps through it, docs/OPS.md and `minitiny import --help` print it, and every
kind in it has a kernel, a place in the graph and a builtin in the writer."""
import os
import subprocess
import sys

from tflite import BuiltinOperator

from minitiny.quant import graph, kernels, supported, tflite_io, tflite_read

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_docs_ops_md_is_the_table():
    with open(os.path.join(ROOT, "docs", "OPS.md"), encoding="utf-8") as f:
        assert f.read() == supported.markdown(), \
            "docs/OPS.md is stale: python -m minitiny.quant.supported > docs/OPS.md"


def test_import_help_prints_the_table():
    r = subprocess.run([sys.executable, "-m", "minitiny", "import", "--help"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    for op in supported.OPS:
        assert op.name in r.stdout
    assert supported.text_table() in r.stdout


def test_every_row_is_a_real_builtin_and_a_runnable_kind():
    for op in supported.OPS:
        assert hasattr(BuiltinOperator, op.name), op.name
        assert set(op.modes) <= set(supported.MODES), op
    for kind in supported.kinds():
        assert kind in kernels.KERNELS, kind
        assert kind in graph.OP_OPTIONS, kind
        assert kind in tflite_io.BUILTINS, kind
    # and nothing the graph runs is missing from the table
    assert set(graph.OP_OPTIONS) == set(supported.kinds())


def test_the_importer_maps_exactly_the_table():
    mapped = {tflite_read.op_name(code): kind for code, (kind, _) in tflite_read.KINDS.items()}
    assert mapped == {op.name: op.kind for op in supported.OPS if op.kind}


def test_column_c_says_which_kinds_the_generator_emits():
    from codegen import generator
    for op in supported.OPS:
        if op.kind:
            assert (op.kind in generator.TEMPLATES) == op.c, op
