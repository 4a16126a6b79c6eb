"""The simulator's fixed catalogue: official streaming avatars, voices and languages (fake but well-formed)."""

from __future__ import annotations

from typing import Any

__all__ = ["AVATARS", "DEFAULT_AVATAR_ID", "LANGUAGES", "VOICES"]

DEFAULT_AVATAR_ID = "dvp_Tristan_cloth2_1080P"
_CDN = "https://sim.akool.invalid"


def _avatar(index: int, avatar_id: str, name: str, gender: str, voice_id: str, available: bool) -> dict[str, Any]:
    return {
        "_id": f"65a0000000000000000000{index:02x}",
        "uid": 1,
        "type": 2,
        "from": 2,
        "avatar_id": avatar_id,
        "voice_id": voice_id,
        "name": name,
        "url": f"{_CDN}/avatars/{avatar_id}.mp4",
        "thumbnailUrl": f"{_CDN}/avatars/{avatar_id}.png",
        "gender": gender,
        "available": available,
    }


#: Official streaming avatars. One is unavailable, as some are on AKool (creating a session with it -> 1215).
AVATARS: list[dict[str, Any]] = [
    _avatar(1, DEFAULT_AVATAR_ID, "Tristan", "male", "sim_voice_en_male_1", True),
    _avatar(2, "dvp_Alinna_realisticbg_20241224", "Alinna", "female", "sim_voice_en_female_1", True),
    _avatar(3, "dvp_Emma_office_1080P", "Emma in the office", "female", "sim_voice_en_female_2", True),
    _avatar(4, "dvp_Marcus_studio_720P", "Marcus in the studio", "male", "sim_voice_en_male_2", True),
    _avatar(5, "dvp_Sofia_busy_1080P", "Sofia (busy)", "female", "sim_voice_es_female_1", False),
]


def _voice(
    index: int, voice_id: str, name: str, gender: str, locale: str, type_: int, model: str, stream: bool
) -> dict[str, Any]:
    return {
        "_id": f"66b0000000000000000000{index:02x}",
        "uid": 1 if type_ == 2 else 101,
        "team_id": "sim-team",
        "type": type_,
        "voice_id": voice_id,
        "gender": gender,
        "language": locale.split("-")[0],
        "locale": locale,
        "name": name,
        "preview": f"{_CDN}/voices/{voice_id}.mp3",
        "text": "Hello, this is a preview of my voice.",
        "duration": 3200,
        "status": 3,
        "create_time": 1_735_689_600_000 + index,
        "update_time": 1_735_689_600_000 + index,
        "style": ["Friendly"],
        "scenario": ["Assistant"],
        "age": ["Middle"],
        "deduction_credit": 0,
        "webhookUrl": "",
        "voice_model_name": model,
        "support_stream": stream,
    }


#: Voices: type 2 are stock voices, type 1 cloned ones; "Akool Multilingual 2" voices cannot stream.
VOICES: list[dict[str, Any]] = [
    _voice(1, "sim_voice_en_male_1", "Ethan", "Male", "en-US", 2, "Akool Multilingual 1", True),
    _voice(2, "sim_voice_en_female_1", "Ava", "Female", "en-US", 2, "Akool Multilingual 1", True),
    _voice(3, "sim_voice_en_male_2", "Oliver", "Male", "en-GB", 2, "Akool Multilingual 3", True),
    _voice(4, "sim_voice_en_female_2", "Grace", "Female", "en-GB", 2, "Akool Multilingual 3", True),
    _voice(5, "sim_voice_es_female_1", "Lucia", "Female", "es-ES", 2, "Akool Multilingual 1", True),
    _voice(6, "sim_voice_fr_male_1", "Louis", "Male", "fr-FR", 2, "Akool Multilingual 2", False),
    _voice(7, "sim_voice_de_female_1", "Hanna", "Female", "de-DE", 2, "Akool Multilingual 2", False),
    _voice(8, "sim_clone_alex", "Alex (clone)", "Male", "en-US", 1, "Akool Multilingual 1", True),
    _voice(9, "sim_clone_maria", "Maria (clone)", "Female", "es-MX", 1, "Akool Multilingual 2", False),
]


def _lang(code: str, name: str) -> dict[str, str]:
    return {"lang_code": code, "lang_name": name, "url": f"{_CDN}/flags/{code}.png"}


LANGUAGES: list[dict[str, str]] = [
    _lang("en-US", "English (United States)"),
    _lang("en-GB", "English (United Kingdom)"),
    _lang("es-ES", "Spanish (Spain)"),
    _lang("fr-FR", "French (France)"),
    _lang("de-DE", "German (Germany)"),
    _lang("it-IT", "Italian (Italy)"),
    _lang("ja-JP", "Japanese (Japan)"),
    _lang("zh-CN", "Chinese (Mandarin, Simplified)"),
    _lang("af-ZA", "Afrikaans (South Africa)"),
]
