"""Imports go one way: engine <- generator <- deploy <- CLI, and no module imports itself
back through others (README.md, "The chain").

Every ``import`` statement of the three packages counts, also the ones inside functions
(a lazy import hides a cycle from the interpreter, not from the design). The checker is
plain ``ast``: it is tested on a planted tree below, so a rule that stops matching fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("edgetp", "firmware_gen", "deploy")

# The engine: the float and integer references, audio, data and model files, and the leaf
# modules every layer shares. It imports none of the layers built on it.
ENGINE = (
    "edgetp.tp",
    "edgetp.fixed",
    "edgetp.audio",
    "edgetp.data",
    "edgetp.model",
    "edgetp.models",
    "edgetp.errors",
    "edgetp.paths",
    "edgetp.threads",
    "edgetp.settings",
)
RULES = [  # (importers, what they must not import)
    (ENGINE, ("edgetp.kws", "edgetp.cli", "edgetp.interop", "firmware_gen", "deploy")),
    (("firmware_gen",), ("deploy", "edgetp.cli")),
    (("deploy",), ("edgetp.cli",)),
]


def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages (symlinks not followed)."""
    out = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            rel = f.relative_to(root)
            if any(p.is_symlink() for p in [root / Path(*rel.parts[:i]) for i in range(1, len(rel.parts))]):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = f
    return out


def imports_of(name: str, path: Path, known: dict) -> set[str]:
    """Modules of ``known`` (or outside names) that ``name``'s file imports, anywhere in it."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known]
            found.update(subs)
            if len(subs) < len(node.names):  # a name defined in ``mod`` itself
                found.add(mod)
    return found


def graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    known = modules(root, packages)
    return {m: imports_of(m, p, known) for m, p in known.items()}


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(g: dict[str, set[str]], rules=RULES) -> list[str]:
    return sorted(
        f"{m} imports {x}"
        for m, xs in g.items()
        for x in xs
        for who, banned in rules
        if under(m, who) and under(x, banned)
    )


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan, iterative)."""
    edges = {m: sorted(x for x in xs if x in g and x != m) for m, xs in g.items()}
    index, low, stack, on, out, n = {}, {}, [], set(), [], 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = n
        n += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    group = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        group.append(x)
                        if x == v:
                            break
                    if len(group) > 1:
                        out.append(sorted(group))
            elif w not in index:
                index[w] = low[w] = n
                n += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(edges[w])))
            elif w in on:
                low[v] = min(low[v], index[w])
    return sorted(out)


def test_imports_go_one_way():
    g = graph()
    assert len(g) > 50 and "edgetp.tp.network" in g and "firmware_gen.generate" in g
    assert violations(g) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_checker_finds_planted_bad_imports(tmp_path):
    files = {
        "edgetp/__init__.py": "",
        "edgetp/errors.py": "",
        "edgetp/tp/__init__.py": "",
        "edgetp/tp/network.py": "from edgetp.tp import kernels\nfrom edgetp.errors import EdgetpError\n",
        "edgetp/tp/kernels.py": "import numpy\n",
        "edgetp/fixed/__init__.py": "",
        "edgetp/fixed/finetune.py": "def f():\n    from ..kws.train import fit\n",  # lazy, relative
        "edgetp/kws/__init__.py": "",
        "edgetp/kws/train.py": "from edgetp.tp.network import x\n",
        "edgetp/cli/__init__.py": "import deploy.host\n",
        "firmware_gen/__init__.py": "",
        "firmware_gen/options.py": "def g():\n    from firmware_gen.qmodel import q\n",
        "firmware_gen/qmodel.py": "from firmware_gen.options import DEFAULTS\n",
        "firmware_gen/export.py": "import deploy.host as h\n",
        "deploy/__init__.py": "",
        "deploy/host.py": "from edgetp import cli\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    g = graph(tmp_path)
    assert g["edgetp.tp.network"] == {"edgetp.tp.kernels", "edgetp.errors"}  # a submodule, not its package
    assert violations(g) == [
        "deploy.host imports edgetp.cli",
        "edgetp.fixed.finetune imports edgetp.kws.train",
        "firmware_gen.export imports deploy.host",
    ]
    assert cycles(g) == [["deploy.host", "edgetp.cli"], ["firmware_gen.options", "firmware_gen.qmodel"]]
    (tmp_path / "deploy/host.py").write_text("")
    (tmp_path / "firmware_gen/qmodel.py").write_text("")
    (tmp_path / "edgetp/tp/kernels.py").write_text("import edgetp.tp.network\n")  # a 2-cycle through `import a.b`
    g = graph(tmp_path)
    assert "deploy.host imports edgetp.cli" not in violations(g)
    assert cycles(g) == [["edgetp.tp.kernels", "edgetp.tp.network"]]
