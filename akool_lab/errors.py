"""The error hierarchy of akool_lab, shared by every layer.

Errors say whose fault they are (as h11 does):

- :class:`ValidationError`: the caller's input is wrong; raised before anything is sent.
- :class:`ProtocolError`: what arrived on the wire is not a valid message.
- :class:`AkoolError` and its subclasses: the service answered with a business code other than 1000.
- :class:`TransportError` (:class:`ConnectionError`, :class:`TimeoutError`): the network or a wait failed.
- :class:`StreamError`: a live session could not do what was asked (closed, reply incomplete, ...).

Every class derives from :class:`AkoolLabError`, so ``except akool_lab.AkoolLabError`` catches them all.
No error text ever contains a secret: messages are built from field names, codes and redacted values only.
"""

from __future__ import annotations

import builtins

__all__ = [
    "AkoolError",
    "AkoolLabError",
    "AuthError",
    "BusyError",
    "ConnectionError",
    "InvalidParameterError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProcessingError",
    "ProtocolError",
    "QuotaError",
    "RateLimitError",
    "ReplyIncompleteError",
    "ResponseFormatError",
    "SessionClosedError",
    "SessionFailedError",
    "StreamClosedError",
    "StreamError",
    "TimeoutError",
    "TransportError",
    "ValidationError",
    "error_for_code",
]


class AkoolLabError(Exception):
    """Base class of every error raised by akool_lab."""


class ValidationError(AkoolLabError, ValueError):
    """The caller's input is invalid; raised before any request or message is sent.

    Attributes:
        field: the name of the offending field (``"duration"``, ``"voice_params.speed"``, ...).
        allowed: a short description of what is allowed (``"1..3600"``).
    """

    def __init__(self, field: str, message: str, *, allowed: str | None = None) -> None:
        self.field = field
        self.allowed = allowed
        text = f"{field}: {message}"
        if allowed is not None:
            text += f" (allowed: {allowed})"
        super().__init__(text)


class ProtocolError(AkoolLabError):
    """Bytes received on the data channel are not a valid v2 message.

    The offending input is kept (truncated) in :attr:`data` and in the message, so that it can be reported.
    """

    MAX_SHOWN = 120

    def __init__(self, message: str, data: bytes | str | None = None) -> None:
        shown = ""
        if data is not None:
            raw = data if isinstance(data, bytes) else data.encode("utf-8", "replace")
            cut = raw[: self.MAX_SHOWN]
            shown = f": {cut!r}" + ("..." if len(raw) > self.MAX_SHOWN else "")
            self.data: bytes | None = raw[: 4 * self.MAX_SHOWN]
        else:
            self.data = None
        super().__init__(message + shown)


class TransportError(AkoolLabError):
    """A network operation failed (connection refused, reset, DNS, TLS...)."""


class ConnectionError(TransportError, builtins.ConnectionError):
    """Could not reach the service, or the connection dropped."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """A wait ran past its timeout. ``what`` says which wait and ``timeout`` for how long (seconds)."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        super().__init__(f"{what} did not complete within {timeout:g} s")


class ResponseFormatError(TransportError):
    """The service answered with something that is not the expected JSON envelope (HTML, empty body...)."""

    def __init__(self, endpoint: str, status: int, detail: str) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(f"{endpoint}: unexpected response (HTTP {status}): {detail}")


# --- errors the service answers with -------------------------------------------------------------


class AkoolError(AkoolLabError):
    """The service answered with a business code other than 1000.

    Attributes:
        code: the AKool code (for example 1101).
        msg: the service's own message.
        endpoint: the endpoint that answered (``"sessions.create"`` or a path).
        http_status: the HTTP status of the response, when there was one.
    """

    #: What the user can do about it; subclasses override.
    hint: str = "see the AKool error-code table"

    def __init__(self, code: int, msg: str, endpoint: str, *, http_status: int | None = None) -> None:
        self.code = code
        self.msg = msg
        self.endpoint = endpoint
        self.http_status = http_status
        super().__init__(f"{code} {msg} [{endpoint}]: {self.hint}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_akool_error, (type(self), self.code, self.msg, self.endpoint, self.http_status))


def _rebuild_akool_error(
    cls: type[AkoolError], code: int, msg: str, endpoint: str, http_status: int | None
) -> AkoolError:
    return cls(code, msg, endpoint, http_status=http_status)


class AuthError(AkoolError):
    """1101 (invalid or expired token/key) or 1102 (no authorization sent)."""

    hint = "the API key or token was rejected or missing; check AKOOL_API_KEY (or AKOOL_CLIENT_ID/SECRET)"


class InvalidParameterError(AkoolError):
    """1003: a parameter is missing or invalid."""

    hint = "a parameter is missing or invalid; check the request's fields against the API reference"


class NotFoundError(AkoolError):
    """1008, 1014, 1216: the content, resource or session does not exist."""

    hint = "the id does not exist (or belongs to another account); list the resources to find a valid id"


class PermissionDeniedError(AkoolError):
    """1009: the account may not do this."""

    hint = "this account is not allowed to do that; check the account's plan and the resource's owner"


class RateLimitError(AkoolError):
    """1005: operating too frequently."""

    hint = "too many requests; wait and retry (GET requests are retried automatically)"


class QuotaError(AkoolError):
    """1006, 1103, 1104, 1213, 1221: credits, payment or subscription."""

    hint = "the account lacks credits or a subscription; top up or change plan in the AKool dashboard"


class BusyError(AkoolError):
    """1215: live avatar processing busy (pick another avatar or retry later)."""

    hint = "the avatar is busy; retry later or pick another avatar from avatars.list()"


class SessionClosedError(AkoolError):
    """1219: the live avatar session is already closed."""

    hint = "the session is already closed; create a new one"


class ProcessingError(AkoolError):
    """1201, 1205, 1211, 1214, 1217, 1218: a server-side processing failure."""

    hint = "the service failed while processing; retry later, and report it to AKool if it persists"


_CODE_FAMILIES: dict[int, type[AkoolError]] = {
    1101: AuthError,
    1102: AuthError,
    1003: InvalidParameterError,
    1008: NotFoundError,
    1014: NotFoundError,
    1216: NotFoundError,
    1009: PermissionDeniedError,
    1005: RateLimitError,
    1006: QuotaError,
    1103: QuotaError,
    1104: QuotaError,
    1213: QuotaError,
    1221: QuotaError,
    1215: BusyError,
    1219: SessionClosedError,
    1201: ProcessingError,
    1205: ProcessingError,
    1211: ProcessingError,
    1214: ProcessingError,
    1217: ProcessingError,
    1218: ProcessingError,
}


def error_for_code(code: int, msg: str, endpoint: str, *, http_status: int | None = None) -> AkoolError:
    """Build the typed :class:`AkoolError` subclass for an AKool business ``code``."""
    cls = _CODE_FAMILIES.get(code, AkoolError)
    return cls(code, msg, endpoint, http_status=http_status)


# --- errors of a live session --------------------------------------------------------------------


class StreamError(AkoolLabError):
    """A live session (data channel) could not do what was asked."""


class StreamClosedError(StreamError):
    """The stream is closed (by the user, the server, or because the session ended)."""


class SessionFailedError(StreamError):
    """The session reached status 4 (failed) or 3 (ended) while the caller waited for it to be live."""

    def __init__(self, session_id: str, status: int, what: str) -> None:
        self.session_id = session_id
        self.status = status
        super().__init__(f"session {session_id} {what} (status {status})")


class ReplyIncompleteError(StreamError):
    """A reply did not complete (no ``fin`` before the timeout, or the stream dropped mid-reply).

    :attr:`reply` holds what did arrive (a partial reply), so nothing is lost.
    """

    def __init__(self, message: str, reply: object | None = None) -> None:
        self.reply = reply
        super().__init__(message)
