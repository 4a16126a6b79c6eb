"""The stage on the real provider SDKs, outside JupyterLab: the pinned npm packages bundled to ES modules.

``tests/package.json`` pins agora-rtc-sdk-ng, livekit-client and trtc-sdk-v5 (``make test`` runs ``npm ci`` in
``tests/``). :func:`bundle_sdks` builds each with esbuild into one ES module (as a CDN's ``+esm`` build would serve
it), and :func:`serve` serves those bundles, ``stage.js`` itself and a host page from loopback. The host page
(``page.js``) imports the module the widget serves (``Stage._esm``: perceived.js then stage.js, served as
``/widget.mjs``) and plays the anywidget model: it answers the stage's join request with the credentials the test put in
``window.__credentials`` and records every message the stage sends to Python in ``window.__sent``.

``spy/*.mjs`` wrap each real module to keep a handle on the clients the stage creates (``window.__clients``) and,
only when a test sets ``window.__stubNetwork``, to replace the calls that need a reachable server (join, publish,
the custom-message transport) with recorders: everything else (track creation, events, the SDK's own send limiter)
is the real SDK.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlencode

from akool_lab.protocol.limits import PROVIDERS
from akool_lab.widgets.stage import Stage, _budget_state
from tests.browser.harness import OUTPUT_DIR, REPO_ROOT
from tests.browser.standins import QuietHandler, serve_on_loopback

HERE = Path(__file__).parent
TESTS = REPO_ROOT / "tests"
STATIC = REPO_ROOT / "akool_lab" / "widgets" / "static"
#: npm package -> the file name its bundle is served as (under /sdk/).
PACKAGES = {"agora": "agora-rtc-sdk-ng", "livekit": "livekit-client", "trtc": "trtc-sdk-v5"}


class SdkSetupError(RuntimeError):
    """The pinned SDKs are not installed (or could not be bundled)."""


def installed_version(package: str) -> str:
    """The version of ``package`` installed in ``tests/node_modules``."""
    manifest = TESTS / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def bundle_sdks() -> Path:
    """Bundle each pinned SDK to ``<dir>/<package>.mjs`` (cached on the lock file) and return the directory."""
    lock = TESTS / "package-lock.json"
    esbuild = TESTS / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise SdkSetupError(
            "the provider SDKs are not installed: run `make test` (or `cd tests && npm ci`), which installs "
            "tests/package.json's pinned versions"
        )
    key = hashlib.sha256(lock.read_bytes() + b"esm-browser-1").hexdigest()[:16]
    out = OUTPUT_DIR.parent / "sdk-bundles" / key
    if all((out / f"{package}.mjs").exists() for package in PACKAGES.values()):
        return out
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for package in PACKAGES.values():
        result = subprocess.run(
            [str(esbuild), package, "--bundle", "--format=esm", "--platform=browser", "--log-level=error",
             f"--outfile={staging / f'{package}.mjs'}"],
            cwd=TESTS, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise SdkSetupError(f"esbuild could not bundle {package}:\n{result.stderr}")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


class _Handler(QuietHandler):
    """Serves /sdk/ (bundles), /spy/ and the host page (this folder), /static/ (the stage's own files),
    /widget.mjs (the widget's module)."""

    roots: ClassVar[dict[str, Path]] = {}

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, root in self.roots.items():
            if clean == prefix and root.is_file():
                return str(root)
            if clean.startswith(prefix):
                target = (root / clean[len(prefix) :]).resolve()
                if root.resolve() in target.parents:
                    return str(target)
        return str(HERE / "missing")


@contextlib.contextmanager
def serve(bundles: Path) -> Iterator[str]:
    """Serve the host page, the widget's module, stage.js and the SDK bundles on a free loopback port; yields
    ``http://127.0.0.1:PORT``."""
    with tempfile.TemporaryDirectory(prefix="akool-widget-") as widget:
        # What anywidget serves to JupyterLab, byte for byte (perceived.js's PerceivedTimings is then defined).
        (Path(widget) / "widget.mjs").write_text(str(Stage._esm), encoding="utf-8")
        roots = {"/sdk/": bundles, "/static/": STATIC, "/standins/": HERE.parent / "standins",
                 "/widget.mjs": Path(widget) / "widget.mjs", "/": HERE}  # fmt: skip
        with serve_on_loopback(type("Handler", (_Handler,), {"roots": roots}), "real-sdk-server") as base:
            yield base


def page_url(base: str, provider: str, *, sdk: str | None = None, join_timeout: float = 20.0, **extra: str) -> str:
    """The host page showing a stage for ``provider`` whose SDK is imported from ``sdk`` (default: the spy)."""
    query: Mapping[str, str] = {
        "provider": provider,
        "sdk": sdk or f"{base}/spy/{provider}.mjs",
        "join_timeout": str(join_timeout),
        "budget": json.dumps(_budget_state(PROVIDERS[provider])),
        **extra,
    }
    return f"{base}/page.html?{urlencode(query)}"
