"""The package's shape, checked on its source with ``ast`` (issue 10, "Done when"):

- no import cycle among ``emulator/`` modules, counting imports inside functions and under
  ``TYPE_CHECKING``, and counting that importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``
  (so a package ``__init__`` that re-exports submodules which import back from it is a cycle);
- nothing under ``emulator/lwm2m/`` imports from ``emulator.at`` or ``emulator.commands``, nor holds
  the text of a URC or an AT error (the AT layer formats the agent's typed events);
- ``Modem`` has no untyped ``ext`` dict.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "emulator"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every ``emulator`` module that importing ``name`` may run, wherever the import statement
    sits (module level, function body, ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[:-(node.level - 1)]
                base = ".".join(base_parts)
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            targets.add(mod)
            for a in node.names:                 # `from pkg import sub` imports the submodule
                if f"{mod}.{a.name}" in modules:
                    targets.add(f"{mod}.{a.name}")
    # a module's own packages are always imported before it: reaching a sibling through them
    # (``from .values import x``) does not run their __init__ again; naming them does
    # (``from . import x`` where x is defined in __init__)
    own = {".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 2)}
    out: set[str] = set()
    for t in targets:
        if not (t == "emulator" or t.startswith("emulator.")):
            continue
        if t in modules and t != name:
            out.add(t)
        parts = t.split(".")
        for n in range(1, len(parts)):           # importing a.b.c runs a/__init__ and a/b/__init__
            prefix = ".".join(parts[:n])
            if prefix in modules and prefix not in own:
                out.add(prefix)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle_through_a_package_init():
    graph = {"emulator.f": {"emulator.f.a"}, "emulator.f.a": {"emulator.f"}, "emulator.x": {"emulator.f.a"}}
    assert cycles(graph) == [["emulator.f", "emulator.f.a"]]


def test_the_checker_counts_imports_inside_functions_and_type_checking(tmp_path):
    src = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..b import B\n"
           "def f():\n    from .c import d\n")
    p = tmp_path / "a.py"
    p.write_text(src)
    modules = {"emulator.p.a": p, "emulator.b": p, "emulator.p.c": p, "emulator.p.c.d": p, "emulator.p": p}
    assert imports_of("emulator.p.a", p, modules) >= {"emulator.b", "emulator.p.c", "emulator.p.c.d"}


def test_the_checker_sees_a_submodule_importing_back_from_its_package(tmp_path):
    init, sub, helper = tmp_path / "__init__.py", tmp_path / "sub.py", tmp_path / "helpers.py"
    init.write_text("from . import sub\n")
    sub.write_text("from . import helper_fn\n")
    helper.write_text("from .helpers import x\n")
    modules = {"emulator.f": init, "emulator.f.sub": sub, "emulator.f.helpers": helper}
    assert imports_of("emulator.f.sub", sub, modules) == {"emulator.f"}
    assert imports_of("emulator.f.helpers", helper, modules) == set()
    assert imports_of("emulator.f", init, modules) == {"emulator.f.sub"}


def test_no_import_cycle_among_emulator_modules():
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_modem_has_no_untyped_ext_dict():
    from emulator.modem.core import Modem
    tree = ast.parse((PKG / "modem" / "core.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "ext" and isinstance(node.value, ast.Name) \
                and node.value.id == "self":
            raise AssertionError(f"Modem sets self.ext at line {node.lineno}")
    assert "ext" not in getattr(Modem, "__annotations__", {})
    for path in PKG.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "modem.ext[" not in text and ".ext.get(" not in text, path
def test_lwm2m_does_not_import_the_at_layer():
    graph = import_graph()
    bad = {m: sorted(t for t in targets if t.startswith(("emulator.at", "emulator.commands")))
           for m, targets in graph.items() if m.startswith("emulator.lwm2m")}
    assert {m: t for m, t in bad.items() if t} == {}


URC_MARKS = ("#LWM2M", "LWM2M-TLT", "+CME", "#LWM2MRING", "OK\r", "ERROR")


def test_lwm2m_builds_no_urc_text():
    hits = []
    for path in (PKG / "lwm2m").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr)
                      and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if any(mark in node.value for mark in URC_MARKS):
                    hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert hits == []




NVM_CALLS = {"get", "set", "delete", "update"}


def _key_text(node: ast.AST | None) -> str | None:
    """A key expression as text: a string literal as it is, an f-string with ``*`` for each
    formatted part (``f"setting:{name}"`` -> ``"setting:*"``); None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)
    return None


def nvm_keys_used(path: Path) -> tuple[set[str], list[str]]:
    """The NVM keys a module passes to ``nvm.get/set/delete`` (or names in ``nvm.update(key=...)``),
    whatever the receiver is called (``nvm``, ``self.nvm``, ``ctx.modem.nvm`` ...). A key given as a
    name is resolved through that name's string assignments in the module. Returns (keys, calls
    whose key could not be resolved, as ``file:line``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            text = _key_text(node.value)
            if text is not None:
                names.setdefault(node.targets[0].id, set()).add(text)
    keys: set[str] = set()
    unresolved: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in NVM_CALLS):
            continue
        receiver = node.func.value
        if not ((isinstance(receiver, ast.Name) and receiver.id == "nvm")
                or (isinstance(receiver, ast.Attribute) and receiver.attr == "nvm")):
            continue
        if node.func.attr == "update":
            keys.update(k.arg for k in node.keywords if k.arg)
            if node.args or any(k.arg is None for k in node.keywords):
                unresolved.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            continue
        arg = node.args[0] if node.args else None
        text = _key_text(arg)
        if text is not None:
            keys.add(text)
        elif isinstance(arg, ast.Name) and arg.id in names:
            keys.update(names[arg.id])
        else:
            unresolved.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return keys, unresolved


def test_each_nvm_key_has_one_owner_module():
    """Each component owns a typed record of what it persists (issue 10, item 5): every NVM key used
    with ``nvm.get/set/delete/update`` anywhere in ``emulator/`` is used by one module only
    (emulator/modem/nvm.py's store and shape table aside), and every key is one we can see."""
    owners: dict[str, set[str]] = {}
    unresolved: list[str] = []
    for path in PKG.rglob("*.py"):
        if path == PKG / "modem" / "nvm.py":
            continue
        keys, lost = nvm_keys_used(path)
        unresolved += lost
        for key in keys:
            owners.setdefault(key, set()).add(module_name(path))
    assert unresolved == []
    assert {k: sorted(v) for k, v in owners.items() if len(v) > 1} == {}
    # the scan sees the keys: every section whose shape NVM checks is used by some module
    from emulator.modem.nvm import SHAPES
    assert sorted(set(SHAPES) - set(owners)) == []
    assert "setting:*" in owners


def test_each_lwm2m_nvm_key_has_one_owner_module():
    """Each component owns what it persists: an NVM key of the LwM2M side ("lwm2m_...") is named in
    one module only (emulator/modem/nvm.py's shape table aside), wherever the string appears."""
    owners: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        if path == PKG / "modem" / "nvm.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"(lwm2m_[a-z_]+|tz_quarters|firmware_revision)", node.value):
                owners.setdefault(node.value, set()).add(module_name(path))
    assert {k: sorted(v) for k, v in owners.items() if len(v) > 1} == {}
    assert {"lwm2m_keys", "lwm2m_fota_mode", "lwm2m_server", "lwm2m_bootstrapped", "lwm2m_resume",
            "tz_quarters", "firmware_revision"} <= set(owners)
