"""Reassembler: replies put back together by (sender, mid), whatever the order, duplicates and losses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from akool_lab.errors import ValidationError
from akool_lab.protocol import ChatChunk, ReassembledReply, Reassembler

MS = 1_000_000


def _bot(idx: int, text: str, fin: bool = False, mid: str = "r1") -> ChatChunk:
    return ChatChunk(mid, idx, fin, text, "bot")


def test_a_reply_completes_when_fin_and_every_chunk_have_arrived() -> None:
    r = Reassembler(timeout_ns=5000 * MS)
    assert r.feed(_bot(0, "Hello, "), now=10) is None
    reply = r.feed(_bot(1, "world", fin=True), now=30)
    assert reply == ReassembledReply("r1", "bot", "Hello, world", (10, 30), 10, 30, True, (), 2, None)


def test_a_fin_before_the_other_chunks_waits_for_them() -> None:
    r = Reassembler(timeout_ns=5000 * MS)
    assert r.feed(_bot(2, "c", fin=True), now=1) is None
    assert r.feed(_bot(0, "a"), now=2) is None
    reply = r.feed(_bot(1, "b"), now=3)
    assert reply is not None and reply.text == "abc" and reply.chunk_times == (2, 3, 1)


chunk_lists = st.lists(st.text(max_size=10), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(texts=chunk_lists, data=st.data())
def test_any_permutation_and_duplication_gives_the_same_reply(texts: list[str], data: st.DataObject) -> None:
    chunks = [_bot(i, t, fin=i == len(texts) - 1) for i, t in enumerate(texts)]
    extra = data.draw(st.lists(st.sampled_from(chunks), max_size=10))
    order = data.draw(st.permutations(chunks + extra))
    r = Reassembler(timeout_ns=5000 * MS)
    replies = [reply for chunk in order if (reply := r.feed(chunk, now=7)) is not None]
    assert len(replies) == 1
    assert (replies[0].text, replies[0].complete, replies[0].chunks) == ("".join(texts), True, len(texts))
    assert r.pending == 0


def test_a_duplicate_keeps_its_first_arrival_time() -> None:
    r = Reassembler(timeout_ns=5000 * MS)
    r.feed(_bot(0, "a"), now=1)
    r.feed(_bot(0, "a"), now=2)
    reply = r.feed(_bot(1, "b", fin=True), now=3)
    assert reply is not None and reply.chunk_times == (1, 3)


def test_a_late_duplicate_after_completion_is_ignored() -> None:
    r = Reassembler(timeout_ns=5000 * MS)
    r.feed(_bot(0, "a", fin=True), now=1)
    assert r.feed(_bot(0, "a", fin=True), now=2) is None
    assert r.pending == 0


def test_user_speech_and_bot_replies_with_the_same_mid_stay_apart() -> None:
    r = Reassembler(timeout_ns=5000 * MS)
    r.feed(ChatChunk("x", 0, False, "user says", "user"), now=1)
    bot = r.feed(ChatChunk("x", 0, True, "bot says", "bot"), now=2)
    user = r.feed(ChatChunk("x", 1, True, " more", "user"), now=3)
    assert bot is not None and bot.text == "bot says"
    assert user is not None and (user.sender, user.text) == ("user", "user says more")


def test_a_reply_without_fin_expires_as_incomplete_with_what_arrived() -> None:
    r = Reassembler(timeout_ns=100 * MS)
    r.feed(_bot(0, "a"), now=0)
    r.feed(_bot(2, "c"), now=50 * MS)
    assert r.expire(now=150 * MS) == []  # the last chunk is only 100 ms old: not more than the timeout
    (reply,) = r.expire(now=151 * MS)
    assert (reply.complete, reply.text, reply.missing, reply.reason) == (False, "ac", (1,), "no fin before timeout")
    assert r.pending == 0


def test_a_reply_with_fin_but_a_gap_expires_with_the_gap_named() -> None:
    r = Reassembler(timeout_ns=100 * MS)
    r.feed(_bot(0, "a"), now=0)
    r.feed(_bot(3, "d", fin=True), now=0)
    (reply,) = r.expire(now=200 * MS)
    assert reply.missing == (1, 2) and reply.reason == "missing chunks before timeout"


def test_flush_gives_up_a_reply_at_once() -> None:
    r = Reassembler(timeout_ns=5000 * MS)
    r.feed(_bot(0, "partial"), now=5)
    reply = r.flush("r1")
    assert reply is not None and (reply.complete, reply.text, reply.reason) == (False, "partial", "flushed")
    assert r.flush("r1") is None


def test_a_non_positive_timeout_is_rejected() -> None:
    try:
        Reassembler(timeout_ns=0)
    except ValidationError as exc:
        assert exc.field == "timeout_ns"
    else:
        raise AssertionError("expected a ValidationError")
