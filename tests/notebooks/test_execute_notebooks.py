"""Every notebook runs top to bottom against the embedded simulator, and no output carries the API key.

Each notebook is executed with nbclient in a fresh kernel of this interpreter (a kernelspec written into a
private ``JUPYTER_PATH``, so the machine's own kernels never matter), the way a Binder visitor would run it:

- no AKool credentials in the kernel's environment, so ``target="auto"`` starts the embedded simulator;
- ``AKOOL_SIM_API_KEY`` set to the canary key, so the simulator uses a key this test can look for;
- ``AKOOL_LAB_HOME`` in a temporary directory (the session journal) and the notebook's working directory there too;
- small counts and the ``fast`` profile, injected after the ``parameters`` cell as papermill does (a cell tagged
  ``injected-parameters``); 02 closes its dashboards at the end, and runs a second time without driving them.

A failing cell fails the test with the cell's error; so does a cell that runs longer than :data:`CELL_TIMEOUT_S`
or a notebook longer than :data:`NOTEBOOK_TIMEOUT_S`. The first output must say what the numbers are ("simulated ·
profile fast · seed 0"). The executed copy (outputs and widget state) and every file the notebook wrote are then
searched for the canary key.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from tests.conftest import CANARY_KEY

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 120
NOTEBOOK_TIMEOUT_S = 150

#: Parameters that keep each notebook short on a 2-core machine. The notebooks' own defaults are for people: the
#: realistic profile (timings like a real service, so seconds of speech per message) and dashboards that stay open
#: after Run All; here the fast profile and, for 02, closing at the end so that nothing outlives the run.
SMALL: dict[str, dict[str, Any]] = {
    "01_quickstart": {"profile": "fast", "duration": 60},
    "02_dashboard": {"profile": "fast", "duration": 60, "close_at_end": True},
    "03_latency_experiment": {"profile": "fast", "sessions": 2, "messages_per_session": 4, "concurrency": 2},
    "04_custom_avatars": {"profile": "fast", "duration": 60},
    "05_your_own_llm": {"profile": "fast", "duration": 60, "turns": 2},
    "06_faults_and_costs": {"profile": "fast", "duration": 60},
}

#: Further runs of a notebook with other parameters (id -> (notebook, parameters added to its SMALL ones)).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "02_dashboard-clicked": ("02_dashboard", {"drive_from_code": False}),
}
CASES = {**{name: (name, {}) for name in NOTEBOOKS}, **VARIANTS}

#: What the first output of every notebook run here must say: which numbers these are (issue 15).
LABEL = re.compile(r"simulated · profile fast · seed \d+")

#: Terminal colour codes in a kernel's traceback (unreadable in a test report).
ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Environment variables the kernel must not inherit: credentials, and settings that would change the target.
SCRUBBED_PREFIXES = ("AKOOL_", "OPENAI_")


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private ``JUPYTER_PATH`` whose only ``python3`` kernel is this interpreter (works on a fresh machine)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / "python3")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        spec = KernelSpecManager().get_kernel_spec("python3")
        assert spec.argv[0] == sys.executable, f"the python3 kernel resolves to {spec.argv[0]}, not this interpreter"
        yield root


def kernel_environment(home: Path) -> dict[str, str]:
    """This process's environment without credentials, with the canary key for the simulator and a private home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env["AKOOL_LAB_HOME"] = str(home / "akool_lab_home")
    env["AKOOL_SIM_API_KEY"] = CANARY_KEY
    env["IPYTHONDIR"] = str(home / "ipython")
    return env


def inject_parameters(nb: nbformat.NotebookNode, values: dict[str, Any]) -> None:
    """Insert a cell assigning ``values`` right after the cell tagged ``parameters`` (papermill's convention)."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "# Parameters injected by tests/notebooks/test_execute_notebooks.py\n"
    source += "".join(f"{name} = {value!r}\n" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


def files_containing(directory: Path, needle: str) -> list[Path]:
    hits = []
    for path in directory.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(path)
    return hits


def execute(name: str, workdir: Path, extra: dict[str, Any] | None = None) -> nbformat.NotebookNode:
    """Run notebook ``name`` in ``workdir``; raise ``pytest.fail`` with the failing cell's error."""
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    inject_parameters(nb, {**SMALL.get(name, {}), **(extra or {})})
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(workdir)}},
        store_widget_state=True,
    )
    try:
        client.execute(env=kernel_environment(workdir))
    except CellTimeoutError as exc:
        pytest.fail(f"{name}: a cell ran longer than {CELL_TIMEOUT_S} s\n{exc}", pytrace=False)
    except CellExecutionError as exc:
        pytest.fail(f"{name}: a cell failed\n{ANSI.sub('', str(exc))}", pytrace=False)
    finally:
        nbformat.write(nb, workdir / f"{name}.executed.ipynb")
    return nb


def first_output_text(nb: nbformat.NotebookNode) -> str:
    """The text of the first output of the notebook (a print, or a value's plain-text form)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                return str(output.text)
            if output.output_type in ("execute_result", "display_data"):
                return str(output.data.get("text/plain", ""))
    return ""


@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S + 30)
@pytest.mark.parametrize("case", CASES)
def test_notebook_runs_against_the_simulator_without_leaking_the_key(
    case: str, jupyter_path: Path, tmp_path: Path
) -> None:
    name, extra = CASES[case]
    workdir = tmp_path / "work"
    workdir.mkdir()
    started = time.monotonic()
    nb = execute(name, workdir, extra)
    elapsed = time.monotonic() - started
    assert elapsed < NOTEBOOK_TIMEOUT_S, f"{name} took {elapsed:.0f} s (bound: {NOTEBOOK_TIMEOUT_S} s)"
    assert LABEL.search(first_output_text(nb)), f"{name}: the first output does not say what the numbers are"
    assert CANARY_KEY not in nbformat.writes(nb), f"{name}: the API key appears in an output or in widget state"
    # tmp_path, not only workdir: 03 writes its run beside the notebooks' folder (../runs), as it does in a checkout.
    assert not files_containing(tmp_path, CANARY_KEY), f"{name}: a file the notebook wrote contains the API key"


def test_every_notebook_has_small_parameters_for_this_test() -> None:
    assert not set(NOTEBOOKS) - set(SMALL), "add the new notebook's small parameters to SMALL"


def test_every_notebook_has_a_profile_parameter_that_defaults_to_realistic() -> None:
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert 'profile = "realistic"' in cell.source.splitlines(), f"{name}: no profile parameter defaulting to it"
