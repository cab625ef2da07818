"""The floors of ``src/datarefinery``: a module imports only from its own floor or the floors
below it, and no two packages import each other, directly or round a cycle.

Which imports count: every ``import`` and ``from ... import`` in a module's syntax tree -- at the
top, inside functions (the lazy imports that keep heavy extras out of ``import datarefinery``) and
under ``if TYPE_CHECKING:``. A lazy import is a deferred one, and a type-only import still makes
the two floors change together, so each ties its floor to the imported one all the same. Relative
imports are resolved. Names in strings (the step registry's ``"module:Class"`` entries) are not
imports and are not counted.

A unit is a top-level module or package of ``datarefinery``; the package itself (its
``__init__``, the public API) is the unit ``datarefinery``. Cycles are looked for among units and,
inside every package, among its modules and sub-packages (``steps.curate`` and ``steps.augment``
may not import each other both ways, nor may ``cli.app`` and ``cli.run``). A package's
``__init__`` importing its own modules, to re-export them, is not a cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "datarefinery"
ROOT = "datarefinery"

# Top to bottom. Units on one floor may import each other (but not round a cycle).
FLOORS: list[tuple[str, ...]] = [
    ("cli",),
    # The review page reads run directories and stores decisions; only the CLI serves it.
    ("review",),
    (ROOT,),  # the public API that __init__ re-exports
    # The S3 loop and the refinement evaluation run whole pipelines: they call runner.run (load,
    # choose the executor, report) like any user, so they sit above the runner, not below it.
    ("loop",),
    ("runner",),
    ("evaluate",),
    ("executors",),
    # Exporting a run waiting for review reads the review step's options (steps) and io.export.
    ("waiting",),
    ("pipeline",),
    ("steps",),
    ("models",),
    ("detect",),
    ("prompts",),
    ("llm",),
    # Reads annotation tools' exports (io) back as review decisions (decisions).
    ("import_review",),
    ("rundir", "manifest", "config", "surrogate_key", "decisions"),
    ("io", "embeddings", "sandbox", "seccomp", "text", "fingerprints", "redact"),
    ("records", "errors", "usage"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module of datarefinery, line) for every import in the module's syntax tree."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if name in PACKAGES else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # ``from datarefinery.evaluate import diversity`` imports the submodule.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == ROOT or target.startswith(ROOT + "."):
                while target not in MODULES:  # ``import datarefinery.x.Name`` and the like
                    target = target.rsplit(".", 1)[0]
                yield target, node.lineno


EDGES: list[tuple[str, str, int]] = sorted(
    {
        (name, target, line)
        for name, path in MODULES.items()
        for target, line in _imports(name, path)
        if target != name
    }
)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def _floor_of() -> dict[str, int]:
    return {unit: level for level, floor in enumerate(FLOORS) for unit in floor}


def test_every_unit_is_on_exactly_one_floor() -> None:
    declared = [unit for floor in FLOORS for unit in floor]
    present = {_unit(m) for m in MODULES}
    missing = sorted(present - set(declared))
    assert not missing, f"modules on no floor (add them to FLOORS in {__file__}): {missing}"
    assert sorted(set(declared) - present) == [], "FLOORS names units that no longer exist"
    assert len(declared) == len(set(declared)), "a unit is on two floors"


def _upward(edges: list[tuple[str, str, int]]) -> list[str]:
    floor = _floor_of()
    return sorted(
        f"{source}:{line} imports {target} ({_unit(target)!r} is above {_unit(source)!r})"
        for source, target, line in edges
        if floor[_unit(target)] < floor[_unit(source)]
    )


def test_no_import_runs_upward() -> None:
    upward = _upward(EDGES)
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def _sibling_edges() -> dict[str, set[str]]:
    """Edges between the two children (modules or sub-packages) of the innermost package that
    holds both ends of an import; at the top, between units."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target, _ in EDGES:
        a, b = source.split("."), target.split(".")
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        if common == 1:  # two units of datarefinery (or the package root and a unit)
            graph[_unit(source)].add(_unit(target))
        elif common < min(len(a), len(b)):
            graph[".".join(a[: common + 1])].add(".".join(b[: common + 1]))
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_between_packages_or_modules() -> None:
    assert _cycles(_sibling_edges()) == []


def test_the_walk_counts_lazy_type_only_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "dedup.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .. import base\n"
        "from . import filter as f, nothing_here\n"
        "if TYPE_CHECKING:\n"
        "    from datarefinery.records import Record\n"
        "def later():\n"
        "    import datarefinery.models.smallmodel\n"
        "    from datarefinery.text import normalize\n",
        encoding="utf-8",
    )
    found = [target for target, _ in _imports("datarefinery.steps.curate.dedup", module)]
    assert found == [
        "datarefinery.steps.base",
        "datarefinery.steps.curate.filter",
        "datarefinery.steps.curate",
        "datarefinery.records",
        "datarefinery.models.smallmodel",
        "datarefinery.text",
    ]


def test_the_checks_report_what_they_are_shown() -> None:
    assert _upward([("datarefinery.text", "datarefinery.steps.base", 7)]) == [
        "datarefinery.text:7 imports datarefinery.steps.base ('steps' is above 'text')"
    ]
    assert _upward([("datarefinery.steps.base", "datarefinery.text", 7)]) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
