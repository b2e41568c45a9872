"""The package's import graph, read from the source (ast): no circle, and dependencies point down.

Module-level imports (``if TYPE_CHECKING:`` blocks excluded) form the graph; importing
``a.b.c`` also runs the packages ``a`` and ``a.b``, so those count as edges too. A
function-local import that closes a circle in the graph of all imports (module-level and
function-local) is a circle in disguise: only the entries of ``DEFERRED`` may do that, each with
its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Installed package -> source folder (pyproject's package-dir).
PACKAGE_DIRS = {"levit_tf": ROOT / "levit_tf", "levit_tf.converters": ROOT / "converters",
                "levit_tf.tflite": ROOT / "tflite"}
#: Function-local imports allowed to point back up the graph: (importer, imported) -> reason.
DEFERRED = {
    ("levit_tf.models.levit.modeling_levit", "levit_tf.converters"):
        "LevitPreTrainedModel.from_pretrained (HF's name) is the converters' entry point, and the "
        "converters build the model classes",
    ("levit_tf.converters.convert", "levit_tf.keras_hub.presets"):
        "load_pretrained reads keras-hub presets through the optional keras-hub classes, "
        "imported only for a preset source",
}


def package_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if package == "levit_tf" and parts[0] in ("converters", "tflite"):
                continue  # symlinks in some checkouts; the package-dir entries cover them
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(module-level, function-local) imported names: modules and ``module.attribute``."""
    is_package = path.name == "__init__.py"
    module_level: set[str] = set()
    local: set[str] = set()

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            parts = name.split(".") if is_package else name.split(".")[:-1]
            parts = parts[:len(parts) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]

    def visit(body: list[ast.stmt], in_function: bool) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                (local if in_function else module_level).update(targets(node))
            elif isinstance(node, ast.If) and _is_type_checking(node):
                continue
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(node.body, True)
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child], in_function)
                    elif isinstance(child, ast.excepthandler):
                        visit(child.body, in_function)

    visit(ast.parse(path.read_text()).body, False)
    return module_level, local


def _edges(name: str, imported: set[str], modules: dict[str, Path]) -> set[str]:
    edges = set()
    for target in imported:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                edges.add(prefix)
    return edges


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = package_modules()
    graph, deferred = {}, {}
    for name, path in modules.items():
        module_level, local = imports_of(name, path)
        graph[name] = _edges(name, module_level, modules)
        deferred[name] = _edges(name, local, modules) - graph[name]
    return graph, deferred


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return False


def test_graph_is_read_from_the_source():
    graph, deferred = import_graph()
    assert "levit_tf.models.levit.modeling_levit" in graph
    assert "levit_tf.converters.convert" in graph
    assert "levit_tf.models.levit.distillation" in graph["levit_tf.models.levit.modeling_levit"]
    assert "levit_tf.converters" in deferred["levit_tf.models.levit.modeling_levit"]


def test_no_import_circle():
    graph, _ = import_graph()
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_function_local_import_dodges_a_circle():
    graph, deferred = import_graph()
    every = {name: graph[name] | deferred[name] for name in graph}
    dodges = sorted((name, target) for name, targets in deferred.items() for target in targets
                    if reaches(every, target, name))
    assert [pair for pair in dodges if pair not in DEFERRED] == []
    assert sorted(DEFERRED) == [pair for pair in dodges if pair in DEFERRED]  # none stale


def test_the_model_layer_does_not_import_training():
    graph, _ = import_graph()
    below = [name for name in graph if not name.startswith(("levit_tf.training", "levit_tf.cli",
                                                            "levit_tf.tflite",
                                                            "levit_tf.converters"))]
    for name in below:
        assert not any(t.startswith("levit_tf.training") for t in graph[name]), name


def test_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


#: The floors, lowest first: a module imports (at module level) only from its own floor or
#: below. The root package (lazy names) and ``levit_tf.testing`` (reference builders for tests
#: and benchmarks) stand outside.
FLOORS = (
    ("levit_tf.utils",),
    ("levit_tf.preprocessing", "levit_tf.data"),  # the input side knows no model
    ("levit_tf.models",),
    ("levit_tf.export", "levit_tf.training", "levit_tf.converters", "levit_tf.tflite"),
    ("levit_tf.cli", "levit_tf.beam", "levit_tf.evaluation", "levit_tf.keras_hub"),
)
OUTSIDE = ("levit_tf.testing",)


def floor_of(module: str) -> int | None:
    for level, packages in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return level
    return None


def test_every_module_has_a_floor_and_imports_point_down():
    graph, _ = import_graph()
    homeless = [name for name in graph if name != "levit_tf" and floor_of(name) is None
                and not name.startswith(OUTSIDE) and name not in DEPRECATED_ALIASES]
    assert homeless == []
    upward = sorted((name, target) for name, targets in graph.items() for target in targets
                    if floor_of(name) is not None and floor_of(target) is not None
                    and floor_of(target) > floor_of(name))
    assert upward == []


#: Old module paths kept importable (a FutureWarning, then the moved module itself).
DEPRECATED_ALIASES = {
    "levit_tf.configuration_levit": "levit_tf.models.levit.configuration_levit",
    "levit_tf.inference": "levit_tf.models.levit.inference",
    "levit_tf.layers": "levit_tf.models.levit.layers",
    "levit_tf.modeling_levit": "levit_tf.models.levit.modeling_levit",
    "levit_tf.resolution": "levit_tf.models.levit.resolution",
    "levit_tf.serving": "levit_tf.export.saved_model",
}


def test_old_paths_warn_and_are_the_moved_modules():
    """Each in a fresh process: the import warns once, naming both paths, and returns the very
    module (same classes: ``.keras`` files and isinstance checks keep working)."""
    import subprocess
    import sys

    code = ("import importlib, warnings, sys\n"
            "old, new = sys.argv[1], sys.argv[2]\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    module = importlib.import_module(old)\n"
            "moved = [str(w.message) for w in caught if w.category is FutureWarning]\n"
            "assert module is importlib.import_module(new), module\n"
            "print(moved)\n")
    for old, new in DEPRECATED_ALIASES.items():
        done = subprocess.run([sys.executable, "-c", code, old, new], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (old, done.stderr[-2000:])
        assert done.stdout.strip() == str([f"{old} moved to {new}; the old path will be "
                                           "removed in levit-tf 0.3"]), (old, done.stdout)


def summary() -> str:
    """Rooms (modules) per package, floors and arrows (``python -m
    tests.package.test_import_graph``)."""
    graph, _ = import_graph()
    arrows = sum(len(targets) for targets in graph.values())
    packages: dict[str, int] = {}
    for name in graph:
        parts = name.split(".")
        key = ".".join(parts[:2]) if len(parts) > 1 else name
        packages[key] = packages.get(key, 0) + 1
    lines = [f"{len(graph)} rooms, {len(FLOORS)} floors, {arrows} arrows, "
             f"{0 if find_cycle(graph) is None else 1} circles"]
    lines += [f"  {name}: {count}" for name, count in sorted(packages.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary())
