"""Every committed notebook is clean: no outputs, no execution counts, a markdown title and a ``parameters`` cell.

Outputs in a committed notebook go stale, bloat diffs and can carry secrets; a notebook that starts with a title
tells a Binder visitor what it is before they run anything; the ``parameters`` cell (papermill's convention) is
where a test or a person changes the target, the avatar and the counts.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = (
    "01_quickstart",
    "02_dashboard",
    "03_latency_experiment",
    "04_custom_avatars",
    "05_your_own_llm",
    "06_faults_and_costs",
)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_the_six_notebooks_are_there() -> None:
    assert [p.stem for p in NOTEBOOKS] == list(EXPECTED)


def test_the_index_lists_every_notebook() -> None:
    index = (NOTEBOOKS_DIR / "README.md").read_text(encoding="utf-8")
    assert all(f"({name}.ipynb)" in index for name in EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_nbformat_4(path: Path) -> None:
    nbformat.validate(read(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs(path: Path) -> None:
    dirty = [i for i, cell in enumerate(read(path).cells) if cell.cell_type == "code" and cell.outputs]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_no_execution_counts(path: Path) -> None:
    counted = [
        i for i, cell in enumerate(read(path).cells) if cell.cell_type == "code" and cell.execution_count is not None
    ]
    assert not counted, f"{path.name}: cells {counted} have execution counts; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_keeps_no_widget_state(path: Path) -> None:
    assert "widgets" not in read(path).metadata, f"{path.name}: saved widget state; clear it before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_starts_with_a_markdown_title(path: Path) -> None:
    first = read(path).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_one_code_cell_tagged_parameters(path: Path) -> None:
    tagged = [c for c in read(path).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert "target = " in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_python3_kernel(path: Path) -> None:
    assert read(path).metadata["kernelspec"]["name"] == "python3"
