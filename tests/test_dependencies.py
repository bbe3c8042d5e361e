"""What the code imports is what ``pyproject.toml`` declares: `pip install basin-twin` is enough for ``twin``.

Every import in ``twin/`` (module level or inside a function) of a module outside the
standard library must come from a core dependency (``[project] dependencies``), except
the few lazy imports of an extra listed in :data:`LAZY`, made inside the function that
draws or serves and turned into an error that says what to install. ``twin_web/`` may use
the core and the ``web`` extra. The distribution of an import is looked up in the
environment the tests run in (``importlib.metadata.packages_distributions``).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
OWN = {"twin", "twin_web"}
PROVIDERS = packages_distributions()  # import name -> distributions, in this environment
#: import name -> the extra that provides it; imported only inside the functions that need it,
#: each with its own error naming the extra (SceneDependencyError, PlotDependencyError, `twin serve`)
LAZY = {
    "pyvista": "scene",  # twin.scene.layers.pyvista
    "PIL": "scene",  # twin.scene.output (PNG bytes)
    "fontTools": "scene",  # twin.scene.style (glyph checks)
    "matplotlib": "test",  # twin.scene.plots, for notebooks (pyvista brings it with the scene extra too)
    "twin_web": "web",  # twin serve: the web package needs the web extra
}


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


CORE = names(PROJECT["dependencies"])
EXTRAS = {extra: names(reqs) for extra, reqs in PROJECT["optional-dependencies"].items()}


def imports(package: str) -> list[tuple[str, int, str, bool]]:
    """(file, line, top-level module name, inside a function) of every import outside the standard library.

    Imports under ``if TYPE_CHECKING:`` are left out (they never run); relative imports are the package's own.
    """
    found = []

    def visit(node: ast.AST, path: Path, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, path, in_function)
                continue
            modules: list[str] = []
            if isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                modules = [child.module]
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names:
                    found.append((str(path.relative_to(ROOT)), getattr(child, "lineno", 0), top, in_function))
            visit(child, path, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    for path in sorted((ROOT / package).rglob("*.py")):
        visit(ast.parse(path.read_text(encoding="utf-8")), path, False)
    return found


def distributions(module: str) -> set[str]:
    return {canonicalize_name(d) for d in PROVIDERS.get(module, [])}


def undeclared(found: list[tuple[str, int, str, bool]], allowed: set[str], lazy: dict[str, str]) -> list[str]:
    """Imports whose distribution is not in ``allowed`` (nor, inside a function, in the extra ``lazy`` names)."""
    bad = []
    for path, line, module, in_function in found:
        if module in OWN and module not in lazy:
            continue
        if in_function and module in lazy:
            extra = lazy[module]
            if module in OWN or distributions(module) & EXTRAS[extra]:
                continue
            bad.append(f"{path}:{line} imports {module}, which the {extra!r} extra does not list")
            continue
        dists = distributions(module)
        if not dists:
            bad.append(f"{path}:{line} imports {module}, which no installed distribution provides")
        elif not dists & allowed:
            where = "inside a function" if in_function else "at module level"
            bad.append(f"{path}:{line} imports {module} ({', '.join(sorted(dists))}) {where}: not a core dependency")
    return bad


def test_twin_imports_at_module_level_only_core_dependencies():
    top_level = [f for f in imports("twin") if not f[3]]
    assert len(top_level) > 50  # the walk sees the package
    assert undeclared(top_level, CORE, {}) == []


def test_twin_imports_inside_functions_only_core_dependencies_or_a_documented_extra():
    inner = [f for f in imports("twin") if f[3]]
    assert any(module == "pyvista" for _, _, module, _ in inner)  # the lazy imports are seen
    assert undeclared(inner, CORE, LAZY) == []


def test_the_lazy_imports_of_extras_stay_inside_functions():
    top_level = {(path, module) for path, _, module, in_function in imports("twin") if not in_function}
    assert sorted(p for p in top_level if p[1] in LAZY) == []


def test_web_imports_only_the_core_and_the_web_extra():
    assert undeclared(imports("twin_web"), CORE | EXTRAS["web"], {}) == []


def test_the_check_catches_an_undeclared_import():
    fake = [("twin/x.py", 3, "werkzeug", True), ("twin/y.py", 1, "pytest", False), ("twin/z.py", 2, "pyvista", False)]
    bad = undeclared(fake, CORE - {"werkzeug"}, LAZY)
    assert [b.split(" ")[0] for b in bad] == ["twin/x.py:3", "twin/y.py:1", "twin/z.py:2"]
    assert "not a core dependency" in bad[0]
