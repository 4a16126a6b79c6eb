"""The value types several layers share: a session and its credentials, a reply and its timings.

They sit at the bottom of the package (beside :mod:`akool_lab.errors` and :mod:`akool_lab.events`) and import
nothing but those, so the REST client that creates a session, the transport that joins its room, the live layer that
answers with replies, and the metrics and widgets that read them can all use them without importing each other.
Each is also exported where a user meets it first: ``akool_lab.api.Session``, ``akool_lab.live.Reply``.

- :class:`Session`, :class:`SessionStatus`, :class:`Credentials` and its provider classes: built by ``akool_lab.api``.
- :class:`Reply`, :class:`ReplyTimings`, :class:`Ack`, :class:`TranscriptEntry`, :func:`derive_timings`: built by
  ``akool_lab.live``; :func:`derive_timings` is also what ``akool_lab.metrics`` uses on recorded events, and
  :func:`default_reply_timeout` is how long both wait for a reply by default.
- :mod:`akool_lab.types.lenient`: the liberal JSON readers the models are built with.
"""

from __future__ import annotations

from akool_lab.types._reply import Ack, Reply, ReplyTimings, TranscriptEntry, default_reply_timeout, derive_timings
from akool_lab.types._session import (
    AgoraCredentials,
    Credentials,
    LiveKitCredentials,
    Session,
    SessionStatus,
    TrtcCredentials,
    parse_credentials,
)

__all__ = [
    "Ack",
    "AgoraCredentials",
    "Credentials",
    "LiveKitCredentials",
    "Reply",
    "ReplyTimings",
    "Session",
    "SessionStatus",
    "TranscriptEntry",
    "TrtcCredentials",
    "default_reply_timeout",
    "derive_timings",
    "parse_credentials",
]
