"""A fake browser page for the stage's transport: it plays the part of stage.js without a browser.

It receives what the transport posts (as ``widget.send`` would carry it), and answers the way stage.js does: each
``send`` is confirmed with a timestamp on the page's own clock, and the avatar's frames are delivered in batches with
their arrival times. Its clock is a plain counter in milliseconds, deliberately far from the kernel's
``perf_counter`` so that a test notices any mixing of clocks.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from akool_lab.transport._browser import BrowserTransport


class FakePage:
    """One browser page: records posts, answers sends, delivers frames (from any thread, like the comm handler)."""

    def __init__(self, page_id: str = "page-1", *, start_ms: float = 5_000_000.0, auto_confirm: bool = True) -> None:
        self.page_id = page_id
        self.now_ms = start_ms
        self.auto_confirm = auto_confirm
        self.transport: BrowserTransport | None = None
        self.posts: list[tuple[dict[str, Any], list[bytes]]] = []
        self.sent: list[tuple[int, float, bytes]] = []  # (seq, browser time, bytes) as "the provider" got them
        self.on_send: Any = None  # optional callback(decoded message) for scripted avatars
        self._lock = threading.Lock()

    def tick(self, ms: float = 1.0) -> float:
        with self._lock:
            self.now_ms += ms
            return self.now_ms

    def post(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        """What the transport calls (``widget.send``); runs on the I/O thread."""
        self.posts.append((content, list(buffers)))
        if content.get("type") == "send" and self.auto_confirm:
            assert content.get("page_id") == self.page_id, "sends go to the page that joined"
            t = self.tick(2.5)
            self.sent.append((content["seq"], t, buffers[0]))
            self.deliver({"type": "sent", "items": [[content["seq"], t]]})
            if self.on_send is not None:
                self.on_send(json.loads(buffers[0]))

    def deliver(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        assert self.transport is not None
        self.transport.deliver({"page_id": self.page_id, **content}, buffers or [])

    def join(self, provider: str = "agora") -> None:
        self.deliver({"type": "joined", "provider": provider})

    def frames(self, *messages: dict[str, Any] | bytes, gap_ms: float = 1.0) -> list[float]:
        """Deliver the messages as one batch; returns their browser arrival times (ms)."""
        times = [self.tick(gap_ms) for _ in messages]
        data = [m if isinstance(m, bytes) else json.dumps(m).encode() for m in messages]
        self.deliver({"type": "frames", "t": times}, data)
        return times
