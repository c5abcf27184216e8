"""The code's shape is checked, not remembered (the layers themselves: `lint-imports`, run by `make test`)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "churnmodel"
MODULES = sorted(PACKAGE.rglob("*.py"))
#: Function-level imports of the package's own modules are allowed only for the optional Spark engine, and
#: for the application layer in the command line: `churnmodel --help` and usage errors then answer in 0.1 s
#: instead of 2.3 s (the pipeline imports LightGBM, which imports scikit-learn and SciPy).
OPTIONAL = ("churnmodel.spark",)
LAZY = {("cli.py", "churnmodel", ("pipeline",)),  # the command line answers --help without the stages
        ("cli.py", "churnmodel.preflight", ("validate",))}  # and checks inputs without the training stack (0.1 GB)


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    nested = {id(n) for f in functions for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("churnmodel")) or (isinstance(node, ast.ImportFrom) and node.module is None):
            yield node, [a.name for a in node.names], id(node) in nested


def test_no_module_imports_another_modules_private_name():
    found = [f"{p.relative_to(PACKAGE)}:{node.lineno} imports {name} from {node.module}"
             for p in MODULES for node, names, _ in _imports(p) for name in names if name.startswith("_")]
    assert not found, "\n".join(found)


def test_own_modules_are_imported_at_module_level():
    """A function-level import of the package's own code would only hide a cycle (the optional Spark engine excepted)."""
    found = [f"{p.relative_to(PACKAGE)}:{node.lineno} imports {node.module or names} inside a function"
             for p in MODULES for node, names, nested in _imports(p)
             if nested and not (node.module or "").startswith(OPTIONAL) and not (node.module == "churnmodel" and names == ["spark"])
             and (str(p.relative_to(PACKAGE)), node.module, tuple(names)) not in LAZY]
    assert not found, "\n".join(found)


#: Third-party packages a function may import where it needs them: heavy (seconds of start-up for every
#: command, notebook and worker that never uses them) or optional (Spark, SHAP, plots, MLflow, tuning).
HEAVY = {"pyspark", "shap", "matplotlib", "mlflow", "optuna", "sklearn", "scipy", "lightgbm", "lifelines", "joblib", "openpyxl"}
#: Platform modules that may be missing, imported under ``try``/``except ImportError``.
PLATFORM = {"fcntl"}


def test_function_level_imports_are_only_heavy_or_optional_packages():
    """The standard library, pandas, numpy, rich and the like are imported at the top of the module."""
    found = []
    for p in MODULES:
        tree = ast.parse(p.read_text())
        for f in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in ast.walk(f):
                if isinstance(node, ast.Import):
                    roots = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    roots = {node.module.split(".")[0]}
                else:
                    continue
                if roots - HEAVY - PLATFORM - {"churnmodel"}:  # the package's own: test_own_modules_are_imported_at_module_level
                    found.append(f"{p.relative_to(PACKAGE)}:{node.lineno} imports {sorted(roots)} inside {f.name}")
    assert not found, "\n".join(found)


def test_small_rooms():
    """No module over ~400 lines, no function over ~80 (a module that grows past this is doing two jobs)."""
    long_modules = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 420}
    long_functions = {}
    for p in MODULES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 85:
                long_functions[f"{p.relative_to(PACKAGE)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert not long_modules and not long_functions, (long_modules, long_functions)
