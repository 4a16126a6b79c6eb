"""``ChatPanel``: talk to the avatar and watch its reply stream in, with each reply's timings beside it.

>>> chat = ChatPanel(live)                        # doctest: +SKIP
>>> chat                                          # type, then Send (or Ctrl+Enter)

The transcript is the live session's own (:attr:`LiveSession.transcript`), read on the I/O thread where it is
written, and re-rendered at most ``max_hz`` times a second however fast chunks arrive.
"""

from __future__ import annotations

import collections
import concurrent.futures
import html
import threading
import time
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as widgets
import traitlets

from akool_lab.events import KERNEL_CLOCK, Event, EventKind
from akool_lab.widgets._common import Coalescer, ErrorLine, background

if TYPE_CHECKING:
    from akool_lab.live import LiveSession, TranscriptEntry

__all__ = ["ChatPanel", "CtrlEnter"]

#: How many recent update latencies :attr:`ChatPanel.update_latencies_ms` keeps.
LATENCY_WINDOW = 1000
_ROLE_LABELS = {"you": "you", "avatar": "avatar", "user": "heard"}


class CtrlEnter(anywidget.AnyWidget):
    """An invisible helper: Ctrl+Enter (or Cmd+Enter) in an element with CSS class ``target`` sends
    ``{"type": "submit", "text": <what the box shows>}``.

    ipywidgets has no key events, and JupyterLab binds Ctrl+Enter to "run cell"; this listener runs in the capture
    phase on the document, so it sees the key first and keeps it from JupyterLab when the focus is in the chat box.

    The text travels in the message itself, read from the box at the moment of the key press: ipywidgets sends a
    text box's value to the kernel at most one update at a time (later keystrokes wait in a buffer until the kernel
    has answered the previous update), so when someone types fast the kernel's copy of the value can lag behind the
    last characters typed, and reading it on "submit" sent truncated text. The box is then emptied in the browser
    (an ``input`` event, so the kernel's copy follows, and a value still buffered cannot bring the text back).
    """

    _esm = """
    function render({ model, el }) {
      el.style.display = "none";
      const onKey = (event) => {
        const target = event.target;
        if (!(event.key === "Enter" && (event.ctrlKey || event.metaKey))) return;
        if (!target || !target.closest || !target.closest("." + model.get("target"))) return;
        event.preventDefault();
        event.stopPropagation();
        const text = target.value;
        if (typeof text !== "string" || !text.trim() || !model.get("enabled")) {
          // Nothing to send, or no session: the kernel says so, and the box keeps what was typed.
          model.send({ type: "submit", text: typeof text === "string" ? text : "" });
          return;
        }
        target.value = "";
        target.dispatchEvent(new Event("input", { bubbles: true }));
        model.send({ type: "submit", text });
      };
      document.addEventListener("keydown", onKey, true);
      return () => document.removeEventListener("keydown", onKey, true);
    }
    export default { render };
    """
    target = traitlets.Unicode("akool-chat-input").tag(sync=True)
    #: Whether a message can be sent now (a session is connected); when not, the box is left as it is.
    enabled = traitlets.Bool(False).tag(sync=True)


class ChatPanel(widgets.VBox):  # type: ignore[misc]
    """A transcript, a text box, Send (and Ctrl+Enter), Interrupt, and a say / ask selector.

    Args:
        live: the session to talk to; ``None`` to attach one later with :meth:`attach` (Send stays disabled).
        max_hz: the most transcript re-renders per second (60: a streamed chunk shows within ~20 ms).

    Attributes:
        live: the attached :class:`~akool_lab.live.LiveSession`, if any.
        update_latencies_ms: for each re-render, the time from the arrival of the OLDEST chunk it shows for the
            first time (the one that waited longest) to the moment the transcript widget's value was set (the model
            update sent), in ms; the last 1000.
        errors: the panel's error line.
    """

    def __init__(self, live: LiveSession | None = None, *, max_hz: float = 60.0) -> None:
        self.live: LiveSession | None = None
        self.errors = ErrorLine()
        self.update_latencies_ms: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._lock = threading.Lock()
        self._oldest_unrendered_ns: int | None = None  # arrival of the oldest avatar/user chunk not yet rendered
        self._unsubscribe: list[Any] = []
        self._coalescer = Coalescer(self._render, max_hz=max_hz, errors=self.errors, what="transcript")

        self.transcript = widgets.HTML(value=_render_entries([])).add_class("akool-transcript-view")
        self.text = widgets.Textarea(
            value="",
            placeholder="Type a message, then Send (or Ctrl+Enter)",
            layout=widgets.Layout(width="100%", height="60px"),
        ).add_class("akool-chat-input")
        self.intent = widgets.ToggleButtons(
            options=[("say (mode 1)", "say"), ("ask (mode 2)", "ask")],
            value="say",
            tooltips=["the avatar speaks your text verbatim", "the avatar answers your text"],
            style={"button_width": "110px"},
        ).add_class("akool-intent")
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane", disabled=True
        ).add_class("akool-send")
        self.interrupt_button = widgets.Button(description="Interrupt", icon="hand-paper-o", disabled=True).add_class(
            "akool-interrupt"
        )
        self.shortcut = CtrlEnter()
        self.shortcut.on_msg(self._on_shortcut)
        self.send_button.on_click(lambda _b: self.send())
        self.interrupt_button.on_click(lambda _b: self.interrupt())

        super().__init__(
            [
                widgets.HTML('<div class="akool-panel-title">Chat</div>'),
                self.transcript,
                self.text,
                widgets.HBox([self.intent, self.send_button, self.interrupt_button]),
                self.errors.widget,
                self.shortcut,
            ],
            layout=widgets.Layout(padding="4px", min_width="340px", flex="1 1 400px"),
        )
        self.add_class("akool-chat-panel")
        if live is not None:
            self.attach(live)

    # -- connecting ----------------------------------------------------------------------------------------------

    def attach(self, live: LiveSession) -> None:
        """Talk to ``live`` from now on (replacing any session attached before). Safe from any thread."""
        self.detach()
        self.live = live
        session_id = live.session_id
        stream = live.avatar_stream
        for event in ("chat", "user_speech", "reply"):
            self._unsubscribe.append(stream.on(event, lambda _payload: self._coalescer.poke()))
        self._unsubscribe.append(stream.on("closed", lambda _reason: self._on_closed()))

        def on_event(event: Event) -> None:
            # The arrival stamp of every received chunk of this session, for update_latencies_ms.
            if event.kind == EventKind.CHAT_RECV and event.session_id == session_id and event.clock == KERNEL_CLOCK:
                with self._lock:
                    if self._oldest_unrendered_ns is None:
                        self._oldest_unrendered_ns = event.t_ns

        self._unsubscribe.append(live.recorder.subscribe(on_event))
        self._set_connected(live.is_open)
        self._coalescer.poke()

    def detach(self) -> None:
        """Stop following the attached session (the transcript stays as it was)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.live = None
        self._set_connected(False)

    # -- actions ---------------------------------------------------------------------------------------------------

    def send(self, text: str | None = None) -> concurrent.futures.Future[Any] | None:
        """Send ``text`` (by default the text box's) as a ``say`` or an ``ask`` (what Send does).

        Returns the reply's future, or ``None`` when nothing was sent (not connected, or no text); then the text is
        left in (or put back into) the box, so nothing typed is lost.
        """
        live = self.live
        typed = self.text.value if text is None else text
        if live is None or not live.is_open:
            self.text.value = typed
            self.errors.problem("not connected: create a session first")
            return None
        if not typed.strip():
            self.errors.problem("nothing to send: type a message first")
            return None
        text = typed.strip()
        self.errors.clear()
        self.text.value = ""
        stream = live.avatar_stream
        coro = stream.say(text) if self.intent.value == "say" else stream.ask(text)
        future = background(coro, errors=self.errors, what=self.intent.value)
        future.add_done_callback(lambda _f: self._coalescer.poke())
        # The message's own transcript line is added on the I/O loop when it is queued: redraw soon after.
        self._coalescer.poke()
        return future

    def interrupt(self) -> concurrent.futures.Future[Any] | None:
        """Stop the avatar's current utterance (what Interrupt does); the ack is shown on the panel."""
        live = self.live
        if live is None or not live.is_open:
            self.errors.problem("not connected: nothing to interrupt")
            return None
        return background(
            live.avatar_stream.interrupt(),
            errors=self.errors,
            what="interrupt",
            on_done=lambda ack: self.errors.note(
                f"interrupted: ack {ack.code} {ack.msg} in {ack.ack_ms:.0f} ms"
                if ack.acknowledged
                else f"interrupted ({ack.msg})"
            ),
        )

    def close(self) -> None:
        """Stop following the session and close the panel's widgets."""
        self.detach()
        self._coalescer.close()
        for child in (self.transcript, self.text, self.intent, self.send_button, self.interrupt_button):
            child.close()
        self.shortcut.close()
        self.errors.widget.close()
        super().close()

    # -- internals -------------------------------------------------------------------------------------------------

    def _on_shortcut(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not (isinstance(content, dict) and content.get("type") == "submit"):
            return
        text = content.get("text")
        # What the box showed when Ctrl+Enter was pressed (see CtrlEnter); an older front-end sends no text.
        self.send(text if isinstance(text, str) else None)

    def _on_closed(self) -> None:
        self._set_connected(False)
        self._coalescer.poke()

    def _set_connected(self, connected: bool) -> None:
        self.send_button.disabled = not connected
        self.interrupt_button.disabled = not connected
        self.shortcut.enabled = connected

    def _render(self) -> None:
        """Re-render the transcript (on the I/O thread, where the transcript is written: no torn reads)."""
        live = self.live
        if live is None:
            return
        with self._lock:
            oldest, self._oldest_unrendered_ns = self._oldest_unrendered_ns, None
        self.transcript.value = _render_entries(live.avatar_stream.transcript)
        if oldest is not None:
            self.update_latencies_ms.append((time.perf_counter_ns() - oldest) / 1e6)


#: The transcript shows the most recent lines only, so that a re-render (up to 60 a second while a reply streams
#: in: the update must follow a chunk within ~20 ms) stays a small message however long the conversation gets.
MAX_LINES = 200


def _render_entries(entries: list[TranscriptEntry]) -> str:
    """The transcript as HTML, newest last (the box is flex column-reverse, so it stays scrolled to the bottom)."""
    lines = []
    if len(entries) > MAX_LINES:
        hidden = len(entries) - MAX_LINES
        lines.append(
            f'<div class="akool-line" style="color:#999">… {hidden} earlier lines (live.transcript has all)</div>'
        )
        entries = entries[-MAX_LINES:]
    for entry in entries:
        role = _ROLE_LABELS.get(entry.role, entry.role)
        timing = ""
        text = html.escape(entry.text)
        if entry.role == "avatar" and entry.reply is not None:
            t = entry.reply.timings
            timing = f'<span class="akool-timing">ttfr {_ms(t.ttfr_ms)} · ttfa {_ms(t.ttfa_ms)}</span>'
            if entry.reply.interrupted:
                text, note = _interrupted(entry.text, t.speak_ms)
                timing += f'<span class="akool-timing">({html.escape(note)})</span>'
        elif entry.role == "avatar" and not entry.done:
            timing = '<span class="akool-timing">…</span>'
        lines.append(
            f'<div class="akool-line akool-line-{html.escape(entry.role)}">'
            f'<span class="akool-role akool-role-{html.escape(entry.role)}">{html.escape(role)}</span>'
            f"{text}{timing}</div>"
        )
    body = "".join(lines) or '<div class="akool-line" style="color:#999">no messages yet</div>'
    # column-reverse shows the last child at the bottom, and keeps the view scrolled there as lines are added.
    return f'<div class="akool-transcript"><div>{body}</div></div>'


#: The speech rate used to estimate how much of an interrupted reply was spoken (an average English speaking rate;
#: AKool sends no word timings, so the split is an estimate and is labelled as one).
WORDS_PER_MINUTE = 150.0


def _interrupted(text: str, speak_ms: float | None) -> tuple[str, str]:
    """An interrupted reply as HTML: what was (about) spoken before the interrupt, then the rest struck through as
    not spoken, and a note saying how long the avatar spoke. The reply's text holds every chunk that arrived, which
    is usually far more than the avatar said before it was cut off."""
    words = text.split(" ")
    if not speak_ms or speak_ms <= 0:
        spoken_words = 0
        note = "interrupted before it spoke: none of this was spoken"
    else:
        spoken_words = min(len(words), round(speak_ms / 60_000 * WORDS_PER_MINUTE))
        note = f"interrupted after {speak_ms / 1000:.1f} s of speech"
        if spoken_words < len(words):
            note += f"; about {spoken_words} of {len(words)} words spoken, the rest (struck through) was not"
    if spoken_words >= len(words):
        return html.escape(text), note
    spoken = " ".join(words[:spoken_words])
    rest = " ".join(words[spoken_words:])
    title = f"not spoken (estimated at {WORDS_PER_MINUTE:.0f} words a minute)"
    unspoken = (
        f'<span class="akool-unspoken" title="{html.escape(title)}" '
        f'style="color:#999;text-decoration:line-through">{html.escape(rest)}</span>'
    )
    return (html.escape(spoken) + " " if spoken else "") + unspoken, note


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"
