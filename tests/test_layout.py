"""The package layout: what setup.py installs, the names users import, the paths that moved.

The oracle for "installed" is setuptools itself: `setup.py build` copies exactly what a
non-editable install (pip install .) would put in site-packages, and the test imports the
package from that copy.
"""
import ast
import glob
import importlib
import os
import re
import subprocess
import sys
import warnings

import pytest

import minitiny as mt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_DIRS = {"minitiny": "minitiny", "minitiny.codegen": "codegen",
               "minitiny.firmware": "firmware"}


def _setup_keywords():
    """The keyword arguments of the setup(...) call in setup.py, as Python values."""
    tree = ast.parse(open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read())
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    out = {}
    for kw in call.keywords:
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            pass                              # e.g. long_description=open(...).read()
    return out


def _source_packages():
    """{dotted package name: its folder in the source tree} for every folder with __init__.py."""
    found = {}
    for package, top in SOURCE_DIRS.items():
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(folder, os.path.join(ROOT, top))
                name = package if rel == "." else package + "." + rel.replace(os.sep, ".")
                found[name] = folder
    return found


def test_setup_lists_every_package_directory():
    listed = set(_setup_keywords()["packages"])
    present = set(_source_packages())
    assert present - listed == set(), f"package folders missing from setup.py's packages: {sorted(present - listed)}"
    assert listed - present == set(), f"setup.py lists packages with no folder: {sorted(listed - present)}"


def test_a_regular_install_holds_every_file_and_imports(tmp_path):
    """`setup.py build` (what `pip install .` copies) holds every module and data file of
    every package, and the product subpackages import from that copy alone."""
    subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-base", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True)
    lib = tmp_path / "lib"
    built = {str(p.relative_to(lib)).replace(os.sep, "/") for p in lib.rglob("*") if p.is_file()}
    expected = set()
    for package, folder in _source_packages().items():
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not name.endswith((".pyc", ".md")):
                expected.add(package.replace(".", "/") + "/" + name)
    for package, top in SOURCE_DIRS.items():      # data folders inside packages (templates/)
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" not in files:
                rel = os.path.relpath(folder, os.path.join(ROOT, top)).replace(os.sep, "/")
                expected |= {f"{package.replace('.', '/')}/{rel}/{f}" for f in files
                             if not f.endswith((".pyc", ".md"))}
    missing = sorted(expected - built)
    assert not missing, f"a regular install would lack (setup.py packages/package_data): {missing}"

    script = ("import minitiny, minitiny.cli, minitiny.cli.demo, minitiny.deploy, "
              "minitiny.reporting.plots, minitiny.reporting.modelcard, minitiny.codegen, "
              "minitiny.firmware\n"
              "from minitiny.deploy import boards\n"
              "assert boards.get('nano33ble').flash_bytes > 0\n"
              "print(minitiny.__file__)")
    env = dict(os.environ, PYTHONPATH=str(lib))
    out = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(lib)), out.stdout


def test_the_package_root_is_the_training_engine():
    """The product modules stay in their subpackages, and every module at the root has its
    row in docs/DESIGN.md's package map (which says why it belongs there)."""
    modules = {f for f in os.listdir(os.path.join(ROOT, "minitiny"))
               if f.endswith(".py") and not f.startswith("__")}
    moved = {old.split(".")[1] + ".py" for old, new in OLD_PATHS} | {"cli.py", "deploy.py"}
    assert modules & moved == set(), "a product module is back at the package root"
    design = open(os.path.join(ROOT, "docs", "DESIGN.md"), encoding="utf-8").read()
    package_map = design[design.index("## Package map"):]
    undocumented = sorted(m for m in modules if f"{m}`" not in package_map)
    assert not undocumented, f"root modules missing from docs/DESIGN.md's package map: {undocumented}"


# ---- names users already write keep working --------------------------------------------------
@pytest.mark.parametrize("name, module", [
    ("boards", "minitiny.deploy.boards"), ("power", "minitiny.deploy.power"),
    ("evaluation", "minitiny.reporting.evaluation"), ("codegen", "minitiny.codegen"),
    ("firmware", "minitiny.firmware"), ("datasets", "minitiny.datasets"),
])
def test_package_attributes_name_the_modules(name, module):
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # no deprecation on the documented names
        assert getattr(mt, name) is importlib.import_module(module)


def test_package_attributes_name_the_functions():
    from minitiny.reporting.evaluation import evaluate_report
    from minitiny.reporting.modelcard import model_card, write_model_card
    assert (mt.evaluate_report, mt.model_card, mt.write_model_card) == \
        (evaluate_report, model_card, write_model_card)
    assert mt.Sequential.__module__ == "minitiny.models" and mt.layers.Dense
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        mt.nonsense


OLD_PATHS = [("minitiny.boards", "minitiny.deploy.boards"),
             ("minitiny.power", "minitiny.deploy.power"),
             ("minitiny.evaluation", "minitiny.reporting.evaluation"),
             ("minitiny.modelcard", "minitiny.reporting.modelcard"),
             ("minitiny.plots", "minitiny.reporting.plots"),
             ("minitiny.demo", "minitiny.cli.demo")]


@pytest.mark.parametrize("old, new", OLD_PATHS)
def test_an_old_module_path_warns_and_gives_the_module(old, new):
    """Run in a fresh interpreter: the warning fires on the first import of the old path."""
    script = (f"import warnings; warnings.simplefilter('always')\n"
              f"with warnings.catch_warnings(record=True) as w:\n"
              f"    import {old} as old\n"
              f"import {new} as new\n"
              f"assert old is new, (old, new)\n"
              f"assert old.__spec__.name == {new!r}, old.__spec__\n"
              f"assert len(w) == 1 and w[0].category is DeprecationWarning, w\n"
              f"assert w[0].filename == '<string>', w[0].filename   # the user's line\n"
              f"print(w[0].message)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"{old} moved to {new}" in out.stdout


def test_from_an_old_path_import_a_name():
    script = ("import warnings; warnings.simplefilter('error')\n"
              "try:\n"
              "    from minitiny.evaluation import roc_auc\n"
              "except DeprecationWarning as e:\n"
              "    print(e)\n"
              "warnings.simplefilter('ignore')\n"
              "from minitiny.evaluation import roc_auc\n"
              "from minitiny.reporting.evaluation import roc_auc as new\n"
              "assert roc_auc is new\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "minitiny.evaluation moved to minitiny.reporting.evaluation" in out.stdout


def test_the_command_still_runs_as_a_module_and_a_script():
    out = subprocess.run([sys.executable, "-m", "minitiny", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "train" in out.stdout, out.stderr
    entry = _setup_keywords()["entry_points"]["console_scripts"]
    target = dict(e.replace(" ", "").split("=") for e in entry)["minitiny"]
    module, func = target.split(":")
    assert callable(getattr(importlib.import_module(module), func))


# ---- the docs name paths and modules that exist -------------------------------------------
DOCS = ["README.md", "docs/*.md", "examples/README.md", "bench/README.md", "codegen/README.md",
        "codegen/templates/*.j2", "codegen/templates/*/*.j2", "firmware/*.j2"]   # templates name their Python twins
PATH = re.compile(r"(?<![\w./-])((?:minitiny|codegen|firmware|tests|bench|examples|scripts|docs)"
                  r"/[\w./*?-]*)")
MODULE = re.compile(r"(?<![\w./-])(minitiny(?:\.[A-Za-z_]\w*)+)")


def _docs():
    for pattern in DOCS:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            with open(path, encoding="utf-8") as f:
                yield os.path.relpath(path, ROOT), f.read()


def test_every_path_the_docs_name_exists():
    """Every repository path in the README and docs (a glob matches at least one file), so
    a file moved or renamed without its docs fails here."""
    seen, missing = 0, []
    for doc, text in _docs():
        for path in set(PATH.findall(text)):
            path = path.rstrip(".,:;")
            seen += 1
            if not glob.glob(os.path.join(ROOT, path)):
                missing.append(f"{doc}: {path}")
    assert seen > 100, "the path pattern no longer finds the docs' paths"
    assert not missing, "the docs name paths that do not exist:\n" + "\n".join(sorted(missing))


def test_every_module_the_docs_name_imports():
    """`minitiny.x.y` in the docs is a module, or an attribute of one (old paths that moved
    still resolve, with their warning)."""
    missing = []
    for doc, text in _docs():
        for dotted in sorted(set(MODULE.findall(text))):
            parts = dotted.split(".")
            for i in range(len(parts), 0, -1):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    try:
                        obj = importlib.import_module(".".join(parts[:i]))
                    except ImportError:
                        continue
                try:
                    for name in parts[i:]:
                        obj = getattr(obj, name)
                except AttributeError:
                    missing.append(f"{doc}: {dotted}")
                break
    assert not missing, "the docs name modules or functions that do not exist:\n" + \
        "\n".join(missing)
