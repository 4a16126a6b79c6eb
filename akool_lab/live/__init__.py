"""Live sessions: talk to the avatar from a cell, a script, a thread, a widget callback or an async program.

- :class:`AvatarStream`: the async core (``say``, ``ask``, ``stream``, ``set_params``, ``interrupt``, ``chat``...).
- :class:`LiveSession`: its blocking facade, with the same methods.
- :func:`io_loop`: the process's one background I/O thread, where all data-channel I/O runs.
- :func:`connect_sync`, :func:`connect_async`: open a session's data channel given a REST client (what
  ``client.connect`` runs).
"""

from __future__ import annotations

from akool_lab.live._connect import AsyncSessionClient, SessionClient, connect_async, connect_sync
from akool_lab.live._llm import ChatTurn, SentenceSplitter
from akool_lab.live._loop import IOLoop, io_loop
from akool_lab.live._session import LiveSession
from akool_lab.live._stream import EVENTS, AvatarStream
from akool_lab.types import Ack, Reply, ReplyTimings, TranscriptEntry, default_reply_timeout, derive_timings

__all__ = [
    "EVENTS",
    "Ack",
    "AsyncSessionClient",
    "AvatarStream",
    "ChatTurn",
    "IOLoop",
    "LiveSession",
    "Reply",
    "ReplyTimings",
    "SentenceSplitter",
    "SessionClient",
    "TranscriptEntry",
    "connect_async",
    "connect_sync",
    "default_reply_timeout",
    "derive_timings",
    "io_loop",
]
