"""akool_lab: explore and measure AKool streaming avatars in Jupyter.

Public names are exported lazily (PEP 562), so ``import akool_lab`` stays fast: matplotlib, ipywidgets, starlette
and uvicorn are imported only when a name that needs them is first used.

>>> import akool_lab
>>> with akool_lab.start() as live:          # on the embedded simulator when no API key is configured
...     reply = live.say("Hello!")
...     print(reply.text, reply.timings.ttfr_ms)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # foundation
    "AkoolLabError": "akool_lab.errors",
    "ValidationError": "akool_lab.errors",
    "ProtocolError": "akool_lab.errors",
    "AkoolError": "akool_lab.errors",
    "StreamError": "akool_lab.errors",
    "Event": "akool_lab.events",
    "Recorder": "akool_lab.events",
    # REST
    "AkoolClient": "akool_lab.api",
    "AsyncAkoolClient": "akool_lab.api",
    # live sessions
    "AvatarStream": "akool_lab.live",
    "LiveSession": "akool_lab.live",
    "Reply": "akool_lab.live",
    "start": "akool_lab.target",
    # metrics
    "run_experiment": "akool_lab.metrics",
    # widgets
    "lab": "akool_lab._lab",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from akool_lab.errors import AkoolError, AkoolLabError, ProtocolError, StreamError, ValidationError
    from akool_lab.events import Event, Recorder


#: subpackages reachable as attributes (``akool_lab.metrics.run_experiment``) without an explicit import
_SUBMODULES = frozenset(
    {"api", "protocol", "transport", "live", "metrics", "widgets", "sim", "target", "errors", "events", "types"}
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"akool_lab.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'akool_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next access does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
