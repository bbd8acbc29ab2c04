"""No import cycles: not at module level, and not dodged by an import inside a function.

Every .py file of minitiny/, codegen/ (as minitiny.codegen) and firmware/ (as
minitiny.firmware) is parsed with `ast`; every `import` and `from ... import` anywhere in it
(module level, functions, methods) is an edge to the minitiny module it names. An import
inside a function that closes a cycle marks a function living in the wrong file.

KNOWN_CYCLES lists the cycles still being taken apart. The list only shrinks: the test
fails on a cycle it does not list, and on a listed cycle that no longer exists.
"""
import ast
import functools
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = {"minitiny": "minitiny", "codegen": "minitiny.codegen",
           "firmware": "minitiny.firmware"}

# each cycle as the modules along it, starting from the alphabetically first
KNOWN_CYCLES = set()      # none left


def modules():
    """{dotted module name: (path, is a package's __init__)} for every .py file."""
    found = {}
    for top, package in SOURCES.items():
        base = os.path.join(ROOT, top)
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            rel = os.path.relpath(folder, base)
            prefix = package if rel == "." else package + "." + rel.replace(os.sep, ".")
            for f in files:
                if f.endswith(".py"):
                    name = prefix if f == "__init__.py" else f"{prefix}.{f[:-3]}"
                    found[name] = (os.path.join(folder, f), f == "__init__.py")
    return found


@functools.lru_cache(maxsize=None)
def import_graph():
    """{module: set of minitiny modules it imports anywhere in its source}."""
    mods = modules()

    def known(name):                 # a.b.C (a class in a.b) -> a.b; outside minitiny -> None
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, is_package) in mods.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:                       # from . import x, from ..files import y
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = package + ("." + base if base else "")
                # `from pkg import sub` imports the submodule sub; `from mod import f` mod
                targets |= {known(f"{base}.{a.name}") if f"{base}.{a.name}" in mods
                            else known(base) for a in node.names}
        graph[name] = targets - {None, name}
    return graph


def cycles(graph, limit=1000):
    """Every elementary cycle, each as a tuple starting from its alphabetically first module
    (a depth-first search from each module through larger-named modules only)."""
    found = set()
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack and len(found) < limit:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.add(tuple(path))
                elif nxt > start and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    return found


def test_the_graph_sees_imports_everywhere():
    """The parser finds module-level, function-level and relative imports (so a cycle
    dodged inside a function is still seen)."""
    graph = import_graph()
    assert "minitiny.tensor" in graph["minitiny.models"]              # module level
    assert "minitiny.deploy.boards" in graph["minitiny.models"]       # inside summary()
    assert "minitiny.deploy.boards" in graph["minitiny.deploy.power"]  # from . import boards
    assert "minitiny.files" in graph["minitiny.codegen.output"]       # from minitiny.files ...
    assert cycles({"a": {"b"}, "b": {"c", "a"}, "c": {"a"}}) == {("a", "b"), ("a", "b", "c")}


def test_no_import_cycles_beyond_the_known_ones():
    graph = import_graph()
    found = cycles(graph)
    new = sorted(found - KNOWN_CYCLES)
    gone = sorted(KNOWN_CYCLES - found)
    assert not new, "import cycles (each an import that belongs elsewhere):\n" + \
        "\n".join(" -> ".join(c + (c[0],)) for c in new)
    assert not gone, "these cycles are gone: take them off KNOWN_CYCLES:\n" + \
        "\n".join(" -> ".join(c + (c[0],)) for c in gone)
