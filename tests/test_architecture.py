"""Dependencies point one way: down the layers of docs/ARCHITECTURE.md, with no import cycle among
the files.

Every import counts, those inside functions included (found by walking the syntax tree): a lazy
import still ties two modules together, it only changes when the tie is made.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import microaunet_cli

PACKAGE_DIR = Path(microaunet_cli.__file__).parent
ROOT = PACKAGE_DIR.name
ARCHITECTURE_MD = PACKAGE_DIR.parent / "docs" / "ARCHITECTURE.md"

# The layers, lowest first, by subpackage or top-level module (the package root is ROOT). A module may
# import its own subpackage and the layers below its own, never its own layer's other members nor a
# layer above. docs/ARCHITECTURE.md ("Layers") states the same list; a test compares the two.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "version", "fileio", "datasets", "progress", "cpu_threads", "cpu_memory", "lazy", "weights"),
    ("devices", "environment", "onnx_runtime", "overlays"),
    ("models", "losses"),
    ("config",),
    ("checkpoints", "data"),
    ("inference",),
    ("evaluation",),
    ("training", "export"),
    ("benchmark",),
    ("workflow", "api"),
    ("cli",),
    ("__main__", ROOT),
)

# Size limits: files short enough to hold one idea, functions short enough to read at a glance.
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
# Files over a limit whose split is another item's; test_oversized_files_are_still_oversized fails once
# one fits, so the list never goes stale.
OVERSIZED: set[str] = set()

# Import edges of a known cycle left to another item, taken out of the file graph until it is fixed;
# test_pending_edges_still_exist fails once such an edge is gone, so the list never goes stale.
PENDING: set[tuple[str, str]] = set()

Graph = dict[str, dict[str, str]]  # module -> {imported module: "file:line" of the first such import}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, modules: set[str]) -> str:
    """The longest prefix of ``name`` that is a module (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module if is_package else module.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        package = package.rsplit(".", 1)[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(path: Path, modules: set[str]) -> dict[str, int]:
    """Package modules that ``path`` imports anywhere in its body, with the line of the first import."""
    module, found = module_name(path), {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(node, module, path.name == "__init__.py")
            # ``from pkg import sub`` imports the module pkg.sub;
            # ``from pkg.mod import name`` imports pkg.mod.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == ROOT or name.startswith(ROOT + "."):
                target = _resolve(name, modules)
                if target != module:
                    found.setdefault(target, node.lineno)
    return found


def file_graph() -> Graph:
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {
        module_name(f): {
            target: f"{f.relative_to(PACKAGE_DIR.parent)}:{line}"
            for target, line in imports_of(f, modules).items()
        }
        for f in files
    }


def unit(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to; the package root is its own unit."""
    parts = module.split(".")
    return ".".join(parts[:2])


def subpackage_graph(files: Graph) -> Graph:
    graph: Graph = {}
    for module, targets in files.items():
        edges = graph.setdefault(unit(module), {})
        for target, where in targets.items():
            if unit(target) != unit(module):
                edges.setdefault(unit(target), where)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle as a closed path ``[a, b, ..., a]``, or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph.get(start, {})))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, {}))))
    return None


def describe(cycle: list[str], graph: Graph) -> str:
    return "\n".join(f"  {a} -> {b}   ({graph[a][b]})" for a, b in itertools.pairwise(cycle))


def layer_of(unit_name: str) -> int:
    """The index in LAYERS of a unit (``microaunet_cli.models``, or ROOT itself)."""
    short = unit_name if unit_name == ROOT else unit_name.removeprefix(ROOT + ".")
    for index, members in enumerate(LAYERS):
        if short in members:
            return index
    raise KeyError(f"{unit_name} is in no layer: add it to LAYERS here and to docs/ARCHITECTURE.md")


def module_file(module: str) -> str:
    """The file that defines ``module``, relative to the repository (``microaunet_cli/cli/base.py``)."""
    path = Path(*module.split("."))
    return str(path / "__init__.py") if (PACKAGE_DIR.parent / path).is_dir() else f"{path}.py"


def upward_imports(files: Graph, layer: dict[str, int]) -> list[str]:
    """Every import of a unit in the same or a higher layer than the importer's, naming both files and
    the layers as docs/ARCHITECTURE.md numbers them (from 1): ``microaunet_cli/models/registry.py:9
    imports microaunet_cli/training/runner.py (layer 3 -> 8: ...)``."""
    found = []
    for module, targets in sorted(files.items()):
        for target, where in sorted(targets.items()):
            here, there = unit(module), unit(target)
            if here != there and layer[there] >= layer[here]:
                found.append(
                    f"{where} imports {module_file(target)} (layer {layer[here] + 1} -> {layer[there] + 1}: "
                    f"{here} may import only the layers below its own)"
                )
    return found


def test_the_walk_sees_imports_inside_functions():
    # The package root imports the Python API only on first attribute access, inside __getattr__.
    assert f"{ROOT}.api" in file_graph()[ROOT]


def test_find_cycle_returns_the_loop_and_none_without_one():
    graph = {"a": {"b": "a.py:1"}, "b": {"c": "b.py:2"}, "c": {"a": "c.py:3", "d": "c.py:4"}, "d": {}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert "c -> a   (c.py:3)" in describe(find_cycle(graph), graph)
    del graph["c"]["a"]
    assert find_cycle(graph) is None


def test_no_import_cycle_among_subpackages():
    graph = subpackage_graph(file_graph())
    cycle = find_cycle(graph)
    assert cycle is None, f"subpackages import each other in a cycle:\n{describe(cycle, graph)}"


def test_no_import_cycle_among_files():
    graph = file_graph()
    for a, b in PENDING:
        graph[a].pop(b, None)
    cycle = find_cycle(graph)
    assert cycle is None, f"files import each other in a cycle:\n{describe(cycle, graph)}"


def test_every_subpackage_and_module_has_a_layer():
    units = {unit(module) for module in file_graph()}
    listed = {ROOT if name == ROOT else f"{ROOT}.{name}" for members in LAYERS for name in members}
    assert units - listed == set(), "add these to LAYERS here and to docs/ARCHITECTURE.md"
    assert listed - units == set(), "these are in LAYERS but not in the package: remove them"


def test_imports_point_down_the_layers():
    files = file_graph()
    layer = {unit(module): layer_of(unit(module)) for module in files}
    upward = upward_imports(files, layer)
    assert not upward, "imports against the layer order (docs/ARCHITECTURE.md, Layers):\n" + "\n".join(upward)


def test_upward_import_is_reported_with_both_files():
    files = {
        f"{ROOT}.models.registry": {f"{ROOT}.errors": f"{ROOT}/models/registry.py:9"},
        f"{ROOT}.errors": {f"{ROOT}.models.registry": f"{ROOT}/errors.py:3"},
        f"{ROOT}.cli.base": {f"{ROOT}.cli.app": f"{ROOT}/cli/base.py:5"},  # inside its own unit: allowed
        f"{ROOT}.training.loop": {f"{ROOT}.export.api": f"{ROOT}/training/loop.py:7"},  # same layer
    }
    layer = {
        f"{ROOT}.errors": 0,
        f"{ROOT}.models": 2,
        f"{ROOT}.cli": 10,
        f"{ROOT}.training": 7,
        f"{ROOT}.export": 7,
    }
    rule = "may import only the layers below its own)"
    assert upward_imports(files, layer) == [
        f"{ROOT}/errors.py:3 imports {ROOT}/models/registry.py (layer 1 -> 3: {ROOT}.errors {rule}",
        f"{ROOT}/training/loop.py:7 imports {ROOT}/export/api.py (layer 8 -> 8: {ROOT}.training {rule}",
    ]


def _documented_layers() -> list[set[str]]:
    """The numbered list under "## Layers" in docs/ARCHITECTURE.md: one set of unit names a line, from
    its backticked names (`models/`, `errors.py`, `__init__.py` for the package root)."""
    text = ARCHITECTURE_MD.read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in section.splitlines():
        if re.match(r"\d+\. ", line):
            names = re.findall(r"`([\w.]+/?)`", line.split(":", 1)[0])
            layers.append(
                {ROOT if n == "__init__.py" else n.removesuffix("/").removesuffix(".py") for n in names}
            )
    return layers


def test_architecture_md_states_these_layers():
    assert _documented_layers() == [set(members) for members in LAYERS]


def test_pending_edges_still_exist():
    graph = file_graph()
    gone = sorted(f"{a} -> {b}" for a, b in PENDING if b not in graph.get(a, {}))
    assert not gone, f"these pending import edges are gone; remove them from PENDING: {gone}"


def _sizes() -> dict[str, list[str]]:
    """Per file (relative to the package): what is over a limit, as "N lines" and "name(): N lines"."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        over = [f"{len(text.splitlines())} lines"] if len(text.splitlines()) > MAX_FILE_LINES else []
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno - first + 1 > MAX_FUNCTION_LINES:
                    over.append(f"{node.name}(): {node.end_lineno - first + 1} lines")
        if over:
            found[path.relative_to(PACKAGE_DIR).as_posix()] = over
    return found


def test_files_and_functions_stay_short():
    over = {name: what for name, what in _sizes().items() if name not in OVERSIZED}
    assert not over, (
        f"over {MAX_FILE_LINES} lines a file or {MAX_FUNCTION_LINES} a function (split it): {over}"
    )


def test_oversized_files_are_still_oversized():
    fitting = sorted(OVERSIZED - set(_sizes()))
    assert not fitting, f"these files fit the limits now; remove them from OVERSIZED: {fitting}"
