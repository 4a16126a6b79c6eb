"""A scripted fake of the AKool service (over ``httpx.MockTransport``) and a harness running sync and async clients.

``harness`` is parametrized over both clients, so a test written once checks that they behave the same.
Sleeping is recorded, never done: the fake ``sleep`` advances a fake clock that ``wait_until_*`` reads.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from akool_lab.api import AkoolClient, AsyncAkoolClient
from akool_lab.api._journal import REGISTRY
from tests.conftest import CANARY_KEY

Reply = dict[str, Any] | httpx.Response | Exception | Callable[[httpx.Request], Any]


def ok(data: Any = None, **extra: Any) -> dict[str, Any]:
    """A success envelope."""
    body: dict[str, Any] = {"code": 1000, "msg": "OK", **extra}
    if data is not None:
        body["data"] = data
    return body


def fail(code: int, msg: str = "failed") -> dict[str, Any]:
    """An error envelope (HTTP 200, as AKool answers)."""
    return {"code": code, "msg": msg}


def session_json(session_id: str = "66a0c0ffee0000000000abcd", status: int = 1, **extra: Any) -> dict[str, Any]:
    """A SessionResponse as in AKOOL_API.md 3.1.1."""
    return {
        "_id": session_id,
        "uid": 1234,
        "type": 1,
        "status": status,
        "stream_type": "agora",
        "credentials": {
            "agora_uid": 100001,
            "agora_app_id": "appid",
            "agora_channel": "ch",
            "agora_token": "rtc-tok-9f8e7d6c",
        },
        **extra,
    }


class FakeAkool:
    """Answers requests from per-route scripts; the last scripted reply of a route repeats. Records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = defaultdict(list)
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *replies: Reply) -> FakeAkool:
        self.routes[(method, path)].extend(replies)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        script = self.routes.get((request.method, request.url.path))
        if not script:
            return httpx.Response(404, text="<html>no route</html>")
        reply = script.pop(0) if len(script) > 1 else script[0]
        if callable(reply) and not isinstance(reply, httpx.Response):
            reply = reply(request)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            # a fresh copy: a scripted response may repeat, and may be served to the sync or the async client
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)
        return httpx.Response(200, json=reply)

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


class Harness:
    """Builds a client of one kind (sync or async) on a :class:`FakeAkool` and runs calls on it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.server = FakeAkool()
        self.sleeps: list[float] = []
        self.now = 1000.0
        self.clients: list[Any] = []

    def _sleep_sync(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def _sleep_async(self, seconds: float) -> None:
        self._sleep_sync(seconds)

    def client(self, api_key: str | None = CANARY_KEY, **kwargs: Any) -> Any:
        cls = AkoolClient if self.kind == "sync" else AsyncAkoolClient
        kwargs.setdefault("transport", httpx.MockTransport(self.server.handler))
        kwargs.setdefault("sleep", self._sleep_sync if self.kind == "sync" else self._sleep_async)
        kwargs.setdefault("rng", random.Random(0))
        kwargs.setdefault("clock", lambda: self.now)
        client = cls(api_key, **kwargs)
        self.clients.append(client)
        return client

    def run(self, result: Any) -> Any:
        """The value of a client call: awaited when the client is async."""
        if inspect.iscoroutine(result):
            return asyncio.run(result)
        if inspect.isasyncgen(result):

            async def collect() -> list[Any]:
                return [item async for item in result]

            return asyncio.run(collect())
        if inspect.isgenerator(result):
            return list(result)
        return result


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """A harness for each kind of client (tests using it run twice)."""
    yield Harness(request.param)
    REGISTRY.clear()  # sessions left open by a test must not be closed through its fake at interpreter exit


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """AKool's OpenAPI file, parsed once per run (the shared ``openapi_spec`` fixture re-reads it per test)."""
    from tests.conftest import OPENAPI_PATH

    if not OPENAPI_PATH.exists():
        pytest.skip("../shared/reference/akool-live-avatar.openapi.yaml is absent")
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: dict[str, Any] = yaml.load(OPENAPI_PATH.read_text(encoding="utf-8"), Loader=loader)
    return data


@pytest.fixture
def sync_harness() -> Iterator[Harness]:
    """A harness for the sync client only (for behaviour that does not depend on the executor)."""
    yield Harness("sync")
    REGISTRY.clear()
