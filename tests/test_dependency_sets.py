"""pyproject.toml is the one source of truth for the dependency list; the conda environments must agree with it.

Three files name the same packages:

- ``pyproject.toml``: ``[project].dependencies`` and the ``lab`` extra (JupyterLab and the kernel);
- ``environment.yml``: the conda environment for users (both lists, and akool_lab itself from the checkout);
- ``binder/environment.yml``: the environment Binder builds for the notebooks (both lists; ``binder/postBuild``
  installs akool_lab itself).

Each environment must hold exactly the packages of pyproject (runtime dependencies plus the ``lab`` extra), each
with the same lower bound, whether it comes from conda or from the environment's ``pip:`` section. A few packages
are called differently on conda-forge; :data:`CONDA_NAMES` maps the PyPI name to the conda-forge one.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
USER_ENV = ROOT / "environment.yml"
BINDER_ENV = ROOT / "binder" / "environment.yml"
POSTBUILD = ROOT / "binder" / "postBuild"

#: PyPI name -> conda-forge name, where they differ. ``matplotlib-base`` is matplotlib without a Qt GUI backend
#: (conda-forge's ``matplotlib`` adds PyQt), which is all a notebook needs.
CONDA_NAMES = {"matplotlib": "matplotlib-base"}

#: Packages every environment has that are not Python dependencies of akool_lab.
TOOLING = {"python", "pip"}

# name, then an optional version constraint: ">=1.2", "=3.12" (conda's exact pin) or "==3.12"
_SPEC = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:(?P<op>>=|==|=)\s*(?P<version>[0-9][^,;\s]*))?\s*$")

Requirements = dict[str, str | None]  # normalised name -> lower bound (None: unbounded)


def normalise(name: str) -> str:
    """PEP 503 normalisation (``Nest_Asyncio2`` and ``nest-asyncio2`` are the same package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(spec: str) -> tuple[str, str | None]:
    """``"httpx>=0.27"`` -> ``("httpx", "0.27")``; an exact pin counts as its own lower bound."""
    match = _SPEC.match(spec)
    if match is None:
        raise AssertionError(f"{spec!r}: expected NAME, NAME>=VERSION or NAME=VERSION")
    return normalise(match["name"]), match["version"]


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as file:
        data: dict[str, Any] = tomllib.load(file)
    return data


def expected_requirements() -> Requirements:
    """pyproject's runtime dependencies plus the ``lab`` extra, under their conda-forge names."""
    project = pyproject()["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["lab"]]
    out: Requirements = {}
    for spec in specs:
        name, bound = parse(spec)
        out[CONDA_NAMES.get(name, name)] = bound
    return out


def environment(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def conda_and_pip(env: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The conda specs and the ``pip:`` section's lines of an environment file."""
    conda: list[str] = []
    pip: list[str] = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip.extend(item.get("pip", []))
        else:
            conda.append(str(item))
    return conda, pip


def requirements_of(path: Path) -> Requirements:
    """The packages an environment file installs (conda and pip), without python, pip and the project itself."""
    conda, pip = conda_and_pip(environment(path))
    out: Requirements = {}
    for spec in conda + [line for line in pip if not line.startswith(("-", "."))]:
        name, bound = parse(spec)
        if name in TOOLING:
            continue
        assert name not in out, f"{path.name}: {name} is listed twice"
        out[name] = bound
    return out


ENVIRONMENTS = [pytest.param(USER_ENV, id="environment.yml"), pytest.param(BINDER_ENV, id="binder/environment.yml")]


@pytest.mark.parametrize("path", ENVIRONMENTS)
def test_environment_has_exactly_the_packages_of_pyproject(path: Path) -> None:
    expected, actual = expected_requirements(), requirements_of(path)
    assert sorted(actual) == sorted(expected), (
        f"{path.relative_to(ROOT)} drifted from pyproject.toml: "
        f"missing {sorted(set(expected) - set(actual))}, extra {sorted(set(actual) - set(expected))}"
    )


@pytest.mark.parametrize("path", ENVIRONMENTS)
def test_environment_has_the_lower_bounds_of_pyproject(path: Path) -> None:
    expected, actual = expected_requirements(), requirements_of(path)
    differing = {name: (actual.get(name), bound) for name, bound in expected.items() if actual.get(name) != bound}
    assert not differing, f"{path.relative_to(ROOT)}: (environment, pyproject) lower bounds differ: {differing}"


@pytest.mark.parametrize("path", ENVIRONMENTS)
def test_environment_python_satisfies_requires_python(path: Path) -> None:
    conda, _ = conda_and_pip(environment(path))
    pythons = [parse(spec)[1] for spec in conda if parse(spec)[0] == "python"]
    assert len(pythons) == 1 and pythons[0] is not None, f"{path.name}: expected one python with a version"
    _, minimum = parse("python" + pyproject()["project"]["requires-python"])
    assert minimum is not None
    assert version_tuple(pythons[0]) >= version_tuple(minimum)


@pytest.mark.parametrize("path", ENVIRONMENTS)
def test_environment_uses_conda_forge_only(path: Path) -> None:
    assert environment(path)["channels"] == ["conda-forge"]


def test_binder_has_jupyterlab_4_and_a_kernel() -> None:
    binder = requirements_of(BINDER_ENV)
    assert "ipykernel" in binder
    assert version_tuple(binder["jupyterlab"] or "0") >= (4,)


def test_user_environment_installs_akool_lab_from_the_checkout() -> None:
    _, pip = conda_and_pip(environment(USER_ENV))
    assert "-e ." in pip


def test_binder_postbuild_installs_akool_lab_and_is_executable() -> None:
    script = POSTBUILD.read_text(encoding="utf-8")
    assert script.startswith("#!/bin/bash")
    assert re.search(r"pip install .*(-e )?\.\s*$", script, re.MULTILINE)
    assert os.access(POSTBUILD, os.X_OK)


def test_every_conda_name_mapping_is_for_a_dependency_of_pyproject() -> None:
    project = pyproject()["project"]
    names = {parse(spec)[0] for spec in [*project["dependencies"], *project["optional-dependencies"]["lab"]]}
    assert set(CONDA_NAMES) <= names, f"stale entries in CONDA_NAMES: {sorted(set(CONDA_NAMES) - names)}"
