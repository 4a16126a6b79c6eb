"""Fault plans: what the simulator breaks on purpose, seeded and reproducible.

Grammar of a fault spec (``akool-lab sim --faults SPEC`` and ``POST /_sim/faults {"spec": SPEC}``)::

    SPEC  := RULE ("," RULE)*                      (";" also separates rules; spaces are ignored)
    RULE  := TARGET "=" VALUE

    REST endpoints, TARGET = token | session.create | session.detail | session.close | session.list |
        avatar.list | avatar.detail | avatar.create | voice.list | language.list | knowledge.list |
        knowledge.create | knowledge.detail | knowledge.update | knowledge.delete | * (every endpoint above):
      ENDPOINT=CODE:RATE      answer with CODE at this rate: a 4-digit AKool code (HTTP 200, e.g. 1005, 1215,
                              1218) or a 3-digit HTTP status (e.g. 500, 503; "5xx" means 500)
      ENDPOINT=slow:MS[:RATE] add MS milliseconds before answering (RATE defaults to 1)

    sessions:  session.fail=RATE           a new session fails (status 1 -> 4 instead of 2) at this rate
    stream:    chunk.drop=RATE             a bot chat chunk is not sent
               chunk.dup=RATE              a bot chat chunk is sent twice
               chunk.reorder=RATE          a bot chat chunk is swapped with the next one
               chunk.nofin=RATE            a reply's last chunk carries fin=false (per reply)
               ack.drop=RATE               a command gets no ack
               ack.delay=MS[:RATE]         a command's ack comes MS milliseconds late
               stream.disconnect=RATE      the server drops the WebSocket after a message it sent
               stream.disconnect_after=N   the server drops the WebSocket after its N-th message

Example: ``session.create=1215:0.2,session.detail=slow:300,chunk.drop=0.1,stream.disconnect_after=50``.
Every decision is drawn from a ``random.Random`` seeded by the simulator's seed and a name, so the same seed and
the same requests give the same faults. A JSON plan is either ``{"spec": SPEC}`` or an object of TARGET -> VALUE
(a number is accepted for the rates and for N).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENDPOINTS", "EndpointFault", "FaultPlan", "FaultSpecError"]

#: REST endpoint names, as used by fault rules and in the routes table.
ENDPOINTS = (
    "token",
    "session.create",
    "session.detail",
    "session.close",
    "session.list",
    "avatar.list",
    "avatar.detail",
    "avatar.create",
    "voice.list",
    "language.list",
    "knowledge.list",
    "knowledge.create",
    "knowledge.detail",
    "knowledge.update",
    "knowledge.delete",
)

_RATE_TARGETS = {
    "session.fail": "session_fail",
    "chunk.drop": "chunk_drop",
    "chunk.dup": "chunk_dup",
    "chunk.reorder": "chunk_reorder",
    "chunk.nofin": "chunk_nofin",
    "ack.drop": "ack_drop",
    "stream.disconnect": "disconnect_rate",
}


class FaultSpecError(ValueError):
    """A fault spec does not follow the grammar; the message names the rule."""


@dataclass(frozen=True, slots=True)
class EndpointFault:
    """One REST fault: an error ``code`` (AKool code or HTTP status) or a delay ``slow_ms``, at ``rate``."""

    rate: float
    code: int | None = None
    slow_ms: float | None = None

    @property
    def is_http(self) -> bool:
        """Whether ``code`` is an HTTP status (3 digits) rather than an AKool business code."""
        return self.code is not None and self.code < 1000


@dataclass(slots=True)
class FaultPlan:
    """What to break. Build one with :meth:`parse` (a spec string) or :meth:`from_json` (a JSON object)."""

    endpoints: dict[str, list[EndpointFault]] = field(default_factory=dict)
    session_fail: float = 0.0
    chunk_drop: float = 0.0
    chunk_dup: float = 0.0
    chunk_reorder: float = 0.0
    chunk_nofin: float = 0.0
    ack_drop: float = 0.0
    ack_delay_ms: float = 0.0
    ack_delay_rate: float = 0.0
    disconnect_rate: float = 0.0
    disconnect_after: int | None = None
    rules: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """Parse a spec string (see the module docstring); ``""`` or ``None`` is the empty plan."""
        plan = cls()
        for raw in (spec or "").replace(";", ",").split(","):
            rule = raw.replace(" ", "")
            if rule:
                plan._add(rule)
        return plan

    @classmethod
    def from_json(cls, body: object) -> FaultPlan:
        """A plan from ``{"spec": "..."}`` or an object of target -> value."""
        if not isinstance(body, Mapping):
            raise FaultSpecError("faults: expected a JSON object")
        if "spec" in body:
            spec = body["spec"]
            if not isinstance(spec, str):
                raise FaultSpecError("spec: expected a string")
            return cls.parse(spec)
        rules = []
        for key, value in body.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise FaultSpecError(f"{key}: expected a string or a number")
            rules.append(f"{key}={value}")
        return cls.parse(",".join(rules))

    @property
    def spec(self) -> str:
        """The plan as a spec string (parse(plan.spec) gives the same plan)."""
        return ",".join(self.rules)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly description of the plan."""
        return {"spec": self.spec, "rules": list(self.rules)}

    def _add(self, rule: str) -> None:
        target, sep, value = rule.partition("=")
        if not sep or not value:
            raise FaultSpecError(f"{rule}: expected TARGET=VALUE")
        if target in _RATE_TARGETS:
            setattr(self, _RATE_TARGETS[target], _rate(rule, value))
        elif target == "ack.delay":
            ms, _, rate = value.partition(":")
            self.ack_delay_ms = _ms(rule, ms)
            self.ack_delay_rate = _rate(rule, rate) if rate else 1.0
        elif target == "stream.disconnect_after":
            try:
                count = int(value)
            except ValueError:
                raise FaultSpecError(f"{rule}: expected a whole number of messages") from None
            if count < 1:
                raise FaultSpecError(f"{rule}: expected a number of messages >= 1")
            self.disconnect_after = count
        elif target == "*" or target in ENDPOINTS:
            fault = _endpoint_fault(rule, value)
            for name in ENDPOINTS if target == "*" else (target,):
                self.endpoints.setdefault(name, []).append(fault)
        else:
            raise FaultSpecError(f"{rule}: unknown target {target!r}")
        self.rules.append(rule)


def _endpoint_fault(rule: str, value: str) -> EndpointFault:
    head, _, rest = value.partition(":")
    if head == "slow":
        ms, _, rate = rest.partition(":")
        return EndpointFault(rate=_rate(rule, rate) if rate else 1.0, slow_ms=_ms(rule, ms))
    if not rest:
        raise FaultSpecError(f"{rule}: expected CODE:RATE or slow:MS[:RATE]")
    code_text = "500" if head.lower() == "5xx" else head
    if not code_text.isdigit() or len(code_text) not in (3, 4):
        raise FaultSpecError(f"{rule}: expected an AKool code (4 digits), an HTTP status (3 digits) or 5xx")
    code = int(code_text)
    if len(code_text) == 3 and not 400 <= code <= 599:
        raise FaultSpecError(f"{rule}: an HTTP status fault must be 400..599")
    if code == 1000:
        raise FaultSpecError(f"{rule}: 1000 is success, not a fault")
    return EndpointFault(rate=_rate(rule, rest), code=code)


def _rate(rule: str, text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise FaultSpecError(f"{rule}: expected a rate between 0 and 1, got {text!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise FaultSpecError(f"{rule}: expected a rate between 0 and 1, got {text!r}")
    return rate


def _ms(rule: str, text: str) -> float:
    try:
        ms = float(text.removesuffix("ms"))
    except ValueError:
        raise FaultSpecError(f"{rule}: expected milliseconds, got {text!r}") from None
    if ms < 0:
        raise FaultSpecError(f"{rule}: expected milliseconds >= 0, got {text!r}")
    return ms
