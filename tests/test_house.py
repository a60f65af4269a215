"""The house rules, read from the source with ``ast`` (nothing of edgecl is imported):

(a) no import circle among edgecl's modules (imports inside functions count; a package's
    ``__init__`` importing its own submodules is not a circle by itself);
(b) no module over 600 lines;
(c) every Numba-compiled function (``@njit``, ``@jit``, ...) lives under ``edgecl/kernels/``;
(d) no private name (``_x``) or private module imported across edgecl's top-level
    subpackages (``edgecl.device`` importing ``edgecl.memory._common``, or
    ``from edgecl.kernels.block import _block``).

Each failure lists every offender. Imports under ``if TYPE_CHECKING:`` never run, so they
are not import edges.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgecl"
MAX_LINES = 600
#: numba's compiling decorators and functions
NUMBA_COMPILERS = {"njit", "jit", "generated_jit", "vectorize", "guvectorize", "cfunc", "stencil"}
NUMBA_COMPILERS |= {"intrinsic"}


@dataclass
class Module:
    name: str  # dotted, "edgecl.memory" for edgecl/memory/__init__.py
    path: Path
    is_package: bool
    tree: ast.Module
    lines: int
    imports: list[tuple[str, str | None, int]] = field(default_factory=list)  # base, name, line

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]

    @property
    def rel(self) -> str:
        return self.path.relative_to(PACKAGE.parent).as_posix()


def _is_private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _top(module: str) -> str:
    """The top-level subpackage (or module) of edgecl a module belongs to."""
    return ".".join(module.split(".")[:2])


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
    return skip


def _read(path: Path) -> Module:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    name = ".".join(parts[:-1] if is_package else parts)
    src = path.read_text(encoding="utf-8")
    tree = ast.parse(src, filename=str(path))
    mod = Module(name, path, is_package, tree, len(src.splitlines()))
    skip = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            mod.imports += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = mod.package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            mod.imports += [(base, a.name, node.lineno) for a in node.names]
    return mod


@functools.cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        mod = _read(path)
        found[mod.name] = mod
    assert "edgecl" in found and len(found) > 20, f"edgecl's sources not found at {PACKAGE}"
    return found


def _resolve(base: str, name: str | None, mods: dict[str, Module]) -> str | None:
    """The edgecl module an import statement loads (the most specific one), or None."""
    if base != "edgecl" and not base.startswith("edgecl."):
        return None
    full = f"{base}.{name}" if name and f"{base}.{name}" in mods else base
    while full not in mods and "." in full:
        full = full.rpartition(".")[0]
    return full if full in mods else None


@functools.cache
def import_edges() -> dict[str, dict[str, int]]:
    """``{module: {imported module: line}}``: every module an import loads, with the
    packages above it that the importer is not already inside (importing
    ``edgecl.memory.gbm`` runs ``edgecl/memory/__init__.py`` first)."""
    mods = modules()
    edges: dict[str, dict[str, int]] = {m: {} for m in mods}
    for m, mod in mods.items():
        inside = set(_ancestors(m)) | ({m} if mod.is_package else set())
        for base, name, line in mod.imports:
            target = _resolve(base, name, mods)
            if target is None:
                continue
            for t in [*_ancestors(target), target]:
                explicit = t == target
                if t != m and t in mods and (explicit or t not in inside):
                    edges[m].setdefault(t, line)
    return edges


def _circles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return sorted(out)


def _describe(circle: list[str], edges: dict[str, dict[str, int]]) -> str:
    members = set(circle)
    mods = modules()
    links = [
        f"{mods[a].rel}:{line} -> {b}"
        for a in circle
        for b, line in sorted(edges[a].items())
        if b in members
    ]
    return " | ".join(links)


def test_no_import_circle():
    edges = import_edges()
    circles = _circles(edges)
    assert not circles, f"{len(circles)} import circle(s) in edgecl/:\n" + "\n".join(
        f"  {' <-> '.join(c)}\n    {_describe(c, edges)}" for c in circles
    )


def test_no_module_over_600_lines():
    long = [f"{m.rel} ({m.lines} lines)" for m in modules().values() if m.lines > MAX_LINES]
    assert not long, f"{len(long)} module(s) over {MAX_LINES} lines: " + ", ".join(sorted(long))


def _numba_names(mod: Module) -> tuple[set[str], set[str]]:
    """Names bound to numba's compilers, and names bound to the numba package itself."""
    funcs: set[str] = set()
    packages: set[str] = set()
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "numba" or a.name.startswith("numba."):
                    packages.add(a.asname or "numba")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numba":
            for a in node.names:
                if a.name in NUMBA_COMPILERS:
                    funcs.add(a.asname or a.name)
    return funcs, packages


def _compiles(expr: ast.expr, funcs: set[str], packages: set[str]) -> bool:
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Name):
        return expr.id in funcs
    if isinstance(expr, ast.Attribute) and expr.attr in NUMBA_COMPILERS:
        root = expr.value
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and root.id in packages
    return False


def test_every_numba_function_lives_under_kernels():
    outside = []
    for mod in modules().values():
        if mod.name == "edgecl.kernels" or mod.name.startswith("edgecl.kernels."):
            continue
        funcs, packages = _numba_names(mod)
        if not (funcs or packages):
            continue
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(_compiles(d, funcs, packages) for d in node.decorator_list):
                    outside.append(f"{mod.rel}:{node.lineno} {node.name}")
            elif isinstance(node, ast.Call) and _compiles(node.func, funcs, packages):
                if node.args:  # njit(f) / njit(sig)(f) used as a function, not a decorator
                    outside.append(f"{mod.rel}:{node.lineno} {ast.unparse(node)[:60]}")
    outside = sorted(set(outside))
    assert not outside, (
        f"{len(outside)} Numba-compiled function(s) outside edgecl/kernels/: " + ", ".join(outside)
    )


def test_no_private_name_imported_across_subpackages():
    mods = modules()
    offenders = []
    for m, mod in mods.items():
        for base, name, line in mod.imports:
            target = _resolve(base, name, mods)
            if target is None or _top(target) == _top(m):
                continue
            path_parts = (f"{base}.{name}" if name else base).split(".")
            if any(_is_private(p) for p in path_parts[1:]):
                what = f"{base}.{name}" if name else base
                offenders.append(f"{mod.rel}:{line} imports {what}")
    offenders = sorted(set(offenders))
    assert not offenders, (
        f"{len(offenders)} private import(s) across edgecl's subpackages: " + ", ".join(offenders)
    )


def test_the_checks_see_what_they_claim():
    """The readers find real imports and decorators (so that a green run means something):
    a few facts of the code that every layout keeps."""
    mods = modules()
    kernel_funcs = [
        node.name
        for m in mods.values()
        if m.name.startswith("edgecl.kernels")
        for node in ast.walk(m.tree)
        if isinstance(node, ast.FunctionDef)
        and any(_compiles(d, *_numba_names(m)) for d in node.decorator_list)
    ]
    assert len(kernel_funcs) >= 10
    edges = import_edges()
    assert sum(len(v) for v in edges.values()) > 50
    assert _circles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [
        ["a", "b", "c"]
    ]
    assert _circles({"a": {"b": 1}, "b": {}}) == []
