"""Cost safety: the local journal of created sessions and the in-process registry of open ones.

A session costs credits until it is closed or its duration runs out, so every session this library creates is
remembered twice:

- in the **journal**, ``sessions.jsonl`` under ``$AKOOL_LAB_HOME`` (else the user's data dir): one JSON line when a
  session is created and one when it is closed. It survives a crashed kernel; ``sessions.reap()`` reads it.
  Lines hold ids, the base URL and a wall time, never a secret.
- in the **registry**, process-wide: the clients that still have open sessions. At interpreter exit each of them
  closes what it created (``close_all``).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["REGISTRY", "Journal", "JournalEntry", "Registry", "default_journal_path", "process_token"]

_log = logging.getLogger("akool_lab")

JOURNAL_FILE = "sessions.jsonl"


def default_journal_path() -> Path:
    """``$AKOOL_LAB_HOME/sessions.jsonl``, else ``sessions.jsonl`` in ``platformdirs.user_data_dir("akool_lab")``."""
    home = os.environ.get("AKOOL_LAB_HOME")
    if home:
        return Path(home) / JOURNAL_FILE
    import platformdirs  # only needed when no override is set

    return Path(platformdirs.user_data_dir("akool_lab")) / JOURNAL_FILE


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A journaled session that has no "closed" line yet.

    Attributes:
        id: the session id.
        base_url: the service it was created on (the real AKool, or a simulator's loopback URL).
        wall: ``time.time()`` at creation, for display.
        pid: the id of the process that created it (``None`` in journals written before it was recorded).
        process_token: what tells that process apart from a later one with the same pid (its start time).
    """

    id: str
    base_url: str
    wall: float
    pid: int | None = None
    process_token: str | None = None

    def creator_alive(self) -> bool:
        """Whether the process that created the session is still running (then the session may be in use)."""
        if self.pid is None:
            return False
        return process_token(self.pid) == self.process_token if self.process_token else _pid_exists(self.pid)


def process_token(pid: int) -> str | None:
    """A token identifying the process ``pid`` since it started (its start time on Linux), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) comes after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Journal:
    """An append-only JSON-lines file of ``created`` and ``closed`` events (safe across threads)."""

    _lock = threading.Lock()  # shared by every instance: they usually point at the same file

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_journal_path()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one write() per line in append mode, so lines from concurrent processes do not interleave
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)

    def created(self, session_id: str, base_url: str) -> None:
        """Record that ``session_id`` was created on ``base_url`` by this process."""
        pid = os.getpid()
        self._append(
            {
                "event": "created",
                "id": session_id,
                "base_url": base_url,
                "wall": time.time(),
                "pid": pid,
                "process_token": process_token(pid),
            }
        )

    def closed(self, session_id: str) -> None:
        """Record that ``session_id`` is closed (or otherwise finished: nothing is left to close)."""
        self._append({"event": "closed", "id": session_id})

    def open_entries(self, base_url: str | None = None) -> list[JournalEntry]:
        """The sessions created (on ``base_url``, when given) without a "closed" line, oldest first."""
        if not self.path.exists():
            return []
        created: dict[str, JournalEntry] = {}
        with self._lock, self.path.open(encoding="utf-8") as fh:
            lines = fh.readlines()
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                event, session_id = entry["event"], str(entry["id"])
            except (ValueError, KeyError, TypeError):
                # a crash can leave half a line; skip it rather than lose the rest of the journal
                _log.debug("%s:%d: skipping a malformed journal line", self.path, number)
                continue
            if event == "created":
                pid = entry.get("pid")
                token = entry.get("process_token")
                created[session_id] = JournalEntry(
                    session_id,
                    str(entry.get("base_url", "")),
                    float(entry.get("wall", 0)),
                    pid if isinstance(pid, int) else None,
                    token if isinstance(token, str) else None,
                )
            elif event == "closed":
                created.pop(session_id, None)
        return [e for e in created.values() if base_url is None or e.base_url.rstrip("/") == base_url.rstrip("/")]


class Registry:
    """The process-wide set of open sessions, each with the function that closes it.

    At interpreter exit (``atexit``) every remaining session is closed; failures are logged and left to the journal.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closers: dict[str, Callable[[], None]] = {}
        self._atexit_registered = False

    def add(self, session_id: str, close: Callable[[], None]) -> None:
        """Remember an open session and how to close it."""
        with self._lock:
            self._closers[session_id] = close
            if not self._atexit_registered:
                atexit.register(self.close_all)
                self._atexit_registered = True

    def discard(self, session_id: str) -> None:
        """Forget a session (it was closed)."""
        with self._lock:
            self._closers.pop(session_id, None)

    def ids(self) -> list[str]:
        """The ids of the sessions still open in this process."""
        with self._lock:
            return list(self._closers)

    def clear(self) -> None:
        """Forget every session without closing it (for tests)."""
        with self._lock:
            self._closers.clear()

    def close_all(self) -> list[str]:
        """Close every registered session; returns the ids closed without error."""
        with self._lock:
            pending = list(self._closers.items())
        closed = []
        for session_id, close in pending:
            try:
                close()
            except Exception as exc:  # at exit nothing may stop the other closes; the journal keeps the id for reap()
                _log.warning(
                    "could not close session %s at exit (%s); run `akool-lab reap`", session_id, type(exc).__name__
                )
            else:
                closed.append(session_id)
            self.discard(session_id)
        return closed


#: The registry of this process.
REGISTRY = Registry()
