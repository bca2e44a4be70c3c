"""Issue 10 item 8: no .py file holds another language's source in a string; the Java peers the
Leshan launcher compiles are package data (emulator/testing/java/*.java)."""
import ast
import re
from pathlib import Path

from emulator import resources
from emulator.testing import leshan

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = re.compile(r"^\s*(public\s+(final\s+)?class\s|import\s+java\.|package\s+[a-z.]+;|#include\s*<"
                     r"|(const|let|var)\s+\w+\s*=\s*require\(|function\s*\w*\s*\()", re.M)


def test_no_python_string_holds_foreign_source():
    offenders = []
    for py in sorted(p for d in ("emulator", "tools", "tests") for p in (ROOT / d).rglob("*.py")
                     if "node_modules" not in p.parts):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count("\n") >= 5:
                if FOREIGN.search(node.value):
                    offenders.append(f"{py.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_leshan_java_peers_are_package_data():
    for main, _libs in leshan._BUILT.values():
        source = resources.testing_file("java", f"{main}.java").read_text(encoding="utf-8")
        assert re.search(rf"public\s+(final\s+)?class\s+{main}\b", source), main
