"""No function or class in fund/ is reached only by the tests (issue: one writer, no dead code).

Every top-level function and class of the app must be named somewhere in the app itself (fund/,
config/, templates/, the Procfile) besides its own definition. Those registered by a decorator
(admin classes, API routes) are reached through it and need no other mention.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _app_sources() -> dict[Path, str]:
    paths = [*ROOT.glob("fund/**/*.py"), *ROOT.glob("config/**/*.py")]
    return {path: path.read_text() for path in paths if "migrations" not in path.parts}


def _definitions(path: Path, text: str) -> list[tuple[str, int]]:
    if "management" in path.parts or "static" in path.parts:  # commands and the verifier are entry points
        return []
    return [
        (node.name, node.lineno)
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.decorator_list and not node.name.startswith("__")
    ]


def test_every_function_of_the_app_has_a_caller_in_the_app():
    sources = _app_sources()
    templates = [path.read_text() for path in ROOT.glob("templates/**/*.html")]
    everything = "\n".join([*sources.values(), *templates, (ROOT / "Procfile").read_text()])
    unused = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path, text in sources.items()
        for name, line in _definitions(path, text)
        if len(re.findall(rf"\b{re.escape(name)}\b", everything)) <= 1
    ]
    assert unused == [], "reached by nothing in the app (only tests?):\n" + "\n".join(unused)
