"""``ParamsPanel``: change the avatar's voice, language, mode, speed and background while it runs.

>>> params = ParamsPanel(live, client)            # doctest: +SKIP
>>> params                                        # change a field, click Apply: only what changed is sent

Every edit is validated at once with :func:`akool_lab.protocol.validate_set_params`, the same check the stream runs
before sending, so an invalid field is flagged in the panel (and Apply refuses) before anything goes out.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from akool_lab.errors import AkoolError, ValidationError
from akool_lab.protocol import TURN_DETECTION_TYPES, validate_set_params
from akool_lab.widgets._common import ErrorLine, background, in_thread

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient, Language, Voice
    from akool_lab.live import Ack, LiveSession

__all__ = ["ParamsPanel"]

_STYLE = {"description_width": "110px"}
# ipywidgets 8 shows a Dropdown whose value is None as "nothing selected" (blank): "" stands for "unchanged".
UNCHANGED = ""
_UNCHANGED = ("(unchanged)", UNCHANGED)
#: The speed a session starts with (AKool's default).
DEFAULT_SPEED = 1.0


class ParamsPanel(widgets.VBox):  # type: ignore[misc]
    """Voice, language, mode, speed, background and advanced voice params of a live session; Apply sends changes.

    Args:
        live: the session to change; ``None`` to attach one later with :meth:`attach`.
        client: the REST client that lists voices (streaming-capable only) and languages; ``None`` leaves the
            lists empty (values can still be typed in code).

    Attributes:
        last_ack: the :class:`~akool_lab.live.Ack` of the last Apply, once it arrived.
        errors: the panel's error line (invalid fields, failures, and the ack).
    """

    def __init__(self, live: LiveSession | None = None, client: AkoolClient | None = None) -> None:
        self.live: LiveSession | None = None
        self.last_ack: Ack | None = None
        self.errors = ErrorLine()
        self._lock = threading.Lock()

        self.voice = widgets.Dropdown(options=[_UNCHANGED], value=UNCHANGED, description="voice", style=_STYLE)
        self.language = widgets.Dropdown(options=[_UNCHANGED], value=UNCHANGED, description="language", style=_STYLE)
        self.mode = widgets.Dropdown(
            options=[_UNCHANGED, ("retelling (1)", 1), ("dialogue (2)", 2)],
            value=UNCHANGED,
            description="mode",
            style=_STYLE,
        )
        self.speed = widgets.FloatSlider(
            value=DEFAULT_SPEED, min=0.8, max=1.2, step=0.05, description="speed", readout_format=".2f", style=_STYLE
        )
        self.background_url = widgets.Text(
            value="", placeholder="https://… image or video", description="background URL", style=_STYLE
        )
        self.stt_language = widgets.Text(value="", placeholder="e.g. en", description="stt language", style=_STYLE)
        self.turn_detection = widgets.Dropdown(
            options=[_UNCHANGED, *((name, name) for name in TURN_DETECTION_TYPES)],
            value=UNCHANGED,
            description="turn detection",
            style=_STYLE,
        )
        self.silence_ms = widgets.IntText(value=0, description="silence (ms)", style=_STYLE)
        advanced = widgets.VBox([self.stt_language, self.turn_detection, self.silence_ms])
        self.advanced = widgets.Accordion(children=[advanced], selected_index=None)
        self.advanced.set_title(0, "advanced voice params")
        self.apply_button = widgets.Button(
            description="Apply", button_style="primary", icon="check", disabled=True
        ).add_class("akool-apply")
        self.apply_button.on_click(lambda _b: self.apply())
        for name, control in self._fields().items():
            control.add_class(f"akool-param-{name}")
            control.observe(lambda _change: self.check(), names="value")

        # What the session is known to have: Apply sends the difference and, once acked, moves this forward.
        self._applied: dict[str, Any] = self._values()

        super().__init__(
            [
                widgets.HTML('<div class="akool-panel-title">Parameters</div>'),
                self.voice,
                self.language,
                self.mode,
                self.speed,
                self.background_url,
                self.advanced,
                self.apply_button,
                self.errors.widget,
            ],
            layout=widgets.Layout(padding="4px", min_width="340px", flex="0 1 370px"),
        )
        self.add_class("akool-params-panel")
        self.lists_loaded: concurrent.futures.Future[Any] | None = None
        if client is not None:
            self.lists_loaded = background(
                in_thread(_load_lists, client),
                errors=self.errors,
                what="loading voices and languages",
                on_done=self._show,
            )
        if live is not None:
            self.attach(live)

    # -- connecting ----------------------------------------------------------------------------------------------

    def attach(self, live: LiveSession) -> None:
        """Change ``live`` from now on; the fields start again from "unchanged"."""
        self.live = live
        self._applied = self._values()
        live.on("closed", lambda _reason: self._set_enabled(False))
        self._set_enabled(live.is_open)

    def detach(self) -> None:
        """Stop changing the attached session."""
        self.live = None
        self._set_enabled(False)

    # -- what Apply sends ----------------------------------------------------------------------------------------

    def changes(self) -> dict[str, Any]:
        """The ``set_params`` keyword arguments for what differs from the last applied values (not validated)."""
        now, before = self._values(), self._applied
        out: dict[str, Any] = {}
        for key, arg in (("voice", "vid"), ("language", "lang"), ("mode", "mode")):
            if now[key] != UNCHANGED and now[key] != before[key]:
                out[arg] = now[key]
        if now["background_url"] and now["background_url"] != before["background_url"]:
            out["bgurl"] = now["background_url"]
        vparams: dict[str, Any] = {}
        if now["speed"] != before["speed"]:
            vparams["speed"] = now["speed"]
        if now["stt_language"] and now["stt_language"] != before["stt_language"]:
            vparams["stt_language"] = now["stt_language"]
        turn: dict[str, Any] = {}
        if now["turn_detection"] != UNCHANGED and now["turn_detection"] != before["turn_detection"]:
            turn["type"] = now["turn_detection"]
        if now["silence_ms"] != before["silence_ms"]:
            turn["silence_duration_ms"] = now["silence_ms"]
        if turn:
            vparams["turn_detection"] = turn
        if vparams:
            out["vparams"] = vparams
        return out

    def check(self) -> ValidationError | None:
        """Validate the pending changes; flag the offending field and return the error (``None`` when all is valid).

        Runs on every edit, so a bad value is shown before Apply is even clicked.
        """
        changes = self.changes()
        for control in self._fields().values():
            control.remove_class("akool-invalid")
        if not changes:
            self.errors.clear()
            return None
        try:
            validate_set_params(**changes)
        except ValidationError as exc:
            control = self._field_for(exc.field)
            if control is not None:
                control.add_class("akool-invalid")
            self.errors.problem(f"not sent: {exc}")
            return exc
        self.errors.clear()
        return None

    def apply(self) -> concurrent.futures.Future[Any] | None:
        """Send what changed as one ``set-params`` (what Apply does) and show the ack; returns its future.

        Nothing is sent when nothing changed, when a field is invalid, or when no session is connected.
        """
        live = self.live
        if live is None or not live.is_open:
            self.errors.problem("not connected: create a session first")
            return None
        changes = self.changes()
        if not changes:
            self.errors.problem("nothing changed: nothing to send")
            return None
        if self.check() is not None:
            return None
        wanted = self._values()
        self.apply_button.disabled = True

        def acked(ack: Ack) -> None:
            self.last_ack = ack
            with self._lock:
                self._applied = wanted
            self.errors.note(f"ack {ack.code} {ack.msg} in {ack.ack_ms:.1f} ms · sent {_describe(changes)}")

        future = background(
            live.avatar_stream.set_params(**changes), errors=self.errors, what="set-params", on_done=acked
        )
        future.add_done_callback(lambda _f: self._set_enabled(self.live is not None and self.live.is_open))
        return future

    def close(self) -> None:
        """Close the panel's widgets."""
        self.detach()
        for control in (*self._fields().values(), self.advanced, self.apply_button, self.errors.widget):
            control.close()
        super().close()

    # -- internals -------------------------------------------------------------------------------------------------

    def _fields(self) -> dict[str, widgets.Widget]:
        return {
            "voice": self.voice,
            "language": self.language,
            "mode": self.mode,
            "speed": self.speed,
            "background_url": self.background_url,
            "stt_language": self.stt_language,
            "turn_detection": self.turn_detection,
            "silence_ms": self.silence_ms,
        }

    def _values(self) -> dict[str, Any]:
        values = {name: control.value for name, control in self._fields().items()}
        values["background_url"] = values["background_url"].strip()
        values["stt_language"] = values["stt_language"].strip()
        return values

    def _field_for(self, field: str) -> widgets.Widget | None:
        names = {
            "vid": "voice",
            "lang": "language",
            "mode": "mode",
            "bgurl": "background_url",
            "vparams.speed": "speed",
            "vparams.stt_language": "stt_language",
            "vparams.turn_detection.type": "turn_detection",
            "vparams.turn_detection.silence_duration_ms": "silence_ms",
        }
        name = names.get(field)
        return self._fields()[name] if name else None

    def _set_enabled(self, enabled: bool) -> None:
        self.apply_button.disabled = not enabled

    def _show(self, lists: tuple[list[Voice], list[Language]]) -> None:
        voices, languages = lists
        self.voice.options = [_UNCHANGED, *((f"{v.name or v.voice_id} ({v.voice_id})", v.voice_id) for v in voices)]
        self.language.options = [
            _UNCHANGED,
            *((f"{lang.name or lang.code} ({lang.code})", lang.code) for lang in languages),
        ]


def _load_lists(client: AkoolClient) -> tuple[list[Voice], list[Language]]:
    """Streaming-capable voices (AKool's and the account's own) and every language."""
    voices = [v for v in client.voices.list(type=2, support_stream=True, size=100) if v.support_stream is not False]
    # The account's own cloned voices come after AKool's; an account without any may answer with an error code.
    with contextlib.suppress(AkoolError):
        voices.extend(
            v for v in client.voices.list(type=1, support_stream=True, size=100) if v.support_stream is not False
        )
    return voices, list(client.languages.list())


def _describe(changes: dict[str, Any]) -> str:
    parts: list[str] = []
    for key, value in changes.items():
        if isinstance(value, dict):
            parts.extend(f"{key}.{k}={v!r}" for k, v in value.items())
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts)
