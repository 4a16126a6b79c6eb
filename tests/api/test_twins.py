"""The sync and async clients are twins: the same public names, signatures and docstrings, the async ones awaited.

Their resources are one class per resource whatever the client (``Sessions[Sync]``, ``Sessions[Async]``), so the
methods cannot drift apart; these tests keep it that way, and check that what ``help()`` and the API reference
show of a method is its public signature (not the generator of steps behind it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from akool_lab import errors
from akool_lab.api import AkoolClient, AsyncAkoolClient
from tests.conftest import CANARY_KEY

RESOURCES = ("sessions", "avatars", "voices", "languages", "knowledge")
#: Methods whose docstrings differ by design: what they return is the sync or the async live object.
DIFFERENT_DOCS = {"connect"}
#: The context-manager protocol of each client.
PROTOCOL = {"__enter__": "__aenter__", "__exit__": "__aexit__"}


def public_methods(obj: object) -> dict[str, Callable[..., Any]]:
    return {
        name: getattr(obj, name)
        for name in dir(obj)
        if not name.startswith("_") and callable(getattr(obj, name)) and not inspect.isclass(getattr(obj, name))
    }


def shape(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults (the annotations differ where a type is sync or async by nature)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.fixture
def clients() -> tuple[AkoolClient, AsyncAkoolClient]:
    return AkoolClient(CANARY_KEY), AsyncAkoolClient(CANARY_KEY)


def test_the_clients_have_the_same_public_methods_with_the_same_parameters(
    clients: tuple[AkoolClient, AsyncAkoolClient],
) -> None:
    sync, aio = clients
    sync_methods, async_methods = public_methods(sync), public_methods(aio)
    assert sorted(sync_methods) == sorted(async_methods)
    for name, method in sync_methods.items():
        assert shape(method) == shape(async_methods[name]), name
        if name not in DIFFERENT_DOCS:
            assert inspect.getdoc(method) == inspect.getdoc(async_methods[name]), name
        assert inspect.iscoroutinefunction(async_methods[name]), name
    assert inspect.signature(AkoolClient) == inspect.signature(AsyncAkoolClient)
    for sync_name, async_name in PROTOCOL.items():
        assert shape(getattr(sync, sync_name)) == shape(getattr(aio, async_name))


def test_the_clients_have_the_same_resources_with_the_same_methods(
    clients: tuple[AkoolClient, AsyncAkoolClient],
) -> None:
    sync, aio = clients
    for view_sync, view_async in ((sync, aio), (sync.with_raw_response, aio.with_raw_response)):
        for name in RESOURCES:
            resource_sync, resource_async = getattr(view_sync, name), getattr(view_async, name)
            assert type(resource_sync) is type(resource_async)
            methods_sync, methods_async = public_methods(resource_sync), public_methods(resource_async)
            assert sorted(methods_sync) == sorted(methods_async) != []
            for method, fn in methods_sync.items():
                other = methods_async[method]
                assert inspect.signature(fn) == inspect.signature(other), f"{name}.{method}"
                assert inspect.getdoc(fn) == inspect.getdoc(other) is not None, f"{name}.{method}"


def test_a_resource_method_shows_its_public_signature_not_the_steps_behind_it(
    clients: tuple[AkoolClient, AsyncAkoolClient],
) -> None:
    sync, _ = clients
    create = inspect.signature(sync.sessions.create)
    assert list(create.parameters)[:3] == ["avatar_id", "duration", "voice_id"]
    assert len(create.parameters) == 13
    assert create.return_annotation == "Session"
    assert inspect.signature(sync.sessions.iter).return_annotation == "Iterator[Session]"
    assert sync.sessions.get.__qualname__ == "Sessions.get"
    for name in RESOURCES:
        for method in public_methods(getattr(sync, name)).values():
            assert "Steps[" not in str(inspect.signature(method)), method.__qualname__
            assert "Pages[" not in str(inspect.signature(method)), method.__qualname__


def test_the_async_methods_await_to_their_results_and_the_sync_ones_return_them(
    clients: tuple[AkoolClient, AsyncAkoolClient],
) -> None:
    sync, aio = clients
    pending = aio.sessions.get("s1")  # nothing runs until awaited
    assert inspect.iscoroutine(pending)
    pending.close()
    with pytest.raises(errors.ValidationError, match="id"):
        sync.sessions.get("")  # validation raises at the call, before anything is sent
