"""Imports point down the layers: the pure packages import nothing above them, the tracker's
rules know no adapter, and the ``weightless`` command imports only the pure packages (so a
user's client never loads the tracker, its registry or its web code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "weightless"

# what each part of the package may import of weightless (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "torrent": {"wire"},
    "wire": set(),
    "netaddr": set(),
    "tracker": {"wire", "netaddr"},
    # state.atomic is the one file-writing function, standard library only
    "client": {"torrent", "wire", "state.atomic"},
}
# nothing in the package imports these (the client is a layer of its own; tap wires the rest)
NEVER_IMPORTED = {"client": "the tracker", "tap": "any module"}


def part_of(module: str) -> str:
    """``weightless.tracker.core`` -> ``tracker``; ``weightless.tap`` -> ``tap``."""
    return module.split(".")[1]


def allowed(target: str, parts: set[str]) -> bool:
    """Whether ``target`` is in one of ``parts`` (a package, ``tracker``, or one module of it,
    ``state.atomic``)."""
    return any(target == f"weightless.{p}" or target.startswith(f"weightless.{p}.") for p in parts)


def imports(path: Path) -> set[str]:
    """Every ``weightless.*`` module a file imports, at any depth (TYPE_CHECKING blocks too)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("weightless."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "weightless":
                found.update(f"weightless.{a.name}" for a in node.names)
            elif node.module.startswith("weightless."):
                found.add(node.module)
    return found


def modules() -> list[tuple[str, Path]]:
    return [
        (".".join(("weightless", *p.relative_to(PACKAGE).with_suffix("").parts)), p)
        for p in sorted(PACKAGE.rglob("*.py"))
    ]


def test_the_scan_sees_the_package_and_every_import_form(tmp_path: Path) -> None:
    found = dict(modules())
    assert "weightless.tracker.core" in found
    assert "weightless.wire" in imports(found["weightless.tracker.core"])
    source = tmp_path / "sample.py"
    source.write_text(
        "import weightless.web.app\n"
        "from weightless import tap\n"
        "from . import nothing\n"
        "def f():\n    from weightless.registry.store import IStore\n"
    )
    assert {part_of(m) for m in imports(source)} == {"web", "tap", "registry"}


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_a_lower_layer_imports_nothing_above_it(part: str) -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in modules()
        if part_of(name) == part
        for target in imports(path)
        if not allowed(target, ALLOWED[part] | {part})
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("part", sorted(NEVER_IMPORTED))
def test_nothing_imports_the_outer_layers(part: str) -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in modules()
        if part_of(name) != part
        for target in imports(path)
        if part_of(target) == part
    ]
    assert not wrong, f"{NEVER_IMPORTED[part]} must not import weightless.{part}:\n" + "\n".join(
        wrong
    )
