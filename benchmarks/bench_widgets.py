"""How fast does the chat transcript follow a burst? Chunk arrival → transcript widget update, at 100 chunks/s.

A scripted avatar (in this process, on the I/O loop) answers each message with a long reply whose chunks arrive
every 10 ms, each stamped on arrival as the WebSocket transport does. A ``ChatPanel`` follows the session; for
each re-render it records the time from the arrival of the oldest chunk not yet shown to the moment the widget's
value was set (``ChatPanel.update_latencies_ms``). Reported: p50, p99 and max over the burst.

    python benchmarks/bench_widgets.py [--quick] [--max-hz HZ]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from akool_lab.live import AvatarStream, LiveSession, io_loop
from akool_lab.metrics import percentile
from akool_lab.protocol.limits import LIVEKIT
from akool_lab.transport import Frame, Transport

_END = object()


class BurstAvatar(Transport):
    """An in-process avatar: acks commands and answers each chat with ``chunks`` chunks, one every ``gap_s``."""

    paces_itself = False

    def __init__(self, chunks: int, gap_s: float) -> None:
        self.budget = LIVEKIT
        self.clock = "kernel"
        self._chunks = chunks
        self._gap = gap_s
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = False
        self._n = 0

    async def connect(self, timeout: float) -> None:
        self._queue = asyncio.Queue()

    async def send(self, data: bytes) -> int:
        message = json.loads(data)
        if message["type"] == "command":
            ack = {
                "v": 2,
                "type": "command",
                "mid": message["mid"],
                "pld": {"cmd": message["pld"]["cmd"], "code": 1000},
            }
            self._put(ack)
        elif message.get("fin"):
            self._n += 1
            asyncio.get_running_loop().create_task(self._burst(f"r-{self._n}"))
        return time.perf_counter_ns()

    async def _burst(self, mid: str) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self._put({"v": 2, "type": "event", "pld": {"event": "audio_start"}})
        for idx in range(self._chunks):
            # Absolute deadlines: 100 chunks/s however long each step takes.
            await asyncio.sleep(max(0.0, start + idx * self._gap - loop.time()))
            fin = idx == self._chunks - 1
            self._put(
                {"v": 2, "type": "chat", "mid": mid, "idx": idx, "fin": fin, "pld": {"from": "bot", "text": f"w{idx} "}}
            )
        self._put({"v": 2, "type": "event", "pld": {"event": "audio_end"}})

    def _put(self, message: dict[str, Any]) -> None:
        self._queue.put_nowait(Frame(json.dumps(message).encode(), time.perf_counter_ns(), "kernel"))

    async def frames(self) -> AsyncIterator[Frame]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item

    async def close(self) -> None:
        self._closed = True
        self._queue.put_nowait(_END)

    @property
    def closed(self) -> bool:
        return self._closed


def measure(quick: bool = False, max_hz: float | None = None) -> dict[str, Any]:
    """Run the burst and return the latency figures (ms) of the transcript updates."""
    from akool_lab.widgets import ChatPanel

    chunks = 300 if quick else 1000  # 3 s or 10 s at 100 chunks/s
    stream = io_loop().run(AvatarStream.open(BurstAvatar(chunks, 0.01), mode=1), 10, "open")
    live = LiveSession(stream)
    panel = ChatPanel(live) if max_hz is None else ChatPanel(live, max_hz=max_hz)
    try:
        live.say("Start the burst.", timeout=chunks * 0.01 + 30)
        time.sleep(0.3)  # the last render
        latencies = list(panel.update_latencies_ms)
    finally:
        panel.close()
        live.close()
    return {
        "chunks": chunks,
        "renders": len(latencies),
        "p50": round(statistics.median(latencies), 3),
        "p99": round(percentile(sorted(latencies), 99), 3),
        "max": round(max(latencies), 3),
    }


def widget_update_p99_ms(quick: bool = False) -> float:
    """p99 (ms) of chunk arrival → transcript widget update under a 100 chunks/s burst."""
    return float(measure(quick)["p99"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-hz", type=float, default=None)
    args = parser.parse_args()
    print(json.dumps(measure(args.quick, args.max_hz), indent=2))


if __name__ == "__main__":
    main()
