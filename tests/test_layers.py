"""The package's layers, read off the source with ``ast`` (nothing is imported).

Layers, bottom up (a module may import its own layer and the layers listed for it):

- top-level vocabulary: ``s2l8h.errors``, ``s2l8h.bands``, ``s2l8h.defaults``,
  ``s2l8h.options``, ``s2l8h.similarity``, ``s2l8h.bandpass`` (HLS), ``s2l8h.resolution``
  (PSF and area average), ``s2l8h.noise`` (OLI's noise model, the noise estimate):
  importable by all, importing nothing of s2l8h but each other;
- ``io`` and ``models``: the bottom; neither imports the other;
- ``data`` and ``inference``: side by side on io and models; neither imports the other;
- ``train``, ``evaluate``, ``batch`` and the top-level ``s2l8h.demo``: may import inference,
  data, io, models, not each other (``batch`` imports inference, data and io today);
- ``cli`` (and ``s2l8h.__main__``) on top: anything.

The package root ``s2l8h`` (``__init__``: ``__version__`` and a lazy facade) may be imported by
every module; its own imports must sit inside functions (so ``import s2l8h`` loads nothing)
and are left out of both checks.

Both checks take every import: module level and inside functions (lazy imports are
dependencies too). The cycle check runs over the whole graph of s2l8h modules, with an edge
from ``from a.b import c`` to the module ``a.b.c`` when that is a module, else to ``a.b``; a
package's ``__init__`` is not implied by importing one of its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src"
PACKAGE = "s2l8h"
BASE = {"errors", "bands", "defaults", "similarity", "options", "bandpass", "resolution",
        "noise"}
APPLICATION = {"inference", "data", "io", "models"}
ALLOWED: dict[str, set[str]] = {
    "io": set(),
    "models": set(),
    "data": {"io", "models"},
    "inference": {"io", "models"},
    "train": APPLICATION,
    "evaluate": APPLICATION,
    "batch": APPLICATION,
    "demo": APPLICATION,
}
TOP = {"cli", "__main__"}
ROOT = "<root>"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported s2l8h module, line, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.append((target, node.lineno, id(node) in top_level))
    return found


def import_graph() -> dict[str, list[tuple[str, int, bool]]]:
    files = sorted((SOURCE / PACKAGE).rglob("*.py"))
    known = {module_name(path) for path in files}
    return {module_name(path): imports_of(path, known) for path in files}


def layer_violations(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str]:
    problems = []
    for module, imports in sorted(graph.items()):
        source = layer(module)
        for target, line, module_level in imports:
            destination = layer(target)
            if source == ROOT:
                if module_level:
                    problems.append(f"{module}:{line} imports {target} at module level "
                                    "(the package root must stay lazy)")
                continue
            if destination in (ROOT, source) or destination in BASE:
                continue
            if source in TOP:
                continue
            if source in BASE or destination not in ALLOWED.get(source, set()):
                problems.append(f"{module}:{line} ({source}) imports {target} ({destination})")
    return sorted(set(problems))


def import_cycles(graph: dict[str, list[tuple[str, int, bool]]]) -> list[list[str]]:
    """Every cycle found by a depth-first search (each reported once, from where it closes)."""
    edges = {module: sorted({target for target, _, _ in imports if target in graph})
             for module, imports in graph.items() if layer(module) != ROOT}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in edges.get(module, []):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    return cycles


def test_every_import_respects_the_layers() -> None:
    graph = import_graph()
    assert "s2l8h.io.reader" in graph and "s2l8h.models.registry" in graph  # it read the tree
    problems = layer_violations(graph)
    assert not problems, "imports across the layers:\n" + "\n".join(problems)


def test_no_import_cycle() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_registry_and_loading_import_in_one_direction() -> None:
    graph = import_graph()
    loading = {target for target, _, _ in graph["s2l8h.models.loading"]}
    registry = {target for target, _, _ in graph["s2l8h.models.registry"]}
    assert "s2l8h.models.registry" in loading
    assert "s2l8h.models.loading" not in registry
    assert "s2l8h.models.factory" not in registry | loading


def test_the_checks_catch_violations_and_cycles() -> None:
    graph = {
        "s2l8h.io.reader": [("s2l8h.models.convention", 27, True)],
        "s2l8h.models.convention": [("s2l8h.bands", 3, True)],
        "s2l8h.bands": [("s2l8h.io.reader", 5, False)],
        "s2l8h.data.patches": [("s2l8h.evaluate.metrics", 39, True)],
        "s2l8h.cli.app": [("s2l8h.train.run", 1, False)],
        "s2l8h": [("s2l8h.models", 9, True)],
    }
    problems = layer_violations(graph)
    assert problems == [
        "s2l8h.bands:5 (bands) imports s2l8h.io.reader (io)",
        "s2l8h.data.patches:39 (data) imports s2l8h.evaluate.metrics (evaluate)",
        "s2l8h.io.reader:27 (io) imports s2l8h.models.convention (models)",
        "s2l8h:9 imports s2l8h.models at module level (the package root must stay lazy)",
    ]
    assert import_cycles(graph) == [["s2l8h.bands", "s2l8h.io.reader",
                                     "s2l8h.models.convention", "s2l8h.bands"]]


def vocabulary_repeats(path: Path) -> list[str]:
    """What of the shared vocabulary ``path`` writes out itself: a tuple or list literal of
    the Landsat or Sentinel-2 band names (the first four, in order), or the SR scale."""
    repeats = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Tuple | ast.List):
            values = [item.value for item in node.elts if isinstance(item, ast.Constant)]
            for bands in (("blue", "green", "red", "nir08"), ("B02", "B03", "B04", "B8A")):
                if any(tuple(values[i:i + 4]) == bands for i in range(len(values))):
                    repeats.append(f"line {node.lineno}: {bands[0]}, {bands[1]}, ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, float) \
                and node.value == 0.0000275:
            repeats.append(f"line {node.lineno}: 0.0000275")
    return repeats


def test_band_vocabulary_is_defined_once() -> None:
    """The band tuples and the SR scale are written in s2l8h.bands only (other modules import
    them)."""
    offenders = {module_name(path): vocabulary_repeats(path)
                 for path in sorted((SOURCE / PACKAGE).rglob("*.py"))}
    offenders = {module: hits for module, hits in offenders.items()
                 if hits and module != "s2l8h.bands"}
    assert not offenders, offenders
    assert vocabulary_repeats(SOURCE / PACKAGE / "bands.py")  # the check finds them
