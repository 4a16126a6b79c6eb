"""Everything the sync and async clients share that is not I/O.

Configuration and credentials, auth headers, the outcome of one attempt, the retry decision and its backoff, the
polling schedule of ``wait_until_*``, event records, debug logging and the raw responses.

A call is a generator of *steps* (sans-IO, as in h11): :meth:`ClientCore._call` yields an :class:`Http` step for
each attempt, a :class:`Sleep` before a retry and :data:`FETCH_TOKEN` when a token is needed, and gets the httpx
response (or the transport error) back. The two drivers (``_client.py`` and ``_async_client.py``) only perform
the steps: the sync one blocks, the async one awaits. Nothing here sends, sleeps or awaits.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from akool_lab import __version__, errors
from akool_lab.errors import AkoolError, AuthError, ConnectionError, TimeoutError, ValidationError
from akool_lab.events import EventKind, Recorder
from akool_lab.redaction import SECRET_KEYS, Secret, redact, redact_mapping

from ._endpoints import Request, Retry, close_session, parse_response
from ._journal import Journal
from ._models import Page

if TYPE_CHECKING:
    from ._resources import Avatars, KnowledgeBases, Languages, RawResources, Sessions, Voices

__all__ = [
    "DEFAULT_BASE_URL",
    "FETCH_TOKEN",
    "USER_AGENT",
    "Attempt",
    "ClientCore",
    "Http",
    "Pages",
    "RawResponse",
    "Sleep",
    "Step",
    "Steps",
    "backoff_delay",
    "poll_delays",
    "retry_after_seconds",
]

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
X = TypeVar("X", httpx.BaseTransport, httpx.AsyncBaseTransport)
Z = TypeVar("Z")
M = TypeVar("M")
RM = TypeVar("RM")

_log = logging.getLogger("akool_lab")

#: The production service.
DEFAULT_BASE_URL = "https://openapi.akool.com"

#: Sent with every request, as API clients do: this library, then the HTTP library under it.
USER_AGENT = f"akool_lab/{__version__} python-httpx/{httpx.__version__}"

#: Codes that mean "try again later": rate limited (1005), avatar busy (1215).
RETRYABLE_CODES = frozenset({1005, 1215})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
#: A server asking for a longer pause than this is not waited for blindly; the error is raised instead.
RETRY_AFTER_MAX = 60.0
POLL_FIRST = 0.2
POLL_CAP = 2.0

_NO_CREDENTIALS = (
    "no AKool credentials: set AKOOL_API_KEY (or pass api_key=), or set AKOOL_CLIENT_ID and AKOOL_CLIENT_SECRET"
)


def backoff_delay(
    retry_number: int, rng: random.Random, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP
) -> float:
    """The pause before retry number ``retry_number`` (1, 2, ...): exponential, capped, with "equal jitter".

    Half of the exponential step is kept and the other half is random, so that many clients hitting the same
    outage spread out but never retry immediately.
    """
    step = min(cap, base * 2.0 ** (retry_number - 1))
    return step / 2 + rng.uniform(0, step / 2)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header: seconds, or an HTTP date. ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def poll_delays(first: float = POLL_FIRST, cap: float = POLL_CAP) -> Callable[[], float]:
    """A function returning the successive pauses between status polls: ``first``, doubling, capped at ``cap``."""
    state = {"next": first}

    def next_delay() -> float:
        delay = state["next"]
        state["next"] = min(cap, delay * 2)
        return delay

    return next_delay


@dataclass(slots=True)
class Attempt:
    """What one HTTP attempt came to.

    Attributes:
        value: the parsed result, when ``error`` is ``None``.
        error: the exception to raise if the attempt is not repeated.
        http_status: the HTTP status, when a response arrived.
        code: the AKool business code, when the body had one.
        retryable: whether the failure is transient *for this endpoint's retry policy*.
        retry_after: the server's ``Retry-After`` (seconds), when given.
    """

    value: Any = None
    error: Exception | None = None
    http_status: int | None = None
    code: int | None = None
    retryable: bool = False
    retry_after: float | None = None


def evaluate_response(request: Request[Any], response: httpx.Response) -> Attempt:
    """Turn an HTTP response into an :class:`Attempt` (parse the envelope; classify the failure)."""
    status = response.status_code
    outcome = Attempt(http_status=status)
    try:
        outcome.value = parse_response(request, status, response.content)
        outcome.code = 1000
        return outcome
    except AkoolError as exc:
        outcome.error, outcome.code = exc, exc.code
    except Exception as exc:  # ResponseFormatError; anything else is a bug worth surfacing as-is
        outcome.error = exc
    outcome.retry_after = retry_after_seconds(response.headers.get("retry-after"))
    if request.endpoint.retry is Retry.SAFE:
        outcome.retryable = status in RETRYABLE_STATUSES or outcome.code in RETRYABLE_CODES
    return outcome


def evaluate_exception(request: Request[Any], exc: httpx.TransportError, timeout: float | None) -> Attempt:
    """Turn an httpx transport failure into an :class:`Attempt` with the library's own error type.

    A failure to open the connection (``ConnectError``, ``ConnectTimeout``) proves that the request never left this
    machine, so even an endpoint with side effects may be sent again; any later failure (a read timeout, a reset)
    may come after the server acted, so only safe endpoints are repeated.
    """
    name = request.endpoint.name
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    error: Exception
    if isinstance(exc, httpx.TimeoutException):
        error = TimeoutError(f"{name} ({type(exc).__name__})", timeout if timeout is not None else float("nan"))
    else:
        error = ConnectionError(f"{name}: {type(exc).__name__}: could not reach the service ({exc})")
    error.__cause__ = exc
    return Attempt(error=error, retryable=unsent or request.endpoint.retry is Retry.SAFE)


# --- steps: what a call asks its driver to do ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Http:
    """Send one HTTP request; the driver answers with the ``httpx.Response``, or the ``httpx.TransportError``."""

    method: str
    url: str
    params: dict[str, Any] | None
    json: dict[str, Any] | None
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause before a retry or the next poll (the driver's ``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


class _FetchToken:
    """Make sure a getToken token is cached (the driver fetches one under its lock, so concurrent calls share it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FETCH_TOKEN"


FETCH_TOKEN = _FetchToken()

#: What a call may ask of its driver.
Step = Http | Sleep | _FetchToken

#: A call: a generator that yields steps, is sent their results and returns the call's result.
Steps = Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class Pages(Generic[T]):
    """The pages of a list endpoint, for the drivers' page iterators: ``request(n)`` builds the request of page n."""

    request: Callable[[int], Request[Page[T]]]


def _redacted_headers(headers: httpx.Headers) -> dict[str, str]:
    return {
        name: redact(value) if name in SECRET_KEYS or name in _SECRET_HEADERS else value
        for name, value in headers.items()
    }


def _redacted_url(url: httpx.URL) -> str:
    """The URL, with the value of any query parameter named like a secret (``token``...) redacted."""
    if not any(key.lower() in SECRET_KEYS for key in url.params):
        return str(url)
    params = [(k, redact(v) if k.lower() in SECRET_KEYS else v) for k, v in url.params.multi_items()]
    return str(url.copy_with(params=params))


_SECRET_HEADERS = frozenset({"cookie", "set-cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True, repr=False)
class RawResponse(Generic[T]):
    """The last HTTP exchange of a call made through ``client.with_raw_response``, with the call's result.

    >>> raw = client.with_raw_response.sessions.get(session_id)      # doctest: +SKIP
    >>> raw.status_code, raw.headers["content-type"], raw.elapsed_ms  # doctest: +SKIP
    (200, 'application/json', 41.7)
    >>> raw.parsed              # the Session, as sessions.get returns it  # doctest: +SKIP

    Secrets are redacted (the API key or token in ``request_headers``; cookies in both header maps), so a raw
    response can be printed in a notebook. The body is not kept: it may hold RTC credentials; the parsed model keeps
    the JSON it was built from in its ``raw`` attribute.

    Attributes:
        parsed: what the method returns without ``with_raw_response``.
        status_code: the HTTP status.
        headers: the response headers (lower-case names).
        request_headers: the request headers, with the credentials redacted.
        method: the HTTP method.
        url: the full URL (with the query string).
        http_version: e.g. ``"HTTP/1.1"``.
        elapsed_ms: from handing the request to httpx to having read the whole response (``perf_counter_ns`` of
            the calling thread).
    """

    parsed: T
    status_code: int
    headers: Mapping[str, str]
    request_headers: Mapping[str, str]
    method: str
    url: str
    http_version: str
    elapsed_ms: float

    @classmethod
    def of(cls, response: httpx.Response, parsed: T, elapsed_ms: float) -> RawResponse[T]:
        """The redacted summary of ``response`` (its request included) and the call's result."""
        request = response.request
        return cls(
            parsed=parsed,
            status_code=response.status_code,
            headers=_redacted_headers(response.headers),
            request_headers=_redacted_headers(request.headers),
            method=request.method,
            url=_redacted_url(request.url),
            http_version=response.http_version,
            elapsed_ms=elapsed_ms,
        )

    def __repr__(self) -> str:
        return (
            f"RawResponse({self.method} {self.url} -> {self.status_code} in {self.elapsed_ms:.1f} ms, "
            f"parsed={self.parsed!r})"
        )


class Run(Generic[T]):
    """One call being driven: advances its steps and, for a raw call, remembers the last response.

    :meth:`drive` and :meth:`drive_async` are the two drivers' loops, twins but for one ``await``: each step is
    performed by the client (``perform``) and its answer sent back in (a failed request answers with its
    ``httpx.TransportError``).
    """

    __slots__ = ("_elapsed_ns", "_last", "_raw", "_sent_ns", "_steps", "result")

    def __init__(self, steps: Steps[T], raw: bool) -> None:
        self._steps = steps
        self._raw = raw
        self._last: httpx.Response | None = None
        self._sent_ns = self._elapsed_ns = 0
        self.result: Any = None

    def drive(self, perform: Callable[[Step], Any]) -> Any:
        """Run the call to its end, performing each step with the blocking ``perform``; the call's result."""
        step = self.send(None)
        while step is not None:
            step = self.send(perform(step))
        return self.result

    async def drive_async(self, perform: Callable[[Step], Awaitable[Any]]) -> Any:
        """:meth:`drive` for an async client: ``perform`` is awaited."""
        step = self.send(None)
        while step is not None:
            step = self.send(await perform(step))
        return self.result

    def send(self, value: Any) -> Step | None:
        """Resume the call with the answer to its last step; the next step, or ``None`` when it returned.

        A transport error (the answer of an :class:`Http` step that failed) is raised inside the call, which turns
        it into the library's own error or a retry.
        """
        if isinstance(value, httpx.TransportError):
            resume: Callable[[Any], Step] = self._steps.throw
        else:
            resume = self._steps.send
            if self._raw and isinstance(value, httpx.Response):
                self._last = value
                self._elapsed_ns = time.perf_counter_ns() - self._sent_ns
        try:
            step = resume(value)
        except StopIteration as stop:
            self._finish(stop.value)
            return None
        if self._raw:
            self._sent_ns = time.perf_counter_ns()
        return step

    def _finish(self, value: Any) -> None:
        if not self._raw:
            self.result = value
        elif self._last is None:
            raise errors.AkoolLabError("this call made no HTTP request, so it has no raw response")
        else:
            self.result = RawResponse.of(self._last, value, self._elapsed_ns / 1e6)


class ClientCore(Generic[H, X, Z, M, RM]):
    """What :class:`AkoolClient` and :class:`AsyncAkoolClient` share: configuration, credentials, state and the
    calls as steps (no I/O).

    The type parameters are the client's httpx client, httpx transport and sleep function types (blocking or
    async), and the modes of its resources (``Sync`` and ``RawSync``, or ``Async`` and ``RawAsync``).
    """

    #: the sleep of a client made without ``sleep=`` (``time.sleep`` or ``asyncio.sleep``)
    _default_sleep: Z
    sessions: Sessions[M]
    """Streaming sessions: create, wait until live, close, list, reap."""
    avatars: Avatars[M]
    """Streaming avatars: list, detail, upload, wait until ready."""
    voices: Voices[M]
    """Voices."""
    languages: Languages[M]
    """Languages."""
    knowledge: KnowledgeBases[M]
    """Knowledge bases for AKool's LLM."""
    with_raw_response: RawResources[RM]
    """The same resources, whose methods return a :class:`RawResponse` (status, headers, timing, result)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        base_url: str | None = None,
        timeout: float | None = 30.0,
        max_retries: int = 2,
        http_client: H | None = None,
        transport: X | None = None,
        recorder: Recorder | None = None,
        journal_path: str | os.PathLike[str] | None = None,
        sleep: Z | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Check the credentials and settings and make the client's resources (no request is sent).

        Credentials: ``api_key`` (else ``$AKOOL_API_KEY``) is sent as ``x-api-key``; without one, ``client_id`` and
        ``client_secret`` (else ``$AKOOL_CLIENT_ID``/``$AKOOL_CLIENT_SECRET``) fetch a token from getToken, sent as
        ``Authorization: Bearer``. With neither, :class:`~akool_lab.errors.ValidationError` is raised.

        Args:
            base_url: the service; default ``$AKOOL_BASE_URL``, else ``DEFAULT_BASE_URL``.
            timeout: seconds per HTTP request (``None``: no limit).
            max_retries: how many times a failed *safe* request is repeated (reads and close; never a create
                that may have reached the service).
            http_client: an ``httpx.Client`` (``httpx.AsyncClient`` for the async client) to use; it is not
                closed by ``close()``, and ``transport`` is ignored then.
            transport: an httpx transport for the client this object creates (``httpx.MockTransport`` in tests).
            recorder: receives one ``http`` event per attempt and the session lifecycle events.
            journal_path: the session journal (default ``$AKOOL_LAB_HOME/sessions.jsonl`` or the user data dir).
            sleep: replaces ``time.sleep`` (``asyncio.sleep`` for the async client), for tests.
            rng: the random source of the retry jitter; clock: the monotonic clock of ``wait_until_*``.
        """
        from ._resources import Avatars, KnowledgeBases, Languages, RawResources, Sessions, Voices

        api_key = api_key if api_key is not None else os.environ.get("AKOOL_API_KEY")
        client_id = client_id if client_id is not None else os.environ.get("AKOOL_CLIENT_ID")
        client_secret = client_secret if client_secret is not None else os.environ.get("AKOOL_CLIENT_SECRET")
        self._api_key = Secret(api_key) if api_key else None
        self._client_id = Secret(client_id) if client_id else None
        self._client_secret = Secret(client_secret) if client_secret else None
        if self._api_key is None and not (self._client_id and self._client_secret):
            # checked here, at construction, so that the mistake shows on the line that made the client
            raise ValidationError("api_key", _NO_CREDENTIALS)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValidationError("max_retries", f"is {max_retries!r}", allowed="a whole number >= 0")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValidationError("timeout", f"is {timeout!r}", allowed="seconds > 0, or None")
        self.base_url = (base_url or os.environ.get("AKOOL_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        #: every HTTP attempt and session lifecycle event (shared with the live streams this client opens)
        self.recorder: Recorder = recorder if recorder is not None else Recorder()
        self.journal = Journal(journal_path)
        self._rng = rng or random.Random()
        self._clock = clock or time.monotonic
        self._token: Secret | None = None
        #: sessions created by this client and not closed yet
        self._open_sessions: set[str] = set()
        self._sleep: Z = sleep if sleep is not None else self._default_sleep
        #: held while a getToken token is fetched, so that concurrent calls share one
        self._token_lock = self._new_lock()
        self._owns_http = http_client is None
        self._transport: X | None = transport
        #: what every request sends: set once on the httpx client this object makes (httpx adds it to each request
        #: at no cost), else added to each request of the caller's client
        self._client_headers = {"User-Agent": USER_AGENT}
        if self._api_key is not None:
            self._client_headers["x-api-key"] = self._api_key.reveal()
        self._request_headers = {} if self._owns_http else dict(self._client_headers)
        self._http: H = http_client if http_client is not None else self._new_http()
        self.sessions = Sessions(self)
        self.avatars = Avatars(self)
        self.voices = Voices(self)
        self.languages = Languages(self)
        self.knowledge = KnowledgeBases(self)
        self.with_raw_response = RawResources(self)

    def _new_lock(self) -> Any:
        """A lock of this client's kind (``threading.Lock`` or ``asyncio.Lock``)."""
        raise NotImplementedError

    def _new_http(self) -> H:
        """A new httpx client of this client's kind (at construction, and at exit when the user closed it)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        if self._api_key is not None:
            auth = f"api_key={redact(self._api_key.reveal())!r}"
        else:
            assert self._client_id is not None
            auth = f"client_id={redact(self._client_id.reveal())!r}"
        return f"{type(self).__name__}(base_url={self.base_url!r}, {auth}, open_sessions={len(self._open_sessions)})"

    # -- auth ----------------------------------------------------------------------------------------------------

    @property
    def uses_token(self) -> bool:
        """True when requests authenticate with a getToken token (no API key was given)."""
        return self._api_key is None

    def _secrets(self) -> list[str]:
        return [s.reveal() for s in (self._api_key, self._client_id, self._client_secret, self._token) if s]

    def _headers(self, auth: bool) -> dict[str, str] | None:
        """The headers to add to a request (``auth``: it needs credentials); ``None`` when a token must be fetched
        first. The User-Agent and the API key are on the httpx client when this object made it."""
        if not auth or self._api_key is not None:
            return self._request_headers
        if self._token is None:
            return None
        return {**self._request_headers, "Authorization": f"Bearer {self._token.reveal()}"}

    def _token_request(self) -> Request[str]:
        from ._endpoints import get_token

        assert self._client_id is not None and self._client_secret is not None
        return get_token(self._client_id.reveal(), self._client_secret.reveal())

    def _should_refresh_token(self, outcome: Attempt, already_refreshed: bool) -> bool:
        """1101 with a cached token: the token expired or was revoked; fetch a new one once and repeat once."""
        return (
            self.uses_token and not already_refreshed and isinstance(outcome.error, AuthError) and outcome.code == 1101
        )

    # -- a call ----------------------------------------------------------------------------------------------------

    def _call(self, request: Request[T]) -> Steps[T]:
        """Send ``request``: authenticate, retry what may be retried, time and record each attempt, parse."""
        endpoint = request.endpoint
        attempt = retries = 0
        refreshed = False
        while True:
            attempt += 1
            headers = self._headers(endpoint.auth)
            if headers is None:
                yield FETCH_TOKEN
                headers = self._headers(endpoint.auth)
                assert headers is not None
            if _log.isEnabledFor(logging.DEBUG):
                self._log_request(request, headers, attempt)
            t0 = time.perf_counter_ns()
            try:
                response = yield Http(
                    endpoint.method, self.base_url + endpoint.path, request.params, request.json, headers
                )
                outcome = evaluate_response(request, response)
            except httpx.TransportError as exc:
                outcome = evaluate_exception(request, exc, self.timeout)
            self._record_http(request, outcome, t0, attempt)
            if outcome.error is None:
                return outcome.value  # type: ignore[no-any-return]
            if self._should_refresh_token(outcome, refreshed):
                refreshed = True
                self._token = None
                continue
            delay = self._retry_delay(outcome, retries)
            if delay is None:
                raise outcome.error
            retries += 1
            yield Sleep(delay)

    def _close_session(self, session_id: str) -> Steps[None]:
        """Close the session (see ``Sessions.close``): an already closed session (1219) is not an error."""
        request = close_session(session_id)
        self._record(EventKind.CLOSE_START, session_id)
        try:
            yield from self._call(request)
        except errors.SessionClosedError as exc:
            self._session_closed(session_id)
            self._record(EventKind.CLOSED, session_id, code=exc.code)
            return
        except errors.NotFoundError:
            self._session_closed(session_id)  # nothing left to close, nor to reap
            raise
        self._session_closed(session_id)
        self._record(EventKind.CLOSED, session_id, code=1000)

    def _close_all(self) -> Steps[list[str]]:
        """Close every session this client created and has not closed (see ``close_all``)."""
        closed: list[str] = []
        failures: list[errors.AkoolLabError] = []
        for session_id in sorted(self._open_sessions):
            try:
                yield from self._close_session(session_id)
            except errors.NotFoundError:
                closed.append(session_id)
            except errors.AkoolLabError as exc:
                failures.append(exc)
            else:
                closed.append(session_id)
        if failures:
            raise failures[0]
        return closed

    def _run(self, steps: Steps[Any], raw: bool = False) -> Any:
        """Drive ``steps`` to their result (the driver: blocking or awaiting, see the subclasses)."""
        raise NotImplementedError

    def _pages(self, pages: Pages[Any], raw: bool = False) -> Any:
        """Iterate over every page of ``pages`` (an iterator or an async iterator, see the subclasses)."""
        raise NotImplementedError

    def _close_at_exit(self, session_id: str) -> None:
        """Close ``session_id`` from the interpreter's exit hook (no event loop runs then)."""
        raise NotImplementedError

    # -- retries ---------------------------------------------------------------------------------------------------

    def _retry_delay(self, outcome: Attempt, retries_done: int) -> float | None:
        """The pause before repeating a failed attempt, or ``None`` when it must not be repeated."""
        if not outcome.retryable or retries_done >= self.max_retries:
            return None
        if outcome.retry_after is not None:
            # the server said when; beyond RETRY_AFTER_MAX the caller is better served by the error
            return outcome.retry_after if outcome.retry_after <= RETRY_AFTER_MAX else None
        return backoff_delay(retries_done + 1, self._rng)

    # -- events and logs -------------------------------------------------------------------------------------------

    def _log_request(self, request: Request[Any], headers: Mapping[str, str], attempt: int) -> None:
        _log.debug(
            "%s %s%s attempt=%d params=%s json=%s headers=%s",
            request.endpoint.method,
            self.base_url,
            request.endpoint.path,
            attempt,
            redact_mapping(request.params or {}),
            redact_mapping(request.json or {}),
            redact_mapping({**(self._client_headers if self._owns_http else {}), **headers}),
        )

    def _record_http(self, request: Request[Any], outcome: Attempt, t0: int, attempt: int) -> None:
        ms = (time.perf_counter_ns() - t0) / 1e6
        error = None if outcome.error is None else type(outcome.error).__name__
        _log.debug(
            "%s -> HTTP %s code %s in %.1f ms%s",
            request.endpoint.name,
            outcome.http_status,
            outcome.code,
            ms,
            f" ({error})" if error else "",
        )
        if self.recorder is not None:
            self.recorder.record(
                EventKind.HTTP,
                t_ns=t0,
                session_id=request.session_id,
                endpoint=request.endpoint.name,
                method=request.endpoint.method,
                path=request.endpoint.path,
                http_status=outcome.http_status,
                code=outcome.code,
                ms=ms,
                attempt=attempt,
                error=error,
            )

    def _record(self, kind: str, session_id: str | None = None, **data: Any) -> None:
        if self.recorder is not None:
            self.recorder.record(kind, session_id=session_id, **data)

    # -- cost safety -----------------------------------------------------------------------------------------------

    def _session_created(self, session_id: str) -> None:
        from ._journal import REGISTRY

        self._open_sessions.add(session_id)
        self.journal.created(session_id, self.base_url)
        REGISTRY.add(session_id, lambda: self._close_at_exit(session_id))

    def _session_closed(self, session_id: str) -> None:
        from ._journal import REGISTRY

        self._open_sessions.discard(session_id)
        self.journal.closed(session_id)
        REGISTRY.discard(session_id)
