"""Raw helpers for the simulator tests: plain httpx calls and plain websockets frames, no akool_lab client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import websockets

from akool_lab.sim import SimServer

KEY = "sim-test-key-0123456789"
V4 = "/api/open/v4"
V3 = "/api/open/v3"
AVATAR = "dvp_Tristan_cloth2_1080P"

Message = dict[str, Any]

#: One connection pool for every call (a new httpx client per call costs tens of milliseconds).
HTTP = httpx.Client(timeout=10)


def call(sim: SimServer, method: str, path: str, *, key: str | None = KEY, **kwargs: Any) -> dict[str, Any]:
    """One REST call with the API key; returns the JSON body."""
    headers = {"x-api-key": key} if key else {}
    headers.update(kwargs.pop("headers", {}))
    response = HTTP.request(method, sim.base_url + path, headers=headers, timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def create_session(sim: SimServer, **fields: Any) -> dict[str, Any]:
    """Create a session (websocket stream, dialogue mode unless told) and return its ``data``."""
    body = {"avatar_id": AVATAR, "stream_type": "websocket", **fields}
    answer = call(sim, "POST", f"{V4}/liveAvatar/session/create", json=body)
    assert answer["code"] == 1000, answer
    data: dict[str, Any] = answer["data"]
    return data


def wait_status(sim: SimServer, session_id: str, status: int, timeout: float = 5.0) -> None:
    """Poll session/detail until ``status``."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = call(sim, "GET", f"{V4}/liveAvatar/session/detail", params={"id": session_id})["data"]["status"]
        if seen == status:
            return
        time.sleep(0.01)
    raise AssertionError(f"status stayed {seen}, expected {status}")


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "the condition") -> None:
    """Poll ``predicate`` (every 5 ms) until it is true; ``AssertionError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.005)


def wait_until_connected(sim: SimServer, session_id: str, timeout: float = 3.0) -> None:
    """Wait until the simulator has registered a stream client for ``session_id`` (it accepts, then registers)."""
    wait_until(lambda: sim.truth(session_id)["connected"], timeout, f"a client connected to {session_id}")


async def until(predicate: Callable[[], object], timeout: float = 2.0, what: str = "the condition") -> None:
    """In a coroutine: yield to the event loop until ``predicate`` is true; ``AssertionError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.001)


def chat(mid: str, text: str, idx: int = 0, fin: bool = True) -> str:
    """A v2 chat frame."""
    return json.dumps({"v": 2, "type": "chat", "mid": mid, "idx": idx, "fin": fin, "pld": {"text": text}})


def command(mid: str, cmd: str, data: Any = None) -> str:
    """A v2 command frame."""
    pld: dict[str, Any] = {"cmd": cmd}
    if data is not None:
        pld["data"] = data
    return json.dumps({"v": 2, "type": "command", "mid": mid, "pld": pld})


async def receive_until(
    ws: websockets.ClientConnection, done: Callable[[Message], bool], timeout: float = 3.0
) -> list[Message]:
    """Every message up to and including the first one for which ``done`` is true."""
    seen: list[Message] = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.0, deadline - time.monotonic())))
        seen.append(message)
        if done(message):
            return seen


async def receive_for(ws: websockets.ClientConnection, seconds: float) -> list[Message]:
    """Every message that arrives within ``seconds``."""
    seen: list[Message] = []
    deadline = time.monotonic() + seconds
    try:
        while True:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), max(0.0, deadline - time.monotonic()))))
    except (asyncio.TimeoutError, websockets.ConnectionClosed):
        pass
    return seen


def is_event(name: str, mid: str | None = None) -> Callable[[Message], bool]:
    """A predicate: an event called ``name`` (for reply ``mid`` when given)."""
    return lambda m: m["type"] == "event" and m["pld"]["event"] == name and (mid is None or m.get("mid") == mid)


def is_ack(mid: str) -> Callable[[Message], bool]:
    """A predicate: the ack of command ``mid``."""
    return lambda m: m["type"] == "command" and m.get("mid") == mid


def bot_text(messages: list[Message], mid: str) -> str:
    """The text of reply ``mid``, in idx order."""
    chunks = [m for m in messages if m["type"] == "chat" and m["mid"] == mid and m["pld"]["from"] == "bot"]
    return "".join(m["pld"]["text"] for m in sorted(chunks, key=lambda m: m["idx"]))
