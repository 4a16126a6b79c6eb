"""The one small interface every data-channel transport implements."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from akool_lab.protocol.limits import ProviderBudget

__all__ = ["Frame", "Transport"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One message received on the data channel.

    Attributes:
        data: the message's bytes (UTF-8 JSON for the v2 protocol).
        t_ns: arrival time, in integer ns on the transport's ``clock``, taken as soon as the frame arrived.
        clock: the clock ``t_ns`` is on (``"kernel"`` or ``"browser:<id>"``); see :mod:`akool_lab.events`.
    """

    data: bytes
    t_ns: int
    clock: str


class Transport(abc.ABC):
    """How data-channel bytes travel between this process and the avatar.

    A transport is used from the I/O loop thread only. Its life: :meth:`connect`, then any number of
    :meth:`send` calls while :meth:`frames` is being iterated, then :meth:`close`. The frame iterator ends when
    the transport closes (by either side); :attr:`close_reason` then says why.

    Attributes:
        budget: the provider's byte budget and pacing profile.
        clock: the clock of the timestamps this transport produces (sends and arrivals share it).

    Abilities: what a transport does differently is declared here, as class attributes a subclass overrides, so
    that the layers above read them instead of probing the object (``AvatarStream`` and ``LiveSession`` do):

    - :attr:`paces_itself`: the far end applies the provider's pacing.
    - :attr:`requires_idle_kernel`: received frames arrive only while the Jupyter kernel is idle.
    - :attr:`pushes_frames`: :meth:`set_receiver` can hand frames over from the read callback.
    """

    budget: ProviderBudget
    clock: str

    paces_itself: bool = False
    """True when the far end (e.g. the browser stage) applies the provider's pacing itself, so the caller must not
    pace again."""

    requires_idle_kernel: bool = False
    """True when received frames reach Python only while the kernel is idle (the browser stage's widget messages):
    a blocking call on the kernel's main thread would wait for replies queued behind itself, so the blocking facade
    refuses it with a clear error (see ``ensure_blocking_call_allowed``)."""

    pushes_frames: bool = False
    """True when :meth:`set_receiver` can hand each frame over from the transport's own read callback (saving two
    task wake-ups a frame); otherwise every frame comes through :meth:`frames`."""

    @abc.abstractmethod
    async def connect(self, timeout: float) -> None:
        """Open the channel; raise ``akool_lab.errors.ConnectionError`` or ``TimeoutError`` on failure."""

    @abc.abstractmethod
    async def send(self, data: bytes) -> int:
        """Send one message; return the time it was handed to the network, in ns on :attr:`clock`.

        Raises ``akool_lab.errors.StreamClosedError`` when the channel is closed.
        """

    def send_now(self, data: bytes) -> int | None:
        """Send one message at once, without awaiting, when that needs no waiting (nothing queued, no back-pressure);
        return the time it was handed to the network, as :meth:`send` does, or ``None`` when it cannot be sent so
        now (then nothing was sent: use :meth:`send`). Lets a caller on the I/O thread send from a plain callback,
        without a task. The default never can.

        Raises ``akool_lab.errors.StreamClosedError`` (and sent nothing) when the channel is closed.
        """
        return None

    @abc.abstractmethod
    def frames(self) -> AsyncIterator[Frame]:
        """The received frames, in arrival order; the iterator ends when the channel closes."""

    def set_receiver(self, receiver: Callable[[Frame], None] | None) -> bool:
        """Ask for each received frame to be handed to ``receiver(frame)`` as soon as it arrives (on the I/O thread,
        from the transport's own read callback) instead of through :meth:`frames`; ``None`` stops it.

        Returns whether the transport does so (never when :attr:`pushes_frames` is False, the default: then every
        frame comes through :meth:`frames`). Either way :meth:`frames` must still be iterated: it ends when the channel closes, and
        yields any frame the transport could not push. ``receiver`` must not raise.
        """
        return False

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the channel (idempotent)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """Whether the channel is closed."""

    @property
    def close_reason(self) -> str | None:
        """Why the channel closed (``None`` while open or when closed by :meth:`close`)."""
        return None

    def describe(self) -> str:
        """A one-line, secret-free description for reprs and logs."""
        return f"{type(self).__name__}({self.budget.name})"
