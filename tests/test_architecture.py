"""The layering rules that code review alone would let slip: no import cycles inside nfx."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nfx"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each nfx module -> the nfx modules it imports (a name imported from a package counts
    as the submodule when there is one)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}"
                           in modules else node.module for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_import_graph_has_no_cycles():
    graph = import_graph()
    assert {"nfx.queue.jobs", "nfx.planning.batch", "nfx.engine"} <= set(graph)
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_the_engine_knows_nothing_of_the_database():
    graph = import_graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert not {m for m in reach("nfx.engine") if m.startswith("nfx.store")}
    assert not {m for m in reach("nfx.planning.batch") if m.startswith("nfx.store")}


APP = Path(__file__).resolve().parents[1] / "streamlit_app.py"


def test_the_app_and_the_store_never_load_torch():
    """The app only queues and shows work; workers run it. Loading torch in the app's process
    would cost seconds at start and hundreds of MB per server for nothing."""
    views = sorted(p.stem for p in (Path(APP).parent / "nfx" / "app").glob("*.py"))
    check = ("import sys, nfx.store, nfx.planning.batch, nfx.run_record, nfx.sheets, nfx.feedforward, nfx.app.samples, "
             "nfx.labels, nfx.queue.supervisor, nfx.cli.app_cmd, nfx.cli.queue_cmds; "
             + "".join(f"import nfx.app.{v}; " for v in views if v != "__init__")
             # a preview drawn, as the New batch page draws them: onnxruntime, never torch
             + "from PIL import Image; from nfx.feedforward import stylize; "
             + "stylize(Image.new('RGB', (40, 30), 'red'), [Image.new('RGB', (30, 30), 'blue')], "
             + "size=40); "
             + "print('torch' in sys.modules, 'streamlit' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          check=True, cwd=Path(APP).parent)
    assert done.stdout.split() == ["False", "False"], "views need neither torch nor streamlit"

EXACT = ("streamlit", "sys", "math", "runpy", "json")  # whole modules a page may import

ALLOWED = ("streamlit.", "streamlit_drawable_canvas.", "nfx.app.", "nfx.labels.",
           "pages._widgets.", "pages._regions.", "__future__.",
           "math.", "runpy.", "pathlib.", "typing.", "sys.", "json.", "contextlib.",
           "collections.abc.")

def imported_names(source: str) -> list[str]:
    """Every name a file imports, in full: `from nfx import engine` is 'nfx.engine'."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names

def test_pages_import_only_streamlit_and_their_views():
    """Pages are layout: no SQL, no torch, no store internals; only nfx.app's views."""
    pages = sorted((Path(APP).parent / "pages").glob("*.py"))
    assert len(pages) >= 6
    for page in pages + [Path(APP)]:
        for name in imported_names(page.read_text()):
            assert name in EXACT or name.startswith(ALLOWED), \
                f"{page.name} imports {name}"

def test_the_import_guard_checks_names_not_only_modules():
    for sneaky in ("from nfx import engine", "from nfx import store",
                   "from nfx.settings import FIELDS", "import nfx"):
        assert not all(n in EXACT or n.startswith(ALLOWED)
                       for n in imported_names(sneaky)), sneaky

def test_no_streamlit_calls_outside_pages():
    root = Path(APP).parent / "nfx"
    for module in root.rglob("*.py"):
        assert not any(n.startswith("streamlit") for n in imported_names(module.read_text())), \
            module


ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_mypy_finds_nothing_in_nfx():
    """Types are checked: every function annotated, no error (pyproject.toml's [tool.mypy])."""
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})


def test_the_declared_import_contracts_hold():
    """pyproject.toml's [tool.importlinter]: the layers, and no torch in the app's process."""
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_the_import_contracts_catch_an_import_against_the_layers(tmp_path):
    """The same check on a copy of the package in which the store imports the queue's
    worker (and so the engine): both contracts break."""
    shutil.copytree(ROOT / "nfx", tmp_path / "nfx", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    gallery = tmp_path / "nfx" / "store" / "gallery.py"
    gallery.write_text(gallery.read_text() + "\nimport nfx.queue.worker  # noqa\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "Contracts: 0 kept, 2 broken." in done.stdout, done.stdout[-3000:]
