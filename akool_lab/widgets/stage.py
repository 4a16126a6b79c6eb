"""The avatar on stage: an anywidget that joins the session's Agora, LiveKit or TRTC room in the notebook's browser.

Real AKool session (the browser joins the room and is the data channel)::

    session = client.sessions.create(avatar_id)
    stage = Stage(session)                 # display it, then click Join on it (browsers need a click for audio)
    stage
    live = stage.connect(client, mode=1)   # = client.connect(session, transport=stage.transport) + stage.attach(live)
    job = stage.say("Hello!")              # starts at once; the reply comes back between cells
    job.result()                           # in a later cell

Embedded simulator (nothing to join: Python relays the avatar's events and the stage draws a simulated face)::

    live = akool_lab.start()               # or client.connect(session)
    Stage(live)                            # its mouth moves while the avatar speaks; live.say(...) works as usual

Why ``stage.say`` and not ``live.say`` on a real session: the browser's replies reach Python as widget messages,
which Jupyter reads only while the kernel is idle, so a blocking call in the cell that sends would wait for messages
queued behind itself. ``stage.say``/``ask``/``set_params``/``interrupt`` return a ``concurrent.futures.Future``.

The provider SDKs are imported in the browser from ``sdk_urls`` (defaults: :data:`DEFAULT_SDK_URLS`, ESM builds
on jsdelivr; the Agora SDK is not bundled, for licence reasons). They need internet access from the browser: offline
or behind a strict proxy, serve the SDK yourself and pass its URL, e.g.
``Stage(session, sdk_urls={"agora": "https://intranet.example/agora-rtc-sdk-ng.esm.js"})``.

Secrets: the room credentials reach the browser only in a one-shot custom message, after the user clicked Join;
they are never a synced trait, so they are never saved with the notebook's widget state. The SDKs' own logs are
turned off and their log upload disabled (Agora ``disableLogUpload``/``setLogLevel``, TRTC ``setLogLevel(NONE,
false)``, LiveKit ``setLogLevel("silent")``): the stage reports failures itself, with secrets scrubbed.

What the browser sees besides the data channel reaches Python as raw events on the page's clock
(``browser:<page id>``), in the attached stream's recorder (or :attr:`Stage.recorder` before one is attached):
``stage.joined``, ``stage.reconnecting``/``stage.reconnected``, ``stage.token-will-expire``/``stage.token-expiring``,
``stage.autoplay-blocked``, ``stage.network`` (the provider's statistics every 2 s: ``rtt_ms``, loss, bitrate,
``fps``, jitter buffer delay where the SDK reports it), ``stage.mic`` and the user's spoken turns
(``user_turn.transcript``, ``user_turn.first_reply``, ``user_turn.audio_start``; see :meth:`Stage.user_turns`).

Perceived timings (``perceived.js``, served in one module with ``stage.js``): from the avatar's audio and video as
the page receives and plays them, ``perceived.<type>`` events on the same clock: ``first_frame``, ``freeze``,
``stall``, ``onset``/``offset`` (the first audible sample of speech, and silence again), ``audio_stats`` (the
browser's receive statistics, where the SDK exposes the track's receiver: LiveKit's ``RemoteTrack.receiver``,
Agora's ``getRTCRtpTransceiver()``, the simulator's peer; TRTC gives none), and per reply ``heard`` (``heard_ms``:
the message's last chunk sent to its reply's first audible sample, at the receiver's playout point in Chromium;
``media_delay_ms``: the reply's ``audio_start`` arriving to it; ``jitter_buffer_ms``, ``playout_delay_ms``; see
``docs/perceived-latency.md``) or ``unheard``. :meth:`Stage.heard` and
``akool_lab.metrics.message_timings`` (``MessageRecord.heard_ms``) read them; the latency panel shows ``heard_ms``
next to ``ttfa_ms``.

Each SDK hands the avatar's media over its own way: Agora's subscribed ``user.audioTrack``/``videoTrack``
(``getMediaStreamTrack()``), LiveKit's ``TrackSubscribed`` remote tracks (``mediaStreamTrack``, attached to the
stage's ``<video>``), and TRTC, which plays both itself: its remote audio is listened to once TRTC reports it playing
(``AUDIO_PLAY_STATE_CHANGED``, ``getAudioTrack(userId)``) and its video is watched in the element TRTC draws it in.

On the embedded simulator with the media extra (``pip install 'akool-lab[media]'``, part of ``lab``), the stage
also joins the simulated avatar's WebRTC peer (receive-only; the data channel stays on the kernel's WebSocket) and
shows its real video and plays its speech instead of the drawn face; the kernel relays each message's last chunk
going out, the avatar's audio events, the user's transcript chunks and the first chunk of each reply (without their
text) to the page, which stamps them on arrival: there ``heard_ms`` and ``media_delay_ms`` leave out the relay's own
delay (kernel to page, tens of ms on a busy machine), so they are a lower bound of what a person perceives (the
page times a round trip to the kernel after each relayed send, ``perceived.relay``: a bound of that delay while
the kernel is idle), while
the user's turns (:meth:`Stage.user_turns`: the microphone's speech, transcribed by the simulator, to its reply;
the last one is also shown on the stage, the ``user_turn`` trait) are differences of two relayed arrivals, in which
that delay mostly cancels (what is left is the difference of the two relays' delays: tens of ms on a busy kernel).
Without the extra the stage says so and draws the face.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import anywidget
import traitlets

from akool_lab.api import AgoraCredentials, Credentials, LiveKitCredentials, Session, TrtcCredentials
from akool_lab.errors import ConnectionError, ValidationError
from akool_lab.events import Event, EventKind, Recorder
from akool_lab.live import AvatarStream, LiveSession, io_loop
from akool_lab.protocol.limits import PROVIDERS, ProviderBudget
from akool_lab.transport import FAILURE_TEXT, BrowserTransport

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient
    from akool_lab.live import Ack, Reply, TranscriptEntry

__all__ = ["BROWSER_PROVIDERS", "DEFAULT_SDK_URLS", "Stage"]

_log = logging.getLogger("akool_lab.widgets")
_STATIC = Path(__file__).parent / "static"
T = TypeVar("T")

#: Where the browser imports each provider's SDK from (ES module builds). Not reachable offline: override with
#: ``Stage(..., sdk_urls={...})``.
DEFAULT_SDK_URLS: dict[str, str] = {
    "agora": "https://cdn.jsdelivr.net/npm/agora-rtc-sdk-ng@4/+esm",
    "livekit": "https://cdn.jsdelivr.net/npm/livekit-client@2/+esm",
    "trtc": "https://cdn.jsdelivr.net/npm/trtc-sdk-v5@5/+esm",
}
#: The providers whose rooms the browser can join.
BROWSER_PROVIDERS = tuple(DEFAULT_SDK_URLS)
_URL_SCHEMES = ("https://", "http://", "data:", "blob:")
_MAX_CAPTION = 300
_NS_PER_MS = 1_000_000
#: How many reply ids the simulator's relay remembers (to relay only the first chunk of each).
_RELAYED_REPLIES_KEPT = 256
#: How long the browser waits for a join before it gives up with a ``join-timeout`` failure (seconds).
DEFAULT_JOIN_TIMEOUT = 20.0


def _browser_credentials(credentials: Credentials) -> dict[str, Any]:
    """What the browser's join call needs, by provider (secrets included: only ever sent as a custom message)."""
    if isinstance(credentials, AgoraCredentials):
        return {"app_id": credentials.app_id, "channel": credentials.channel, "token": credentials.token,
                "uid": credentials.uid}  # fmt: skip
    if isinstance(credentials, LiveKitCredentials):
        return {
            "url": credentials.url,
            "token": credentials.token,
            "room_name": credentials.room_name,
            "client_identity": credentials.client_identity,
            "server_identity": credentials.server_identity,
        }
    if isinstance(credentials, TrtcCredentials):
        return {"sdk_app_id": credentials.app_id, "room_id": credentials.room_id, "user_id": credentials.user_id,
                "user_sig": credentials.user_sig}  # fmt: skip
    raise ValidationError("credentials", f"a {credentials.provider!r} room cannot be joined from the browser")


def _sim_media(stream: AvatarStream) -> dict[str, str] | None:
    """Where the browser offers WebRTC to the simulator for this stream's session, and the token it sends."""
    url = getattr(stream.transport, "_url", "")
    if not stream.session_id or not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    token = dict(parse_qsl(parts.query)).get("token", "")
    scheme = "https" if parts.scheme == "wss" else "http"
    base_url = f"{scheme}://{parts.netloc}"
    return {"offer_url": f"{base_url}/_sim/sessions/{stream.session_id}/webrtc/offer", "token": token}


def _tail(text: str) -> str:
    """The end of ``text`` that fits the caption, starting at a word (subtitles show what is being said now)."""
    if len(text) <= _MAX_CAPTION:
        return text
    tail = text[-_MAX_CAPTION:]
    return "…" + tail[tail.find(" ") + 1 :] if " " in tail else tail


def _budget_state(budget: ProviderBudget) -> dict[str, Any]:
    return {
        "name": budget.name,
        "max_message_bytes": budget.max_message_bytes,
        "bytes_per_second": budget.bytes_per_second,
        "messages_per_second": budget.messages_per_second,
    }


class Stage(anywidget.AnyWidget):
    """The avatar's video and audio, its connection and speaking state, in the notebook.

    ``Stage(session)`` for a real session (click Join, then use :attr:`transport` or :meth:`connect`);
    ``Stage(live)`` for a live session whose data channel runs in Python (the simulator): the stage then draws a
    simulated avatar driven by the stream's events. ``sdk_urls`` overrides where the browser imports the
    provider SDKs from (see :data:`DEFAULT_SDK_URLS`); ``join_timeout`` (seconds, default 20) is how long the
    browser waits for a join before it fails with ``join-timeout``.

    Failures (SDK not loadable, join refused, token expired, avatar left) are shown on the stage, set
    :attr:`error`/:attr:`error_kind`, are appended to :attr:`errors` as ``akool_lab.errors.ConnectionError`` and
    close the stream that uses the stage's transport, whose pending calls then raise ``StreamClosedError`` with the
    reason.
    """

    # anywidget serves one module: perceived.js (the perceived-latency measurements) followed by stage.js, which
    # uses its PerceivedTimings (their top-level names do not collide; its named exports are harmless).
    _esm = (
        (_STATIC / "perceived.js").read_text(encoding="utf-8")
        + "\n"
        + (_STATIC / "stage.js").read_text(encoding="utf-8")
    )
    _css = _STATIC / "stage.css"

    # Only non-secret state is synced (it is saved with the notebook's widget state).
    _stage_id = traitlets.Unicode("").tag(sync=True)
    provider = traitlets.Unicode("", help="agora, livekit, trtc, simulator, or empty").tag(sync=True)
    simulated = traitlets.Bool(False, help="draw the simulated avatar (no room joined here)").tag(sync=True)
    note = traitlets.Unicode("", help="what the simulated view stands for").tag(sync=True)
    connection_state = traitlets.Unicode(
        "idle", help="idle, loading-sdk, joining, connected, reconnecting, left or failed"
    ).tag(sync=True)
    join_timeout = traitlets.Float(DEFAULT_JOIN_TIMEOUT, help="seconds the browser waits for a join").tag(sync=True)
    notice = traitlets.Unicode("", help="a warning that is not a failure (token expiring, reconnecting)").tag(sync=True)
    audio_blocked = traitlets.Bool(False, help="the browser blocked the avatar's audio: click to start it").tag(
        sync=True
    )
    mic_state = traitlets.Unicode("off", help="the user's microphone: off, starting, on, muted or failed").tag(
        sync=True
    )
    mic_devices: traitlets.List[dict[str, str]] = traitlets.List(
        help="the microphones the browser offers: [{id, label}]"
    ).tag(sync=True)
    mic_device = traitlets.Unicode("", help="the microphone in use (or to use)").tag(sync=True)
    network = traitlets.Dict(help="the provider's latest network statistics (rtt_ms, loss, kbit/s, fps...)").tag(
        sync=True
    )
    user_turn = traitlets.Dict(
        help="the user's last spoken turn, timed in the browser from its transcript: user_mid, first_reply_ms, "
        "audio_start_ms, heard_ms (shown on the stage; see user_turns())"
    ).tag(sync=True)
    speaking = traitlets.Bool(False, help="between the avatar's audio_start and audio_end").tag(sync=True)
    caption = traitlets.Unicode("", help="the avatar's current reply text (its tail)").tag(sync=True)
    error = traitlets.Unicode("", help="the last failure, in words (never a secret)").tag(sync=True)
    error_kind = traitlets.Unicode("", help="sdk-load, join-refused, token-expired, avatar-left, ...").tag(sync=True)
    sdk_url_tried = traitlets.Unicode("", help="the SDK URL the browser imported last").tag(sync=True)
    sdk_urls = traitlets.Dict(help="provider -> ES module URL of its SDK").tag(sync=True)
    background_url = traitlets.Unicode("", help="the avatar's background (drawn behind the simulated face)").tag(
        sync=True
    )
    budget = traitlets.Dict(help="the provider's data-channel budget (the browser paces with it)").tag(sync=True)
    page_id = traitlets.Unicode("", help="the browser page that joined (its clock is browser:<page_id>)").tag(sync=True)
    session_id = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        live_or_session: LiveSession | AvatarStream | Session | None = None,
        *,
        sdk_urls: Mapping[str, str] | None = None,
        background_url: str = "",
        send_timeout: float = 120.0,
        join_timeout: float = DEFAULT_JOIN_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        if isinstance(join_timeout, bool) or not isinstance(join_timeout, int | float) or not 0 < join_timeout <= 600:
            raise ValidationError("join_timeout", f"got {join_timeout!r}", allowed="seconds, above 0 and at most 600")
        # The id must be in the initial state: the browser keys its per-widget controller on it at creation.
        super().__init__(_stage_id=uuid.uuid4().hex, join_timeout=float(join_timeout), **kwargs)
        urls = dict(DEFAULT_SDK_URLS)
        for name, url in (sdk_urls or {}).items():
            if name not in BROWSER_PROVIDERS:
                raise ValidationError("sdk_urls", f"unknown provider {name!r}", allowed=", ".join(BROWSER_PROVIDERS))
            if not isinstance(url, str) or not url.startswith(_URL_SCHEMES):
                raise ValidationError("sdk_urls", f"{name}: {url!r} is not a URL", allowed="https://... (an ES module)")
            urls[name] = url
        self.sdk_urls = urls
        self.background_url = background_url
        self._send_timeout = send_timeout
        self._credentials: Credentials | None = None
        self._session: Session | None = None
        self._transport: BrowserTransport | None = None
        self._transport_spent = False
        self._stream: AvatarStream | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._error_listeners: list[Callable[[Exception], None]] = []
        #: Every failure the stage reported, oldest first.
        self.errors: list[Exception] = []
        self._own_recorder = Recorder()
        self._sim_media: dict[str, str] | None = None  # the simulator's offer URL and token (never a trait)
        self.on_msg(self._on_custom_message)
        if isinstance(live_or_session, Session):
            self._show_session(live_or_session)
        elif isinstance(live_or_session, LiveSession | AvatarStream):
            self.attach(live_or_session)
        elif live_or_session is not None:
            raise ValidationError(
                "live_or_session", f"got {type(live_or_session).__name__}", allowed="a Session, a LiveSession or None"
            )

    # ------------------------------------------------------------------ what is on stage

    def show(self, session: Session) -> None:
        """Show ``session`` on this stage (its provider, or the simulated avatar); the Join button joins it."""
        self._show_session(session)

    def _show_session(self, session: Session) -> None:
        credentials = session.credentials
        if credentials is None:
            raise ValidationError("session.credentials", "the session has no credentials to join its room")
        self._session = session
        self.session_id = session.id
        if credentials.ws_url:
            # The simulator: its provider-shaped credentials are fakes no SDK can join; its data channel is the
            # kernel's WebSocket (stage.connect(client) opens it), and the stage draws the simulated avatar.
            self._set(provider="simulator", simulated=True, note="simulated avatar (embedded simulator)")
            return
        if credentials.provider not in BROWSER_PROVIDERS:
            raise ValidationError(
                "session.stream_type", f"{credentials.provider!r} cannot be shown", allowed=", ".join(BROWSER_PROVIDERS)
            )
        self._credentials = credentials
        budget = PROVIDERS[credentials.provider]
        self._transport = BrowserTransport(
            self._post, budget=budget, loop=io_loop().loop, send_timeout=self._send_timeout
        )
        self._set(provider=credentials.provider, simulated=False, budget=_budget_state(budget), connection_state="idle")

    @property
    def transport(self) -> BrowserTransport:
        """The data channel through this stage's browser (``client.connect(session, transport=stage.transport)``).

        Raises ``ValidationError`` when the stage shows no room of its own (a simulator session, or a live session).
        """
        if self._transport is None:
            raise ValidationError(
                "stage.transport",
                "this stage joins no room in the browser"
                + (" (the session runs on the embedded simulator)" if self.simulated else ""),
                allowed="Stage(session) for an agora, livekit or trtc session; on the simulator use "
                "stage.connect(client) or client.connect(session)",
            )
        return self._transport

    @property
    def live(self) -> AvatarStream | None:
        """The attached stream (see :meth:`attach`), if any."""
        return self._stream

    @property
    def recorder(self) -> Recorder:
        """Where the browser's events go: the attached stream's recorder, or the stage's own before one is attached."""
        return self._stream.recorder if self._stream is not None else self._own_recorder

    def user_turns(self) -> list[dict[str, Any]]:
        """The user's spoken turns, timed on the browser's clock: one dict per turn, in order.

        Each has ``user_mid``, ``clock``, ``first_reply_ms`` (the user's last transcript chunk arriving to the
        avatar's first reply chunk), ``audio_start_ms`` (to the avatar's ``audio_start``) and ``heard_ms`` (to the
        first audible sample of its reply, from the perceived timings: the reply heard, not announced); a step that
        did not happen (or, for ``heard_ms``, a page with no media) is ``None``. ``akool_lab.metrics.percentile``
        summarises a list of them.
        """
        events = self._browser_events()
        turns: dict[tuple[str, str], dict[str, Any]] = {}
        for event in events:
            if not event.kind.startswith("user_turn."):
                continue
            key = (event.clock, str(event.data.get("user_mid")))
            turn = turns.setdefault(
                key,
                {"user_mid": key[1], "clock": event.clock, "first_reply_ms": None, "audio_start_ms": None,
                 "heard_ms": None},
            )  # fmt: skip
            if event.kind == "user_turn.first_reply":
                turn["first_reply_ms"] = event.data.get("ms")
            elif event.kind == "user_turn.audio_start":
                turn["audio_start_ms"] = event.data.get("ms")
        for event in events:
            # perceived.js times a reply to the user's voice from the same transcript arrival, on the same page.
            heard = turns.get((event.clock, str(event.mid)))
            if event.kind == "perceived.heard" and heard is not None and event.data.get("user_heard_ms") is not None:
                heard["heard_ms"] = event.data["user_heard_ms"]
        return list(turns.values())

    def heard(self) -> dict[str, dict[str, Any]]:
        """What the browser heard of each reply, per message ``mid`` (see ``akool_lab.metrics.perceived_timings``).

        Each has ``heard_ms``, ``media_delay_ms``, ``jitter_buffer_ms``, ``playout_delay_ms``, ``reply_mid`` and
        ``clock`` (``browser:<page id>``): every value is a difference on the browser's own clock.
        """
        from akool_lab.metrics import perceived_timings

        return perceived_timings(self._browser_events())

    def user_turn_summary(self) -> dict[str, dict[str, float]]:
        """Percentiles of :meth:`user_turns`, per step: ``{"first_reply_ms": {"n", "min", "p50", "p90", "max"}, ...}``.

        A step no turn reached is left out. Turns from different pages (clocks) are pooled: each value is a
        difference on one clock.
        """
        from akool_lab.metrics import percentile

        summary: dict[str, dict[str, float]] = {}
        turns = self.user_turns()
        for step in ("first_reply_ms", "audio_start_ms", "heard_ms"):
            values = sorted(float(t[step]) for t in turns if isinstance(t[step], int | float))
            if values:
                summary[step] = {"n": len(values), "min": values[0], "p50": percentile(values, 50),
                                 "p90": percentile(values, 90), "max": values[-1]}  # fmt: skip
        return summary

    def _browser_events(self) -> list[Event]:
        events = list(self._own_recorder)
        if self._stream is not None:
            events += [e for e in self._stream.recorder if e.clock.startswith("browser:")]
        return events

    def connect(self, client: AkoolClient, *, mode: int | None = None, **kwargs: Any) -> LiveSession:
        """Open the session's live stream with ``client`` and attach it; returns the :class:`LiveSession`.

        Over the stage's browser transport for a real room (returns at once; messages go out once Join was
        clicked), over the simulator's WebSocket otherwise. ``kwargs`` go to ``client.connect``.
        """
        if self._session is None:
            raise ValidationError("stage", "shows no session", allowed="Stage(session) before stage.connect(client)")
        transport = self._transport
        live = client.connect(self._session, transport=transport, mode=mode, **kwargs)
        self.attach(live)
        return live

    def attach(self, live: LiveSession | AvatarStream) -> Stage:
        """Follow ``live`` on stage; returns the stage.

        When ``live`` runs over this stage's own transport, the browser already sees every message; otherwise (the
        simulator's WebSocket, LiveKit from Python) its events are relayed here from the I/O thread, so the
        simulated avatar moves even while a cell blocks in ``live.say(...)``.
        """
        stream = live.avatar_stream if isinstance(live, LiveSession) else live
        if not isinstance(stream, AvatarStream):
            raise ValidationError("live", f"got {type(live).__name__}", allowed="a LiveSession or an AvatarStream")
        self._detach()
        self._stream = stream
        if stream.session_id:
            self.session_id = stream.session_id
        if stream.transport is self._transport:
            return self
        is_simulator = type(stream.transport).__name__ == "WebSocketTransport"
        self._set(
            provider="simulator" if is_simulator else stream.transport.budget.name,
            simulated=True,
            note="simulated avatar (embedded simulator)"
            if is_simulator
            else "data channel in Python: no video here (simulated avatar)",
            connection_state="connected" if stream.is_open else "left",
            speaking=False,
        )
        if is_simulator:
            self._sim_media = _sim_media(stream)
            self._send_sim_media(None)
        self._unsubscribe = [
            stream.recorder.subscribe(self._relay_for_perceived(stream)) if is_simulator else (lambda: None),
            stream.on("audio_start", lambda _mid: self._set(speaking=True)),
            stream.on("audio_end", lambda _mid: self._set(speaking=False)),
            stream.on("chat", self._on_chat),
            stream.on("closed", lambda _reason: self._set(connection_state="left", speaking=False)),
            stream.on("error", lambda exc: self._set(error=str(exc), error_kind="stream")),
        ]
        return self

    def _detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._sim_media is not None:
            self._sim_media = None
            self.send({"type": "sim-media-stop"})

    def _send_sim_media(self, page_id: Any) -> None:
        # The one place the simulator's token leaves Python: a custom message (never a trait).
        if self._sim_media is not None:
            self.send({"type": "sim-media", "page_id": page_id, **self._sim_media})

    def _relay_for_perceived(self, stream: AvatarStream) -> Callable[[Event], None]:
        """The recorder listener that relays ``stream``'s events to the page (on the I/O thread)."""
        # The replies of this stream whose first chunk went to the page (the simulator numbers replies per session:
        # a stream attached later starts afresh).
        relayed: collections.OrderedDict[Any, None] = collections.OrderedDict()

        def relay(event: Event) -> None:
            self._relay_event(event, relayed)

        return relay

    def _relay_event(self, event: Event, relayed: collections.OrderedDict[Any, None]) -> None:
        # The simulator's data channel runs in the kernel: the browser learns from here what it times (a message's
        # last chunk going out, the avatar's audio events, each chunk of the user's transcript and the first chunk
        # of each reply, without their text) and stamps each on arrival: its heard_ms then leaves out the relay's
        # own delay (a lower bound; see the module's docstring), and the user's turns are differences of two
        # relayed arrivals (the relay's delay, about the same for both, mostly cancels).
        if event.clock.startswith("browser:"):
            return
        message: dict[str, Any] | None = None
        extra: dict[str, Any] = {}
        if event.kind == EventKind.CHAT_SENT and event.data.get("fin"):
            self._post({"type": "sim-sent", "mid": event.mid}, [])
        elif event.kind in (EventKind.AUDIO_START, EventKind.AUDIO_END):
            message = {"v": 2, "type": "event", "mid": event.mid, "pld": {"event": event.kind}}
        elif event.kind == EventKind.CHAT_RECV and event.data.get("sender") == "user":
            message = {"v": 2, "type": "chat", "mid": event.mid, "pld": {"from": "user"}}
            if event.data.get("fin"):
                message["fin"] = True
            extra = {"chars": event.data.get("text_chars", 0)}
        elif event.kind == EventKind.CHAT_RECV and event.data.get("sender") == "bot":
            reply_mid = event.data.get("reply_mid") or event.mid
            if reply_mid not in relayed:  # only the first chunk of each reply: small traffic
                relayed[reply_mid] = None
                while len(relayed) > _RELAYED_REPLIES_KEPT:
                    relayed.popitem(last=False)
                message = {"v": 2, "type": "chat", "mid": reply_mid, "pld": {"from": "bot"}}
        if message is not None:
            self._post({"type": "sim-message", "message": message, **extra}, [])

    def _on_chat(self, entry: TranscriptEntry) -> None:
        self._set(caption=_tail(entry.text))

    def _set(self, **changes: Any) -> None:
        # Called from the kernel thread and from the I/O thread (relayed events): one comm message per change set.
        with self.hold_sync():
            for name, value in changes.items():
                setattr(self, name, value)

    # ------------------------------------------------------------------ non-blocking conversation

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return io_loop().submit(coro)

    def _require_stream(self) -> AvatarStream:
        if self._stream is None:
            coro_hint = "stage.connect(client) or stage.attach(live)"
            raise ValidationError("stage", "has no live stream", allowed=coro_hint)
        return self._stream

    def say(self, text: str, **kwargs: Any) -> concurrent.futures.Future[Reply]:
        """Start ``AvatarStream.say(text, **kwargs)`` without waiting; read ``.result()`` in a later cell."""
        return self._submit(self._require_stream().say(text, **kwargs))

    def ask(self, text: str, **kwargs: Any) -> concurrent.futures.Future[Reply]:
        """Start ``AvatarStream.ask(text, **kwargs)`` without waiting; read ``.result()`` in a later cell."""
        return self._submit(self._require_stream().ask(text, **kwargs))

    def interrupt(self, **kwargs: Any) -> concurrent.futures.Future[Ack]:
        """Start ``AvatarStream.interrupt()`` without waiting."""
        return self._submit(self._require_stream().interrupt(**kwargs))

    def set_params(self, **kwargs: Any) -> concurrent.futures.Future[Ack]:
        """Start ``AvatarStream.set_params(**kwargs)`` without waiting; a new ``bgurl`` is drawn once acknowledged."""
        future = self._submit(self._require_stream().set_params(**kwargs))
        bgurl = kwargs.get("bgurl")
        if bgurl:

            def show_background(done: concurrent.futures.Future[Ack]) -> None:
                if not done.cancelled() and done.exception() is None:
                    self._set(background_url=bgurl)

            future.add_done_callback(show_background)
        return future

    # ------------------------------------------------------------------ errors

    def on_error(self, callback: Callable[[Exception], None]) -> Callable[[], None]:
        """Call ``callback(exc)`` (on the kernel thread) for each failure the browser reports; returns an unsubscriber."""
        self._error_listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._error_listeners.remove(callback)

        return remove

    def _report(self, kind: str, message: str) -> None:
        lead = FAILURE_TEXT.get(kind, "the stage failed")
        exc = ConnectionError(f"{lead}: {message}" if message else lead)
        self.errors.append(exc)
        for listener in list(self._error_listeners):
            try:
                listener(exc)
            except Exception:  # a listener's bug must not stop the others; it is logged
                _log.exception("a stage error listener raised")

    # ------------------------------------------------------------------ the browser

    def _post(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        # From the I/O thread: ipykernel sends comm messages through its IOPub thread, which is thread-safe.
        self.send(content, buffers or None)

    def _on_custom_message(self, _widget: object, content: Any, buffers: list[Any]) -> None:
        """Messages from the browser (on the kernel thread, while it is idle)."""
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "relay-ping":  # the page times a round trip to this kernel (perceived.js: relay_rtt_ms)
            self.send({"type": "relay-pong", **{key: content.get(key) for key in ("page_id", "mid", "t")}})
            return
        if kind == "join-request":
            self._send_credentials(content.get("page_id"))
            return
        if kind == "event":
            self._record_event(content)
            return
        if kind == "perceived":
            self._record_perceived(content)
            return
        if kind == "sim-media-request":
            self._send_sim_media(content.get("page_id"))
            return
        if kind in ("failed", "problem"):
            self._report(str(content.get("kind") or ""), str(content.get("message") or ""))
        if kind == "problem":
            return  # shown and reported, but the room is still there
        if kind in ("failed", "left"):
            # Known here at once (the transport learns it on the I/O thread a moment later).
            self._transport_spent = True
        if self._transport is not None and kind in ("joined", "frames", "sent", "send-failed", "failed", "left"):
            self._transport.deliver(content, buffers or [])

    def _record_event(self, content: Mapping[str, Any]) -> None:
        name = content.get("name")
        page = content.get("page_id")
        if not isinstance(name, str) or not isinstance(page, str):
            return
        try:
            t_ns = round(float(content.get("t", 0.0)) * _NS_PER_MS)
        except (TypeError, ValueError):
            return
        data = content.get("data")
        self.recorder.record(
            name,
            t_ns=t_ns,
            clock=f"browser:{page}",
            session_id=self.session_id or None,
            **(dict(data) if isinstance(data, Mapping) else {}),
        )

    def _record_perceived(self, content: Mapping[str, Any]) -> None:
        # perceived.js's raw events, each stamped (``at``) on the page's clock: kept as ``perceived.<type>``.
        page = content.get("page_id")
        events = content.get("events")
        if not isinstance(page, str) or not isinstance(events, list):
            return
        for item in events:
            if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
                continue
            try:
                t_ns = round(float(item.get("at", 0.0)) * _NS_PER_MS)
            except (TypeError, ValueError):
                continue
            data = {k: v for k, v in item.items() if k not in ("type", "at", "mid")}
            mid = item.get("mid")
            self.recorder.record(
                f"perceived.{item['type']}",
                t_ns=t_ns,
                clock=f"browser:{page}",
                session_id=self.session_id or None,
                mid=mid if isinstance(mid, str) else None,
                **data,
            )

    def _send_credentials(self, page_id: Any) -> None:
        # The one place the credentials leave Python: a custom message to the page that asked (never a trait).
        reply: dict[str, Any] = {"type": "credentials", "page_id": page_id}
        if self._credentials is None:
            reply["error"] = "this stage has no room to join"
        else:
            if self._transport is not None and (self._transport_spent or self._transport.closed):
                # Join again after a failure or Leave: a fresh channel (a stream on the old one stays closed;
                # connect again with stage.connect(client)).
                old = self._transport
                self._transport = BrowserTransport(
                    self._post, budget=old.budget, loop=io_loop().loop, send_timeout=self._send_timeout
                )
                self._transport_spent = False
                self._set(error="", error_kind="")
            reply["provider"] = self._credentials.provider
            reply["credentials"] = _browser_credentials(self._credentials)
        self.send(reply)

    def close(self) -> None:
        """Close the widget; a stream using its transport closes too (the browser can no longer carry it)."""
        if not hasattr(self, "_transport"):  # __init__ refused its arguments: nothing of ours to close
            super().close()
            return
        self._detach()
        if self._transport is not None and not self._transport.closed:
            self._transport.deliver({"type": "failed", "kind": "widget-closed", "message": ""})
        super().close()
