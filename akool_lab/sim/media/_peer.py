"""One session's WebRTC peer on the simulator (aiortc): it answers the client's offer, publishes the avatar's
speech and face, and carries the v2 data channel over a WebRTC data channel when the client opens one.

ICE is restricted to a host candidate on 127.0.0.1 (no STUN, no other interface): the simulator never listens
beyond loopback, for media as for HTTP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, cast

from aiortc import MediaStreamTrack, RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcicetransport import RTCIceGatherer

from akool_lab.sim._state import SessionRecord, SessionSettings, SimState, now_ns
from akool_lab.sim.media._speech_audio import synthesize
from akool_lab.sim.media._tracks import FaceTrack, SpeechTrack, Utterance

if TYPE_CHECKING:  # pragma: no cover
    from starlette.websockets import WebSocket

__all__ = ["MediaPeer", "gather_on_loopback_only", "loopback_configuration"]

_log = logging.getLogger("akool_lab.sim")

#: How often the peer checks that its session still runs.
WATCH_INTERVAL_S = 0.25
#: Speech is synthesized on a small pool of its own, off the simulator's event loop.
_SYNTH_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="akool-media-speech")
#: Clips already synthesized (text, speed, lang) -> future: a text said again is ready at once.
_CLIP_CACHE: dict[tuple[str, float, str | None], concurrent.futures.Future[Any]] = {}
_CLIP_CACHE_SIZE = 64
#: The data channel's close code when another client is connected (as the WebSocket route's 4003).
BUSY_CODE = 4003
GONE_CODE = 4004
#: How long a refused data channel stays open for its refusal to be read.
REFUSED_CLOSE_DELAY_S = 0.5


def loopback_configuration() -> RTCConfiguration:
    """No ICE servers at all (aiortc's default would ask a public STUN server)."""
    return RTCConfiguration(iceServers=[])


async def gather_on_loopback_only(pc: RTCPeerConnection) -> None:
    """Gather one host candidate on 127.0.0.1 for every ICE transport of ``pc``, before its local description.

    aioice gathers on every interface except loopback; here it is the other way round. The gatherers are then
    complete, so ``setLocalDescription`` gathers nothing more.
    """
    gatherers: list[RTCIceGatherer] = []
    for transceiver in pc.getTransceivers():
        gatherers.append(transceiver.sender.transport.transport.iceGatherer)
    if pc.sctp is not None:
        gatherers.append(pc.sctp.transport.transport.iceGatherer)
    for gatherer in {id(g): g for g in gatherers}.values():
        if gatherer.state != "new":
            continue
        connection = gatherer._connection  # aioice.Connection: it has no public way to choose the addresses
        connection._local_candidates_start = True
        for component in sorted(connection._components):
            connection._local_candidates += await connection.get_component_candidates(
                component=component, addresses=["127.0.0.1"]
            )
        connection._local_candidates_end = True
        await gatherer.gather()  # only marks the gatherer complete: the candidates are there


def _clip(text: str, settings: SessionSettings, window_ns: int) -> concurrent.futures.Future[Any]:
    """The clip of ``text`` (cached), synthesized no further than the words that fit in the speaking window.

    A fast profile gives a long text a few milliseconds of speech: synthesizing all of it would take longer than
    the reply's audio_start is away. eSpeak speaks about 175 words a minute at speed 1.0.
    """
    words = text.split()
    fit = int(window_ns / 1e9 / 60 * 175 * max(settings.speed, 0.1)) + 3
    text = " ".join(words[:fit])
    key = (text, settings.speed, settings.lang)
    future = _CLIP_CACHE.get(key)
    if future is None or (future.done() and future.exception() is not None):
        future = _SYNTH_POOL.submit(synthesize, text, speed=settings.speed, lang=settings.lang)
        if len(_CLIP_CACHE) >= _CLIP_CACHE_SIZE:
            del _CLIP_CACHE[next(iter(_CLIP_CACHE))]
        _CLIP_CACHE[key] = future
    return future


class _ChannelSocket:
    """What :class:`~akool_lab.sim._stream.StreamConnection` uses of a WebSocket, over a WebRTC data channel.

    Each data-channel message is one v2 message (text), as each WebSocket frame is on the simulator's WebSocket.
    """

    def __init__(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if isinstance(message, str):
                self._inbox.put_nowait({"type": "websocket.receive", "text": message})
            else:
                self._inbox.put_nowait({"type": "websocket.receive", "bytes": message})

        @channel.on("close")
        def on_close() -> None:
            self._inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async def receive(self) -> dict[str, Any]:
        return await self._inbox.get()

    async def send_text(self, text: str) -> None:
        # RTCDataChannel.send queues the message on the SCTP association at once: this coroutine never suspends,
        # which is what StreamConnection's direct delivery from its timer callback expects.
        self._channel.send(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self._channel.close()


class MediaPeer:
    """The simulator's side of one WebRTC connection for a session (one at a time; a new offer replaces it)."""

    def __init__(self, state: SimState, session: SessionRecord) -> None:
        self.state = state
        self.session = session
        self.pc = RTCPeerConnection(loopback_configuration())
        self.speech = SpeechTrack(on_error=self._report)
        self.face = FaceTrack(self.speech)
        self.errors: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        _clip("Hello.", session.settings, 10**9)  # load the synthesizer now, not when the first reply is due

    def report(self, exc: BaseException) -> None:
        """An error in the peer's background work: logged, and kept in the session's truth events."""
        self._report(exc)

    def _report(self, exc: BaseException) -> None:
        _log.error("simulator media: %s: %s", type(exc).__name__, exc)
        self.errors.append(f"{type(exc).__name__}: {exc}")
        self.session.truth_events.append({"event": "media_error", "error": f"{type(exc).__name__}: {exc}"})

    async def answer(self, offer_sdp: str) -> str:
        """Take the client's offer; return the answer SDP (audio and video sent, the data channel accepted)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and transceiver.sender.track is None:
                transceiver.sender.replaceTrack(self.speech)
                # sendrecv: the answer narrows it to sendonly unless the client sends its microphone too.
                transceiver.direction = "sendrecv"
            elif transceiver.kind == "video" and transceiver.sender.track is None:
                transceiver.sender.replaceTrack(self.face)
                transceiver.direction = "sendonly"
        await gather_on_loopback_only(self.pc)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self._spawn(self._watch())
        self.session.truth_events.append({"event": "media_connected"})
        return str(self.pc.localDescription.sdp)

    # --- the schedule's hooks (called by the session's StreamConnection) --------------------------------------

    def speak(
        self,
        mid: str,
        text: str,
        audio_start_ns: int,
        audio_end_ns: int,
        arrived_ns: int,
        truth: dict[str, Any],
        settings: SessionSettings,
    ) -> None:
        """Plan a reply's speech: synthesis starts now, the first sample goes in at ``audio_start_ns``."""
        if self._closed:
            return
        utterance = Utterance(
            mid, audio_start_ns, audio_end_ns, arrived_ns, _clip(text, settings, audio_end_ns - audio_start_ns), truth
        )
        self.speech.add(utterance)

    def cut(self, mid: str, at_ns: int) -> None:
        """The reply ``mid`` was interrupted: its speech stops now."""
        self.speech.cut(mid, at_ns)

    # --- the data channel -------------------------------------------------------------------------------------

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        from akool_lab.sim._stream import StreamConnection

        session = self.session
        if session.connection is not None or session.status() in (3, 4):
            # Refused as the WebSocket route refuses (4003 busy, 4004 ended), as an error event: a data channel
            # has no close code.
            busy = session.connection is not None
            refusal = {
                "v": 2,
                "type": "event",
                "mid": "sys-refused",
                "pld": {
                    "event": "error",
                    "code": BUSY_CODE if busy else GONE_CODE,
                    "msg": "another client is connected to this session" if busy else "unknown or ended session",
                },
            }
            with contextlib.suppress(Exception):  # a channel that is already gone needs no answer
                channel.send(json.dumps(refusal, separators=(",", ":")))
            # Closed a little later: a stream reset sent at once can reach the client before the channel's
            # opening handshake completes there, and the refusal would never be read.
            asyncio.get_running_loop().call_later(REFUSED_CLOSE_DELAY_S, channel.close)
            return
        socket = cast("WebSocket", _ChannelSocket(channel))
        connection = StreamConnection(self.state, session, socket)
        session.connection = connection
        self._spawn(connection.run())

    def _on_track(self, track: MediaStreamTrack) -> None:
        """The client's microphone: listen to it (voice activity, transcription, the user's turn)."""
        if track.kind != "audio":
            return
        from akool_lab.sim.media._listen import UserVoice

        self.session.truth_events.append({"event": "microphone_received"})
        self.spawn(UserVoice(self, track).run())

    # --- lifetime ---------------------------------------------------------------------------------------------

    def spawn(self, coroutine: Any) -> None:
        """Run ``coroutine`` as one of the peer's tasks (cancelled on close; its exception is reported)."""
        self._spawn(coroutine)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._report(cast(BaseException, task.exception()))

    async def _watch(self) -> None:
        """Close when the session ends or the connection fails."""
        while not self._closed:
            if self.session.status() in (3, 4) or self.pc.connectionState in ("failed", "closed"):
                await self.close()
                return
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def close(self) -> None:
        """Stop the tracks and close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.session.media is self:
            self.session.media = None
        self.speech.stop()
        self.face.stop()
        await self.pc.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        self.session.truth_events.append({"event": "media_closed", "at_ns": now_ns()})
