"""Every endpoint, sync and async: the request it sends and the typed result it parses (AKOOL_API.md section 3)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from akool_lab.api import AgoraCredentials, AvatarDetail, Knowledge, Language, Page, Session, SessionStatus, Voice

from .conftest import Harness, ok, session_json

CREATE = "/api/open/v4/liveAvatar/session/create"
DETAIL = "/api/open/v4/liveAvatar/session/detail"
CLOSE = "/api/open/v4/liveAvatar/session/close"
LIST = "/api/open/v4/liveAvatar/session/list"


def query(harness: Harness) -> dict[str, list[str]]:
    return parse_qs(harness.server.requests[-1].url.query.decode())


def test_create_session_posts_the_fields_and_returns_a_typed_session(harness: Harness) -> None:
    harness.server.on("POST", CREATE, ok(session_json()))
    client = harness.client()
    session = harness.run(client.sessions.create("dvp_Tristan", duration=120, language="en", mode_type=2))
    assert harness.server.body() == {"avatar_id": "dvp_Tristan", "duration": 120, "language": "en", "mode_type": 2}
    assert harness.server.requests[-1].headers["x-api-key"]
    assert isinstance(session, Session)
    assert session.id == "66a0c0ffee0000000000abcd"
    assert session.status is SessionStatus.QUEUEING
    assert isinstance(session.credentials, AgoraCredentials)
    assert session.credentials.uid == 100001
    assert session.credentials.token == "rtc-tok-9f8e7d6c"


def test_create_session_sends_the_default_duration_when_none_is_given(harness: Harness) -> None:
    harness.server.on("POST", CREATE, ok(session_json()))
    harness.run(harness.client().sessions.create("dvp_Tristan"))
    assert harness.server.body()["duration"] == 300


def test_session_get_queries_detail_by_id(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, ok(session_json(status=2)))
    session = harness.run(harness.client().sessions.get("66a0c0ffee0000000000abcd"))
    assert query(harness) == {"id": ["66a0c0ffee0000000000abcd"]}
    assert session.status is SessionStatus.LIVE


@pytest.mark.parametrize(
    "reply",
    [ok(), ok({"session_id": "s1", "status": "closed", "closed_at": 1700000000000})],
    ids=["bare-envelope", "with-data"],
)
def test_session_close_sends_id_and_accepts_both_reply_shapes(harness: Harness, reply: dict[str, object]) -> None:
    harness.server.on("POST", CLOSE, reply)
    assert harness.run(harness.client().sessions.close("s1")) is None
    assert harness.server.body() == {"id": "s1"}


def test_session_list_returns_a_page_with_count(harness: Harness) -> None:
    harness.server.on("GET", LIST, ok({"count": 7, "result": [session_json("a"), session_json("b", status=3)]}))
    page = harness.run(harness.client().sessions.list(page=2, size=2, status=3))
    assert query(harness) == {"page": ["2"], "size": ["2"], "status": ["3"]}
    assert isinstance(page, Page)
    assert (page.count, page.page, page.size) == (7, 2, 2)
    assert [s.id for s in page] == ["a", "b"]


def test_session_iter_walks_every_page_until_count_is_reached(harness: Harness) -> None:
    harness.server.on(
        "GET",
        LIST,
        ok({"count": 3, "result": [session_json("a"), session_json("b")]}),
        ok({"count": 3, "result": [session_json("c")]}),
    )
    ids = [s.id for s in harness.run(harness.client().sessions.iter(size=2))]
    assert ids == ["a", "b", "c"]
    assert [parse_qs(r.url.query.decode())["page"] for r in harness.server.requests] == [["1"], ["2"]]


def test_avatar_list_parses_avatars(harness: Harness) -> None:
    avatar = {
        "_id": "x1",
        "uid": 1,
        "type": 2,
        "from": 2,
        "avatar_id": "dvp_Tristan",
        "voice_id": "v1",
        "name": "Tristan",
        "url": "https://cdn/x.mp4",
        "thumbnailUrl": "https://cdn/x.png",
        "gender": "male",
        "available": True,
    }
    harness.server.on("GET", "/api/open/v4/liveAvatar/avatar/list", ok({"count": 1, "result": [avatar]}))
    page = harness.run(harness.client().avatars.list(page=1, size=50))
    assert query(harness) == {"page": ["1"], "size": ["50"]}
    (first,) = page.items
    assert (first.avatar_id, first.available, first.source, first.thumbnail_url) == (
        "dvp_Tristan",
        True,
        2,
        "https://cdn/x.png",
    )


def test_avatar_get_returns_a_detail_with_platform(harness: Harness) -> None:
    harness.server.on(
        "GET", "/api/open/v4/liveAvatar/avatar/detail", ok({"avatar_id": "a1", "platform": "open", "status": 3})
    )
    detail = harness.run(harness.client().avatars.get("a1"))
    assert query(harness) == {"avatar_id": ["a1"]}
    assert isinstance(detail, AvatarDetail)
    assert detail.platform == "open"


def test_avatar_upload_posts_type_2(harness: Harness) -> None:
    harness.server.on("POST", "/api/open/v3/avatar/create", ok({"avatar_id": "Mine1", "status": 1}))
    detail = harness.run(harness.client().avatars.upload(url="https://cdn/v.mp4", avatar_id="Mine1", name="Me"))
    assert harness.server.body() == {
        "url": "https://cdn/v.mp4",
        "avatar_id": "Mine1",
        "name": "Me",
        "type": 2,
        "url_from": 1,
    }
    assert detail.status == 1


def test_voice_list_sends_filters_and_parses_voices(harness: Harness) -> None:
    voice = {
        "_id": "i",
        "voice_id": "v1",
        "name": "Ann",
        "support_stream": True,
        "voice_model_name": "Akool Multilingual 1",
    }
    harness.server.on("GET", "/api/open/v4/voice/list", ok({"result": [voice], "count": 1, "page": 1, "size": 10}))
    page = harness.run(harness.client().voices.list(type=2, support_stream=True, gender=["Male", "Female"]))
    assert query(harness) == {
        "type": ["2"],
        "page": ["1"],
        "size": ["10"],
        "support_stream": ["1"],
        "gender": ["Male,Female"],
    }
    assert isinstance(page.items[0], Voice)
    assert page.items[0].support_stream is True


def test_language_list_reads_lang_list(harness: Harness) -> None:
    harness.server.on(
        "GET",
        "/api/open/v3/language/list",
        ok({"lang_list": [{"lang_code": "af-ZA", "lang_name": "Afrikaans", "url": "u"}]}),
    )
    languages = harness.run(harness.client().languages.list())
    assert languages == [Language(code="af-ZA", name="Afrikaans", url="u")]


@pytest.mark.parametrize(
    "data",
    [[{"_id": "k1", "name": "faq"}], {"knowledge_list": [{"_id": "k1", "name": "faq"}], "count": 1}],
    ids=["array", "knowledge_list"],
)
def test_knowledge_list_accepts_both_shapes(harness: Harness, data: object) -> None:
    harness.server.on("GET", "/api/open/v4/knowledge/list", ok(data))
    page = harness.run(harness.client().knowledge.list())
    assert [k.id for k in page] == ["k1"]
    assert page.count == 1


def test_knowledge_get_create_update_delete(harness: Harness) -> None:
    kb = {"_id": "k1", "name": "faq", "prologue": "Hi", "prompt": "Be brief", "docs": [], "urls": ["https://a.b/"]}
    server = harness.server
    server.on("GET", "/api/open/v4/knowledge/detail", ok(kb))
    server.on("POST", "/api/open/v4/knowledge/create", ok(kb))
    server.on("POST", "/api/open/v4/knowledge/update", ok())
    server.on("DELETE", "/api/open/v4/knowledge/delete", ok())
    client = harness.client()
    assert harness.run(client.knowledge.get("k1")) == Knowledge.from_json(kb)
    created = harness.run(client.knowledge.create(name="faq", prologue="Hi", urls=["https://a.b/"]))
    assert server.body() == {"name": "faq", "prologue": "Hi", "urls": ["https://a.b/"]}
    assert created.urls == ("https://a.b/",)
    assert harness.run(client.knowledge.update("k1", prompt="Be brief")) is None
    assert server.body() == {"id": "k1", "prompt": "Be brief"}
    harness.run(client.knowledge.delete("k1"))
    assert server.requests[-1].method == "DELETE"
    assert server.body() == {"id": "k1"}
