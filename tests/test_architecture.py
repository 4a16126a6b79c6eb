"""The layers of akool_lab (docs/architecture.md), checked on the package's own source.

Every ``import`` and ``from ... import`` of every module is read with :mod:`ast`, wherever it is written: at module
level, under ``if TYPE_CHECKING:``, or inside a function (a call-time import is still a dependency). A *unit* is a
top-level package (``akool_lab/live/``) or module (``akool_lab/target.py``); the rules are about units:

- the units form no cycle;
- each unit imports only the units its layer may import (the table below, which is DESIGN's order), with one
  declared exception, the call-time bridge that ``client.connect()`` is;
- no unit imports another unit's private module (``akool_lab.live._types``) or private name: the public name
  from the package (``akool_lab.live.Reply``) is what other layers use;
- the simulator imports nothing the client uses to interpret what it receives.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import akool_lab
import akool_lab.types

PACKAGE = Path(akool_lab.__file__).parent

#: The bottom: value types and helpers every layer may import. They import only each other (without a cycle).
#: ``akool_lab`` is the root ``__init__``: other modules read ``__version__`` from it, and it exports the public
#: names of every layer lazily, by name (PEP 562), so that exporting is not an import.
FOUNDATION = ("akool_lab", "errors", "redaction", "events", "types")

#: The layers, top to bottom as DESIGN lists them: each may import the foundation and the layers before it.
#: ``target`` (choosing the simulator or the real service) sits where it is used: ``metrics`` describes the target
#: of a run and ``demo``/``_lab``/``cli`` start one.
LAYERS = ("protocol", "api", "transport", "live", "target", "metrics", "widgets", "_lab", "demo", "bench", "cli")

#: The simulator stands beside the client's layers: it may use the protocol's encoders and the foundation, and the
#: units from ``target`` down (which start it) may import it.
SIM = "sim"
SIM_MAY_IMPORT = frozenset({*FOUNDATION, "protocol"})
SIM_USERS_FROM = LAYERS.index("target")

#: Imports against the layer order that are allowed, each for its reason. Only an import that does not run when
#: the module is imported qualifies: inside a function body (call time) or under ``if TYPE_CHECKING:``.
BRIDGES = {
    ("api", "live"): "client.connect() is a thin call to akool_lab.live.connect_sync/connect_async, made on use "
    "(AkoolClient.connect says why), and returns the live layer's LiveSession/AvatarStream; the live layer never "
    "imports the api layer, so no cycle exists",
    ("api", "transport"): "client.connect(transport=...) names the Transport type it accepts (type-only)",
}

#: What the client uses to interpret what it receives: the simulator must not reuse it, or a bug shared by both
#: would go unseen. ``decode`` and the validation of set-params are named here; the conversation, reassembly and
#: ack tracking are found by their defining modules.
CLIENT_SIDE_NAMES = frozenset({"decode", "validate_set_params"})
CLIENT_SIDE_MODULES = frozenset({"_conversation", "_codec"})
#: Encoders the simulator may use from those modules (``_codec`` also defines the encoders).
SIM_ALLOWED_FROM_CLIENT_SIDE = frozenset({"encode", "new_mid", "dumps"})


@dataclass(frozen=True)
class Import:
    """One imported module (and name, for ``from m import name``) seen in a module's source."""

    importer: str  # dotted name of the importing module
    module: str  # dotted name of the imported module
    name: str | None  # the name imported from it (None for ``import m``)
    line: int
    call_time: bool  # inside a function body
    type_only: bool  # under ``if TYPE_CHECKING:``

    def where(self) -> str:
        return f"{self.importer}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    """``akool_lab.live._stream`` -> ``live``; ``akool_lab.target`` -> ``target``; ``akool_lab`` -> ``akool_lab``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(
    node: ast.AST, in_function: bool = False, type_only: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function, type_only
        if _is_type_checking(child):
            assert isinstance(child, ast.If)
            for stmt in child.body:  # the ``else:`` branch runs: it is not type-only
                yield from _walk_one(stmt, in_function, True)
            for stmt in child.orelse:
                yield from _walk_one(stmt, in_function, type_only)
            continue
        inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        yield from _walk(child, inner, type_only)


def _walk_one(
    stmt: ast.stmt, in_function: bool, type_only: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        yield stmt, in_function, type_only
    else:
        yield from _walk(stmt, in_function, type_only)


def imports_of(module: str) -> list[Import]:
    """Every import of an ``akool_lab`` module in ``module``'s source, relative ones resolved."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[Import] = []
    for node, call_time, type_only in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, alias.name, None, node.lineno, call_time, type_only))
            continue
        if node.level:
            base = package[: len(package) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if submodule in MODULES:  # ``from akool_lab.api import _endpoints``: the module itself
                found.append(Import(module, submodule, None, node.lineno, call_time, type_only))
            else:
                found.append(Import(module, source, alias.name, node.lineno, call_time, type_only))
    return [i for i in found if i.module == "akool_lab" or i.module.startswith("akool_lab.")]


ALL_IMPORTS = [i for m in MODULES for i in imports_of(m)]
CROSS = [i for i in ALL_IMPORTS if unit(i.importer) != unit(i.module)]


def allowed_units(importer: str) -> frozenset[str]:
    """The units ``importer`` may import (besides itself), by the table above."""
    if importer in FOUNDATION:
        return frozenset(FOUNDATION)
    if importer == SIM:
        return SIM_MAY_IMPORT
    index = LAYERS.index(importer)
    above = {*FOUNDATION, *LAYERS[:index]}
    if index >= SIM_USERS_FROM:
        above.add(SIM)
    return frozenset(above)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``edges`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


# ---------------------------------------------------------------------------------------------------------- tests


def test_every_unit_has_a_place_in_the_layers() -> None:
    units = {unit(m) for m in MODULES}
    placed = {*FOUNDATION, *LAYERS, SIM}
    assert units - placed == set(), "place the new package or module in FOUNDATION, LAYERS or beside SIM"
    assert placed - units == set(), "a unit named in the table no longer exists"


def test_the_reader_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    # The rules below are only as good as the reader: these three imports are known to be written that way.
    seen = {(i.importer, i.module, i.name, i.call_time, i.type_only) for i in ALL_IMPORTS}
    assert ("akool_lab.api._client", "akool_lab.live", "connect_sync", True, False) in seen  # in a method
    assert ("akool_lab.transport", "akool_lab.types", "Session", False, True) in seen  # under TYPE_CHECKING
    assert ("akool_lab.api._client", "akool_lab.api._base", "ClientCore", False, False) in seen  # relative


def test_packages_import_each_other_without_a_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for i in CROSS:
        edges.setdefault(unit(i.importer), set()).add(unit(i.module))
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_modules_import_each_other_without_a_cycle_at_import_time() -> None:
    # Module-level imports only (also those under TYPE_CHECKING, which a type checker follows): a call-time import
    # inside one package (the client building its resources) is how a package may refer back to itself.
    edges: dict[str, set[str]] = {}
    for i in ALL_IMPORTS:
        if not i.call_time and i.module in MODULES and i.module != i.importer:
            edges.setdefault(i.importer, set()).add(i.module)
    type_only_exempt = {("akool_lab.api._base", "akool_lab.api._resources")}  # ClientCore <-> its resources
    for importer, module in type_only_exempt:
        edges[importer].discard(module)
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle or [])


def test_each_layer_imports_only_the_layers_above_it() -> None:
    wrong = []
    for i in CROSS:
        importer, imported = unit(i.importer), unit(i.module)
        if imported in allowed_units(importer):
            continue
        if (importer, imported) in BRIDGES and (i.call_time or i.type_only):
            continue
        wrong.append(f"{i.where()} ({importer}) imports {i.module} ({imported})")
    assert wrong == []


def test_the_only_bridge_against_the_layer_order_is_client_connect() -> None:
    used = {(unit(i.importer), unit(i.module)) for i in CROSS if unit(i.module) not in allowed_units(unit(i.importer))}
    assert used == set(BRIDGES), "a bridge is declared but unused, or an undeclared one is used"
    bridges = [i for i in CROSS if (unit(i.importer), unit(i.module)) in BRIDGES]
    assert {(i.importer, i.module, i.name) for i in bridges} == {
        ("akool_lab.api._client", "akool_lab.live", "connect_sync"),
        ("akool_lab.api._client", "akool_lab.live", "LiveSession"),
        ("akool_lab.api._client", "akool_lab.transport", "Transport"),
        ("akool_lab.api._async_client", "akool_lab.live", "connect_async"),
        ("akool_lab.api._async_client", "akool_lab.live", "AvatarStream"),
        ("akool_lab.api._async_client", "akool_lab.transport", "Transport"),
    }
    assert all(i.call_time or i.type_only for i in bridges), "a bridge must not run at import time"


def test_the_protocol_imports_only_the_foundation() -> None:
    outside = [i.where() for i in CROSS if unit(i.importer) == "protocol" and unit(i.module) not in FOUNDATION]
    assert outside == []


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def test_no_package_imports_another_packages_private_modules_or_names() -> None:
    wrong = []
    for i in CROSS:
        inner = i.module.split(".")[2:]  # below the unit: akool_lab.live._types -> ["_types"]
        if any(_is_private(part) for part in inner):
            wrong.append(f"{i.where()} imports the private module {i.module}")
        elif i.name is not None and _is_private(i.name):
            wrong.append(f"{i.where()} imports the private name {i.module}.{i.name}")
    assert wrong == []


def _client_side_protocol_names() -> frozenset[str]:
    """The names ``akool_lab.protocol`` exports from the modules the client interprets received frames with."""
    names = set(CLIENT_SIDE_NAMES)
    for i in imports_of("akool_lab.protocol"):
        if i.name and i.module.rsplit(".", 1)[-1] in CLIENT_SIDE_MODULES:
            names.add(i.name)
    return frozenset(names - SIM_ALLOWED_FROM_CLIENT_SIDE)


def test_the_client_side_names_are_found() -> None:
    names = _client_side_protocol_names()
    assert {"decode", "Conversation", "validate_set_params"} <= names
    assert "encode_chat" not in names and "encode" not in names


def test_the_simulator_uses_nothing_the_client_interprets_frames_with() -> None:
    client_side = _client_side_protocol_names()
    wrong = []
    for i in CROSS:
        if unit(i.importer) != SIM or unit(i.module) != "protocol":
            continue
        if i.name is None and i.module in ("akool_lab.protocol",):
            wrong.append(f"{i.where()} imports the whole protocol package: import the encoders by name")
        elif i.name in client_side:
            wrong.append(f"{i.where()} imports {i.name}, which the client uses to interpret what it receives")
    assert wrong == []


@pytest.mark.parametrize(
    ("public", "name"),
    [
        ("akool_lab.api", "Session"),
        ("akool_lab.api", "SessionStatus"),
        ("akool_lab.api", "Credentials"),
        ("akool_lab.api", "AgoraCredentials"),
        ("akool_lab.api", "LiveKitCredentials"),
        ("akool_lab.api", "TrtcCredentials"),
        ("akool_lab.live", "Reply"),
        ("akool_lab.live", "ReplyTimings"),
        ("akool_lab.live", "Ack"),
        ("akool_lab.live", "TranscriptEntry"),
        ("akool_lab.live", "derive_timings"),
    ],
)
def test_the_shared_types_are_still_exported_where_users_found_them(public: str, name: str) -> None:
    assert getattr(importlib.import_module(public), name) is getattr(akool_lab.types, name)


def test_docs_architecture_lists_the_layers_in_the_order_this_test_enforces() -> None:
    doc = PACKAGE.parent / "docs" / "architecture.md"
    if not doc.exists():  # an installed package without the repository's docs
        pytest.skip("docs/architecture.md is not beside the package")
    rows = [
        line.split("|") for line in doc.read_text(encoding="utf-8").splitlines() if re.match(r"\| (\d+|-) \|", line)
    ]

    def units(cell: str) -> list[str]:
        names = [name.strip("/").removesuffix(".py") for name in re.findall(r"`([^`]+)`", cell)]
        return ["akool_lab" if name == "__init__" else name for name in names]

    numbered = [units(row[2]) for row in rows if row[1].strip() != "-"]
    assert sorted(numbered[0]) == sorted(FOUNDATION)
    assert [u[0] for u in numbered[1:]] == list(LAYERS)
    assert [units(row[2]) for row in rows if row[1].strip() == "-"] == [[SIM]]
