"""The project's import structure: every module imports, module-level imports form no cycle, no project module
is imported lazily (inside a function) except the documented ones, and the library packages never import the
training or benchmark code."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

PACKAGES = ("hrm_envs", "agents", "oracles", "train", "benchmarks", "configs")
#: Packages that are libraries of their own: they never import the training or benchmark code.
LIBRARIES = ("hrm_envs", "agents", "oracles")
#: (module, imported module) -> why it is imported inside a function instead of at the top. hrm_envs must not
#: import oracles at load time: oracles import hrm_envs (``hrm_envs`` -> ``oracles`` would be a package cycle).
LAZY_IMPORTS = {
    ("hrm_envs.checks", "oracles"): "test helper: oracles import hrm_envs",
    ("hrm_envs.city.metrics", "oracles.city"): "the oracle's route of a city: oracles import hrm_envs",
}


def project_modules() -> dict[str, Path]:
    """Module name -> source file of every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        root = Path(importlib.util.find_spec(package).origin).parent
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = project_modules()


def imported(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> list[str]:
    """The project modules an import statement of ``module`` (file ``path``) names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the importing module's package
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        # ``from package import submodule`` names the submodule, ``from module import name`` the module
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    return sorted({name for name in names if name in MODULES})


def imports(module: str) -> tuple[set[str], set[str]]:
    """Project modules imported at module level (also inside a module-level ``if`` / ``try`` / class body) and
    those imported inside functions; ``if TYPE_CHECKING:`` imports never run and count as neither."""
    path = MODULES[module]
    top, lazy = set(), set()

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                walk(ast.Module(body=child.orelse, type_ignores=[]), in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (lazy if in_function else top).update(imported(child, module, path))
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    walk(ast.parse(path.read_text()), False)
    return top - {module}, lazy - {module}


GRAPH = {module: imports(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_module_level_imports_form_no_cycle():
    state: dict[str, str] = {}  # module -> "open" (on the current path) | "done"

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module][0]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_no_lazy_import_of_a_project_module_except_the_documented_ones():
    lazy = {(module, target) for module, (_, targets) in GRAPH.items() for target in targets}
    assert lazy == set(LAZY_IMPORTS), sorted(lazy ^ set(LAZY_IMPORTS))


def test_the_libraries_never_import_training_or_benchmark_code():
    wrong = sorted((module, target) for module, (top, lazy) in GRAPH.items() if module.split(".")[0] in LIBRARIES
                   for target in top | lazy if target.split(".")[0] in ("train", "benchmarks"))
    assert not wrong


def test_the_checks_see_a_cycle_and_a_lazy_import(tmp_path, monkeypatch):
    """The AST walk itself: a lazy import is found, a cycle through two modules is reported."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import x\n")
    monkeypatch.setitem(MODULES, "a", tmp_path / "a.py")
    monkeypatch.setitem(MODULES, "b", tmp_path / "b.py")
    assert imports("a") == ({"b"}, set()) and imports("b") == (set(), {"a"})
    (tmp_path / "b.py").write_text("from a import x\n")
    monkeypatch.setitem(GRAPH, "a", imports("a"))
    monkeypatch.setitem(GRAPH, "b", imports("b"))
    with pytest.raises(pytest.fail.Exception, match="import cycle: a -> b -> a"):
        test_module_level_imports_form_no_cycle()
