"""A browser stand-in for the simulator's WebRTC avatar, in Python: aiortc as the receiving peer.

It offers to receive audio and video and opens a data channel, like the stage does in a browser; it records every
received audio frame with its arrival time (``perf_counter_ns``) and peak level, and every data-channel message.
Everything runs on a private event loop in a worker thread (:func:`run`), so the tests work whether or not the
main thread has a running loop (Playwright's sync API keeps one there).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from akool_lab.sim import SimServer
from akool_lab.sim.media._peer import gather_on_loopback_only, loopback_configuration
from akool_lab.target import DEFAULT_AVATAR

T = TypeVar("T")

#: Decoded Opus of digital silence is not exactly zero: above this |sample| a frame counts as sound.
AUDIBLE = 300


def run(coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coroutine`` on a fresh event loop in a worker thread; fail after ``timeout`` seconds."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(asyncio.wait_for(coroutine, timeout)))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="media-test-client", daemon=True)
    thread.start()
    thread.join(timeout + 15)
    if thread.is_alive():
        raise TimeoutError(f"the client loop did not finish within {timeout + 15:.0f} s")
    if error:
        raise error[0]
    return result[0]


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 5 ms until it holds; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


def create_session(sim: SimServer, *, mode: int = 1) -> dict[str, Any]:
    """A live session on ``sim`` (REST, blocking): its ``_id`` and ``credentials``."""
    headers = {"x-api-key": sim.api_key}
    with httpx.Client(base_url=sim.base_url, headers=headers, timeout=10) as http:
        created = http.post(
            "/api/open/v4/liveAvatar/session/create",
            json={"avatar_id": DEFAULT_AVATAR, "duration": 300, "mode_type": mode, "stream_type": "livekit"},
        ).json()
        assert created["code"] == 1000, created
        session: dict[str, Any] = created["data"]
        deadline = time.monotonic() + 10
        while (
            http.get("/api/open/v4/liveAvatar/session/detail", params={"id": session["_id"]}).json()["data"]["status"]
            != 2
        ):
            assert time.monotonic() < deadline, "the session did not go live"
            time.sleep(0.01)
    return session


@dataclass
class AudioFrameSeen:
    at_ns: int
    peak: int


@dataclass
class Client:
    """The receiving side of one connection."""

    pc: RTCPeerConnection
    channel: Any
    audio: list[AudioFrameSeen] = field(default_factory=list)
    video: list[tuple[int, Any]] = field(default_factory=list)
    messages: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    keep_video: bool = False

    def send(self, message: dict[str, Any]) -> int:
        """Send one v2 message on the data channel; its send time."""
        self.channel.send(json.dumps(message, separators=(",", ":")))
        return time.perf_counter_ns()

    def events(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        return [(t, m) for t, m in self.messages if m.get("type") == "event" and m["pld"].get("event") == name]

    def first_audible_after(self, after_ns: int) -> AudioFrameSeen | None:
        return next((f for f in self.audio if f.at_ns > after_ns and f.peak > AUDIBLE), None)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()


class ClipTrack(MediaStreamTrack):
    """A microphone that says ``samples`` (mono int16, 48 kHz) once after ``delay_s`` of silence, then is silent."""

    kind = "audio"

    def __init__(self, samples: np.ndarray, delay_s: float = 0.5) -> None:
        super().__init__()
        silence = np.zeros(int(48_000 * delay_s), dtype=np.int16)
        self._samples = np.concatenate([silence, samples.astype(np.int16)])
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> Any:
        from fractions import Fraction

        from av import AudioFrame

        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / 48_000
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        chunk = self._samples[self._index : self._index + 960]
        chunk = np.concatenate([chunk, np.zeros(960 - len(chunk), dtype=np.int16)])
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(chunk.tobytes())
        frame.sample_rate = 48_000
        frame.pts = self._index
        frame.time_base = Fraction(1, 48_000)
        self._index += 960
        return frame


async def connect(
    sim: SimServer,
    session: dict[str, Any],
    *,
    keep_video: bool = False,
    token: str | None = None,
    microphone: MediaStreamTrack | None = None,
) -> tuple[Client, httpx.Response]:
    """Offer to the simulator's WebRTC route and wait until the data channel is open."""
    pc = RTCPeerConnection(loopback_configuration())
    if microphone is None:
        pc.addTransceiver("audio", direction="recvonly")
    else:
        pc.addTransceiver(microphone, direction="sendrecv")
    pc.addTransceiver("video", direction="recvonly")
    channel = pc.createDataChannel("akool")
    client = Client(pc, channel, keep_video=keep_video)

    @channel.on("message")
    def on_message(message: str | bytes) -> None:
        client.messages.append((time.perf_counter_ns(), json.loads(message)))

    async def read(track: MediaStreamTrack) -> None:
        while True:
            try:
                frame: Any = await track.recv()
            except MediaStreamError:
                return
            at = time.perf_counter_ns()
            if track.kind == "audio":
                samples = frame.to_ndarray()
                client.audio.append(AudioFrameSeen(at, int(np.abs(samples.astype(np.int32)).max())))
            else:
                client.video.append((at, frame.to_ndarray(format="gray") if client.keep_video else None))

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        client.tasks.append(asyncio.ensure_future(read(track)))

    await gather_on_loopback_only(pc)
    await pc.setLocalDescription(await pc.createOffer())
    body = {"type": "offer", "sdp": pc.localDescription.sdp, "token": token or session["credentials"]["ws_token"]}
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(f"{sim.base_url}/_sim/sessions/{session['_id']}/webrtc/offer", json=body)
    answer = response.json()
    if answer.get("code") != 1000:
        await pc.close()
        return client, response
    await pc.setRemoteDescription(RTCSessionDescription(**answer["data"]))
    await wait_for(lambda: channel.readyState == "open", 20, "the data channel to open")
    return client, response


def chat(mid: str, text: str) -> dict[str, Any]:
    """One whole chat message (a single chunk)."""
    return {"v": 2, "type": "chat", "mid": mid, "idx": 0, "fin": True, "pld": {"text": text}}
