"""No import cycles: every module imports alone in a fresh interpreter, and the imports
between modules, those inside functions included, form no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import arithlab

PACKAGE = Path(arithlab.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem not in ("__init__", "__main__"))


# Each module imported in its own child of an interpreter that has loaded the third-party
# libraries but no arithlab module: a cycle shows as an ImportError in the module that
# closes it, whichever module is imported first. (Forked, so that torch loads once.)
IMPORT_EACH_ALONE = """
import importlib, os, sys
import numpy, safetensors, torch, tqdm, yaml
for module in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module("arithlab." + module)
        except BaseException as err:
            print(module, repr(err))
            os._exit(1)
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_every_module_imports_alone_in_a_fresh_interpreter():
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH_ALONE, *MODULES], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def _imports(module: str) -> set[str]:
    """The arithlab modules `module` imports, anywhere in it (the package itself, which
    holds only the version and loads the API on first use, aside)."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("arithlab"):
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("arithlab.")} & set(MODULES)
    return found - {module}


def test_imports_between_modules_form_no_cycle():
    graph = {module: _imports(module) for module in MODULES}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, f"import cycle: {' -> '.join(path[path.index(module) :] + [module])}"
        if module not in done:
            for imported in sorted(graph[module]):
                visit(imported, [*path, module])
            done.add(module)

    for module in MODULES:
        visit(module, [])
