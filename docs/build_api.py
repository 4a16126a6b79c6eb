"""Build the API reference (HTML, with pdoc) from the docstrings of akool_lab's public packages.

    python docs/build_api.py [OUTPUT_DIR]          # default: site/ (ignored by git); `make docs` runs this

Every warning is an error: a public name that does not resolve, a docstring pdoc cannot read or a broken
cross-reference fails the build instead of leaving a hole in the reference.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

#: The documented packages and modules: akool_lab's public surface (what ``akool_lab.<name>`` gives).
MODULES = (
    "akool_lab",
    "akool_lab.api",
    "akool_lab.live",
    "akool_lab.protocol",
    "akool_lab.transport",
    "akool_lab.metrics",
    "akool_lab.widgets",
    "akool_lab.sim",
    "akool_lab.target",
    "akool_lab.errors",
    "akool_lab.events",
    "akool_lab.redaction",
    "akool_lab.types",
)


def resolve_lazy_exports(module_name: str) -> None:
    """Bind every name of the module's ``__all__`` in its namespace.

    Several packages export names lazily (PEP 562 ``__getattr__``) so that importing them stays cheap; pdoc only
    sees what is bound, so the build resolves them first, as a user's first access would.
    """
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", ()):
        if name not in vars(module):
            setattr(module, name, getattr(module, name))


def build(output: Path) -> list[Path]:
    """Write the reference to ``output``; returns the HTML files written."""
    import pdoc
    import pdoc.render

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in MODULES:
            resolve_lazy_exports(name)
        pdoc.render.configure(docformat="google", show_source=False)
        pdoc.pdoc(*MODULES, output_directory=output)
    return sorted(output.rglob("*.html"))


def main() -> None:
    output = Path(sys.argv[1] if len(sys.argv) > 1 else "site")
    files = build(output)
    print(f"API reference: {len(files)} pages in {output}/ (open {output / 'index.html'})")


if __name__ == "__main__":
    main()
