"""One definition of each REST method for the sync client, the async client and their raw-response views.

A method of a resource (``client.sessions.get``, ...) is written once, as a generator of steps that does no I/O
(see :mod:`._base`): it validates its arguments, ``yield from``-s ``self._client._call(request)`` for each request
and returns the result. :func:`operation` turns that generator into the public method, which hands the steps to the
client's driver: :class:`~akool_lab.api.AkoolClient` performs them blocking, :class:`~akool_lab.api.AsyncAkoolClient`
awaiting. So the two clients cannot drift apart: they share every method body, signature and docstring.

The type parameter of a resource says which driver it has, so that type checkers see

- ``client.sessions.get(id)`` (``Sessions[Sync]``) as a ``Session``,
- ``async_client.sessions.get(id)`` (``Sessions[Async]``) as an awaitable ``Session``,
- ``client.with_raw_response.sessions.get(id)`` (``Sessions[RawSync]``) as a ``RawResponse[Session]``, and
- ``async_client.with_raw_response.sessions.get(id)`` (``Sessions[RawAsync]``) as an awaitable one.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, final, overload

from ._base import Pages, RawResponse, Steps
from ._models import Page

if TYPE_CHECKING:
    from ._base import ClientCore

__all__ = ["Async", "RawAsync", "RawSync", "Resource", "Sync", "operation", "paginated"]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M")


@final
class Sync:
    """Mode of a resource whose methods block and return their result (``AkoolClient``)."""


@final
class Async:
    """Mode of a resource whose methods return awaitables (``AsyncAkoolClient``)."""


@final
class RawSync:
    """Mode of a resource whose methods block and return a :class:`RawResponse` (``client.with_raw_response``)."""


@final
class RawAsync:
    """Mode of a resource whose methods return awaitable :class:`RawResponse` objects."""


class Resource(Generic[M]):
    """A group of endpoints of one client (``client.sessions``...); ``M`` is its mode (see the module docstring)."""

    __slots__ = ("_client", "_raw")

    def __init__(self, client: ClientCore[Any, Any, Any, Any, Any], *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}{' (raw responses)' if self._raw else ''}>"


_WRAPPED_RESULT = re.compile(r"^(?:Steps|Pages)\[(.*)\]$")


def _present(method: Callable[..., Any], steps: Callable[..., Any], owner: type, name: str, result: str) -> None:
    """Give ``method`` the name, docstring and signature of the generator it runs (for help(), IDEs and pdoc)."""
    method.__name__ = name
    method.__qualname__ = f"{owner.__qualname__}.{name}"
    method.__module__ = owner.__module__
    method.__doc__ = steps.__doc__
    signature = inspect.signature(steps)
    annotation = signature.return_annotation
    match = _WRAPPED_RESULT.match(annotation) if isinstance(annotation, str) else None
    public = result.format(match.group(1)) if match else annotation
    method.__signature__ = signature.replace(return_annotation=public)  # type: ignore[attr-defined]


class operation(Generic[P, R]):
    """Decorator: the generator of steps below becomes a method of the resource, for every mode.

    At class creation the attribute is replaced by a plain function (so ``help()``, IDEs and pdoc see an ordinary
    method with the generator's signature and docstring); the overloads of ``__get__`` tell type checkers what the
    method returns in each mode.
    """

    def __init__(self, steps: Callable[Concatenate[Any, P], Steps[R]]) -> None:
        self._steps = steps

    def __set_name__(self, owner: type, name: str) -> None:
        steps = self._steps

        def method(resource: Resource[Any], /, *args: Any, **kwargs: Any) -> Any:
            return resource._client._run(steps(resource, *args, **kwargs), resource._raw)

        _present(method, steps, owner, name, "{}")
        setattr(owner, name, method)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> operation[P, R]: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, obj: Resource[RawSync], owner: type[Any]) -> Callable[P, RawResponse[R]]: ...
    @overload
    def __get__(
        self, obj: Resource[RawAsync], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, RawResponse[R]]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        # Only reached when the descriptor was attached after class creation (no __set_name__ call).
        raise TypeError("operation() must decorate a method in the body of a Resource class")


class paginated(Generic[P, R]):
    """Decorator: a method returning :class:`Pages` becomes an iterator over every item of every page.

    With the async client it is an async iterator; with ``with_raw_response`` it yields one :class:`RawResponse`
    per page.
    """

    def __init__(self, pages: Callable[Concatenate[Any, P], Pages[R]]) -> None:
        self._pages = pages

    def __set_name__(self, owner: type, name: str) -> None:
        pages = self._pages

        def method(resource: Resource[Any], /, *args: Any, **kwargs: Any) -> Any:
            return resource._client._pages(pages(resource, *args, **kwargs), resource._raw)

        _present(method, pages, owner, name, "Iterator[{}]")
        setattr(owner, name, method)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> paginated[P, R]: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, Iterator[R]]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]) -> Callable[P, AsyncIterator[R]]: ...
    @overload
    def __get__(self, obj: Resource[RawSync], owner: type[Any]) -> Callable[P, Iterator[RawResponse[Page[R]]]]: ...
    @overload
    def __get__(
        self, obj: Resource[RawAsync], owner: type[Any]
    ) -> Callable[P, AsyncIterator[RawResponse[Page[R]]]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        raise TypeError("paginated() must decorate a method in the body of a Resource class")
