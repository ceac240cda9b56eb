"""The package's layering (``[tool.importlinter]`` in pyproject.toml) holds.

import-linter checks that sub-packages import only downwards (app > publish > analysis |
forecast | ab > data > warehouse > core), that siblings in one layer stay independent, and
that no sub-package has an import cycle. A new upward import fails here with the chain.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout


#: Run in a fresh interpreter: CPython 3.11's ast module keeps one recursion counter per
#: interpreter, and a parse while another thread of this session parses fails with
#: "AST constructor recursion depth mismatch".
SCAN = """
import ast, json, sys
from pathlib import Path
root = Path(sys.argv[1])
private, test_like = [], []
for path in sorted(root.rglob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            private += [f"{path.relative_to(root)}:{node.lineno}: {alias.name}" for alias in node.names
                        if alias.name.startswith("_") and alias.name != "__version__"]
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.lower().startswith("test"):
            test_like.append(f"{path.name}:{node.name}")
print(json.dumps({"private": private, "test_like": test_like}))
"""


def _scan() -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", SCAN, str(ROOT / "src" / "helpers")], capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_no_private_names_imported_across_modules():
    """``from helpers.x import _name`` couples a module to another's internals."""
    assert _scan()["private"] == []


def test_no_module_defines_functions_pytest_would_collect():
    """A ``test_*`` function in the package looks like a test to pytest and to readers."""
    assert _scan()["test_like"] == []


def test_the_readme_layout_table_matches_the_package():
    """Every module of src/helpers has a row in the README's module table, and every row a module."""
    import re

    package = ROOT / "src" / "helpers"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py") if p.name != "__init__.py"}
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", readme, flags=re.MULTILINE))
    assert listed == modules, f"missing from README: {sorted(modules - listed)}; no such module: {sorted(listed - modules)}"
