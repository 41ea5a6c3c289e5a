"""The stack in docs/design.md holds: no package imports one its row does not
allow, and no modules import each other in a loop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "reconciler"


def stack() -> dict[str, set[str]]:
    """package -> the packages it may import, from docs/design.md's table."""
    allowed: dict[str, set[str]] = {}
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## The stack", 1)[1].split("\n## ", 1)[0]
    for row in section.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = {_unit(name) for name in re.findall(r"`([^`]+)`", cells[0])}
        imports = {_unit(name) for name in re.findall(r"`([^`]+)`", cells[2])}
        for name in names:
            allowed[name] = imports
    return allowed


def _unit(name: str) -> str:
    return name.removesuffix("/").removesuffix(".py")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str | None = None) -> set[str]:
    """The reconciler modules `path` (module `module`) imports; a name
    imported from a package counts as its submodule when there is one."""
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("reconciler")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("reconciler"):
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                submodule = PACKAGE.parent / Path(*child.split("."))
                is_module = submodule.with_suffix(".py").exists() or submodule.is_dir()
                found.add(child if is_module else base)
    return found


def unit_of(module: str) -> str:
    """`reconciler.plan.diff` -> `plan`; the package's own `__init__` -> ``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_table_names_every_package_and_no_other() -> None:
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")} - {"", "__main__"}
    assert set(stack()) == units


def test_no_package_imports_one_its_row_does_not_allow() -> None:
    allowed = stack()
    upward = sorted(
        f"{module} imports {imported}"
        for module, imported_all in graph().items()
        if unit_of(module) in allowed
        for imported in imported_all
        if unit_of(imported) not in {"", unit_of(module), *allowed[unit_of(module)]}
    )
    assert upward == []


def test_the_table_is_a_stack() -> None:
    allowed = stack()

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in allowed.get(start, ())
        )

    assert [unit for unit in allowed if reaches(unit, unit)] == []


def test_no_modules_import_each_other_in_a_loop() -> None:
    edges = graph()
    loops: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for imported in edges.get(module, ()):
            if imported in path:
                loops.append([*path[path.index(imported) :], imported])
            elif imported in edges and imported not in done:
                visit(imported, [*path, imported])
        done.add(module)

    done: set[str] = set()
    for module in edges:
        if module not in done:
            visit(module, [module])
    assert loops == []


def test_the_walker_sees_absolute_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from reconciler.plan import planner\nfrom ..routing.expression import AllOf\n"
        "import reconciler.state\n",
        encoding="utf-8",
    )
    found = imports_of(probe, "reconciler.service.probe")
    assert found == {"reconciler.plan.planner", "reconciler.routing.expression", "reconciler.state"}
    assert "plan" not in stack()["service"]
