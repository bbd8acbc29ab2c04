"""Run a Keras program as its author wrote it, with only the import lines swapped.

    import tensorflow as tf              ->  import minitiny as tf
    from tensorflow import keras         ->  from minitiny import keras
    from tensorflow.keras.layers import  ->  from minitiny.keras.layers import
    import keras / from keras.x import   ->  from minitiny import keras / minitiny.keras.x

`run(name)` reads `<name>.py` beside this file, swaps the imports (nothing else: the test
fails if any other line would change), executes it and returns its global namespace, so a
test can check the program's own variables (model, history, ...).
"""
import re
from pathlib import Path

HERE = Path(__file__).parent


def swap_line(line):
    stripped = line.strip()
    if not stripped.startswith(("import ", "from ")):
        return line
    line = re.sub(r"^(\s*)import keras\b", r"\1from minitiny import keras", line)
    line = re.sub(r"^(\s*)from keras\b", r"\1from minitiny.keras", line)
    return re.sub(r"\btensorflow\b", "minitiny", line)


def swapped_source(name):
    """The program's text with its import lines swapped, and how many lines changed."""
    lines = (HERE / f"{name}.py").read_text().splitlines(keepends=True)
    out = [swap_line(line) for line in lines]
    changed = [(a, b) for a, b in zip(lines, out) if a != b]
    for before, _ in changed:
        assert before.lstrip().startswith(("import ", "from ")), before
    return "".join(out), len(changed)


def run(name, **given):
    """Execute program `name` with minitiny; `given` pre-sets globals (none of the
    programs read any, it is for monkeypatching tests). Returns the globals."""
    source, n_changed = swapped_source(name)
    assert n_changed >= 1, f"{name}.py imports nothing from TensorFlow or Keras"
    namespace = {"__name__": f"keras_program_{name}", **given}
    exec(compile(source, str(HERE / f"{name}.py"), "exec"), namespace)
    return namespace
