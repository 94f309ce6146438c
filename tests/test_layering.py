"""The tree's promise: only `bot/adapter/`, `cogs/` and the entry point may import discord, and no module
imports another that imports it back (type-only imports included: they are cycles for a reader too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADAPTER_PACKAGES = ("bot.adapter", "cogs")
ENTRY_POINT = "bot.__main__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("cogs").rglob("*.py")]
    return {module_name(path): path for path in files}


def imports_of(name: str, path: Path) -> set[str]:
    """Every module `path` imports, absolute, including imports under TYPE_CHECKING and inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def is_domain(name: str) -> bool:
    return name != ENTRY_POINT and not any(name == p or name.startswith(p + ".") for p in ADAPTER_PACKAGES)


DOMAIN = sorted(name for name in project_modules() if is_domain(name))


def test_the_domain_is_not_empty_and_the_adapter_exists() -> None:
    assert {"bot.jobs", "bot.ledger.store", "bot.magic_hour.client", "bot.settings"} <= set(DOMAIN)
    assert "bot.adapter.bot" in project_modules()


@pytest.mark.parametrize("name", DOMAIN)
def test_no_domain_module_imports_discord(name: str) -> None:
    imported = imports_of(name, project_modules()[name])
    offenders = sorted(m for m in imported if m == "discord" or m.startswith("discord."))
    assert not offenders, f"{name} imports {offenders}; Discord code belongs in bot/adapter/ or cogs/"
    adapters = sorted(m for m in imported if not is_domain(m) and m in project_modules())
    assert not adapters, f"{name} imports the adapter {adapters}; dependencies point cogs → adapter → domain"


def test_importing_the_whole_domain_loads_no_discord() -> None:
    """The static scan above can be fooled by `importlib`; a real import cannot."""
    code = (
        "import importlib, sys\n"
        f"for name in {DOMAIN!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'discord' or m.startswith('discord.'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"the domain pulled in discord: {result.stdout}{result.stderr}"


def test_there_are_no_import_cycles() -> None:
    modules = project_modules()
    graph = {
        name: {m for m in imports_of(name, path) if m in modules and m != name and not name.startswith(m + ".")}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle a reader has to untangle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not (m.startswith(name + ".") and modules[name].name == "__init__.py")}

    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], f"import cycles: {cycles}"
