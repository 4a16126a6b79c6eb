"""Everything the sync and async clients share that is not I/O.

Configuration and credentials, auth headers, the outcome of one attempt, the retry decision and its backoff, the
polling schedule of ``wait_until_*``, event records and debug logging. The two executors (``_client.py`` and
``_async_client.py``) only send, sleep and await.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from akool_lab.errors import AkoolError, AuthError, ConnectionError, TimeoutError, ValidationError
from akool_lab.events import EventKind, Recorder
from akool_lab.redaction import Secret, redact, redact_mapping

from ._endpoints import Request, Retry
from ._journal import Journal

__all__ = ["DEFAULT_BASE_URL", "Attempt", "ClientCore", "backoff_delay", "poll_delays", "retry_after_seconds"]

_log = logging.getLogger("akool_lab")

#: The production service.
DEFAULT_BASE_URL = "https://openapi.akool.com"

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
    from ._endpoints import parse_response

    status = response.status_code
    outcome = Attempt(http_status=status, retry_after=retry_after_seconds(response.headers.get("retry-after")))
    try:
        outcome.value = parse_response(request, status, response.content)
        outcome.code = 1000
    except AkoolError as exc:
        outcome.error, outcome.code = exc, exc.code
    except Exception as exc:  # ResponseFormatError; anything else is a bug worth surfacing as-is
        outcome.error = exc
    if outcome.error is not None and request.endpoint.retry is Retry.SAFE:
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


class ClientCore:
    """State and logic shared by :class:`AkoolClient` and :class:`AsyncAkoolClient` (no I/O)."""

    def __init__(
        self,
        api_key: str | None,
        *,
        client_id: str | None,
        client_secret: str | None,
        base_url: str | None,
        timeout: float | None,
        max_retries: int,
        recorder: Recorder | None,
        journal_path: str | os.PathLike[str] | None,
        rng: random.Random | None,
        clock: Callable[[], float] | None,
    ) -> None:
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
        #: the httpx response of the last attempt (for debugging; its request headers hold the key: do not print them)
        self.last_response: httpx.Response | None = None

    # -- auth ----------------------------------------------------------------------------------------------------

    @property
    def uses_token(self) -> bool:
        """True when requests authenticate with a getToken token (no API key was given)."""
        return self._api_key is None

    def _secrets(self) -> list[str]:
        return [s.reveal() for s in (self._api_key, self._client_id, self._client_secret, self._token) if s]

    def _static_auth_headers(self) -> dict[str, str] | None:
        """The auth headers when no token is needed; ``None`` when a token must be fetched first."""
        if self._api_key is not None:
            return {"x-api-key": self._api_key.reveal()}
        if self._token is not None:
            return {"Authorization": f"Bearer {self._token.reveal()}"}
        return None

    def _token_request(self) -> Request[str]:
        from ._endpoints import get_token

        assert self._client_id is not None and self._client_secret is not None
        return get_token(self._client_id.reveal(), self._client_secret.reveal())

    def _should_refresh_token(self, outcome: Attempt, already_refreshed: bool) -> bool:
        """1101 with a cached token: the token expired or was revoked; fetch a new one once and repeat once."""
        return (
            self.uses_token and not already_refreshed and isinstance(outcome.error, AuthError) and outcome.code == 1101
        )

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
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "%s %s%s attempt=%d params=%s json=%s headers=%s",
                request.endpoint.method,
                self.base_url,
                request.endpoint.path,
                attempt,
                redact_mapping(request.params or {}),
                redact_mapping(request.json or {}),
                redact_mapping(dict(headers)),
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

    def _session_created(self, session_id: str, close: Callable[[], None]) -> None:
        from ._journal import REGISTRY

        self._open_sessions.add(session_id)
        self.journal.created(session_id, self.base_url)
        REGISTRY.add(session_id, close)

    def _session_closed(self, session_id: str) -> None:
        from ._journal import REGISTRY

        self._open_sessions.discard(session_id)
        self.journal.closed(session_id)
        REGISTRY.discard(session_id)

    def _repr(self) -> str:
        if self._api_key is not None:
            auth = f"api_key={redact(self._api_key.reveal())!r}"
        else:
            assert self._client_id is not None
            auth = f"client_id={redact(self._client_id.reveal())!r}"
        return f"{type(self).__name__}(base_url={self.base_url!r}, {auth}, open_sessions={len(self._open_sessions)})"
