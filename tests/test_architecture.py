"""The package's layout as docs/architecture.md describes it: imports go only
downward through the layers, the numerical core needs only jax and numpy,
modules stay short and say what they export."""

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "sigcnn"

# Layer of each top-level part of the package; a module may import its own
# layer and those below it, never one above.
LAYERS = {
    # 0: the numerical core (jax and numpy only)
    "sigcnn": 0, "sigcnn._checks": 0, "sigcnn._io": 0, "sigcnn._format": 0,
    "sigcnn.ops": 0, "sigcnn._op_vjps": 0, "sigcnn.spectra": 0,
    "sigcnn.metrics": 0,
    "sigcnn.shifts": 0, "sigcnn.layerwise": 0, "sigcnn.atrous": 0,
    # 1: models, data, importers
    "sigcnn.models": 1, "sigcnn.data": 1, "sigcnn.interop": 1,
    # 2: experiments
    "sigcnn.verify": 2, "sigcnn.shift_test": 2, "sigcnn.train": 2,
    # 3: presentation (matplotlib figures, progress bars and lines)
    "sigcnn.figures": 3, "sigcnn._progress": 3,
    # 4: the report pipeline (experiments and figures on one page), 5: the CLI
    "sigcnn.report": 4, "sigcnn.cli": 5,
}
NAMES = {0: "core", 1: "models/data/interop", 2: "experiments", 3: "figures",
         4: "report", 5: "cli"}

# Third-party packages the core may import lazily (inside a function), each
# for one optional feature.
CORE_LAZY = {("sigcnn.shifts.inpainting", "skimage"): "inpaint(method='biharmonic')"}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _part(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else "sigcnn"


def _imports(module: str, path: pathlib.Path):
    """(imported module, lineno, at module level?) of every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            if mod == "sigcnn":        # from sigcnn import ops -> sigcnn.ops
                for a in node.names:
                    yield f"sigcnn.{a.name}", node.lineno, id(node) in top
            else:
                yield mod, node.lineno, id(node) in top


MODULES = dict(_modules())


def test_every_part_has_a_layer():
    unknown = sorted({_part(m) for m in MODULES} - set(LAYERS))
    assert not unknown, f"add these to LAYERS and docs/architecture.md: {unknown}"


def test_imports_go_only_downward():
    bad = []
    for module, path in MODULES.items():
        mine = LAYERS[_part(module)]
        for target, line, _ in _imports(module, path):
            if not target.startswith("sigcnn"):
                continue
            theirs = LAYERS.get(_part(target))
            if theirs is not None and theirs > mine:
                bad.append(f"{module}:{line} ({NAMES[mine]}) imports {target} "
                           f"({NAMES[theirs]})")
    assert not bad, "\n".join(bad)


def test_the_core_needs_only_jax_and_numpy():
    std = set(sys.stdlib_module_names)
    bad = []
    for module, path in MODULES.items():
        if LAYERS[_part(module)] != 0:
            continue
        for target, line, top in _imports(module, path):
            pkg = target.split(".")[0]
            if pkg in std or pkg in ("sigcnn", "jax", "numpy"):
                continue
            if not top and (module, pkg) in CORE_LAZY:
                continue
            bad.append(f"{module}:{line} imports {target}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_short_or_say_why(module):
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines <= 600:
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert "Why one module" in doc, (
        f"{module} has {lines} lines: split it, or say in its docstring under "
        f"'Why one module' why it is one")


@pytest.mark.parametrize("module", sorted(m for m in MODULES
                                          if not m.rsplit(".", 1)[-1].startswith("_")
                                          and m != "sigcnn.cli.__main__"))
def test_public_modules_declare_all(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = [t.id for n in tree.body if isinstance(n, ast.Assign)
             for t in n.targets if isinstance(t, ast.Name)]
    names += [n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)
              and isinstance(n.target, ast.Name)]
    assert "__all__" in names, f"{module} has no explicit __all__"
