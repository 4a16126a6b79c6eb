"""The simulator's dialogue answers (mode 2): grammatical, deterministic per seed, a few sentences long."""

from __future__ import annotations

import re

import pytest

from akool_lab.sim._dialogue import dialogue_reply, topic_of
from akool_lab.sim._latency import PROFILES

QUESTIONS = [
    "What is the capital of France?",
    "What is an avatar good for?",
    "How do I bake bread?",
    "Tell me about rockets.",
    "What about bicycles?",
    "And trains?",
    "Who are you?",
    "Why is the sky blue?",
    "What can you tell me about latency?",
    "What is a lighthouse for?",
    "What is the weather like in Paris?",
    "Can you explain quantum computing?",
    "Is it going to rain tomorrow?",
    "Hello avatar, can you hear me?",
    "Repeat me exactly.",
    "What do you think about my plan?",
    "Hi! What is AKool?",
    "",
]


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (a quoted question stays inside its sentence)."""
    return [s for s in re.split(r'(?<=[.!?])(?<!\?")\s+(?=[A-Z\[])', text) if s]


@pytest.mark.parametrize(
    ("question", "phrase"),
    [
        ("What is the capital of France?", "the capital of France"),
        ("What is an avatar good for?", "what an avatar is good for"),
        ("What is a lighthouse for?", "what a lighthouse is for"),
        ("What are avatars made of?", "what avatars are made of"),
        ("What is the weather like in Paris?", "what the weather is like in Paris"),
        ("How do I bake bread?", "how to bake bread"),
        ("Tell me about rockets.", "rockets"),
        ("Can you explain quantum computing?", "quantum computing"),
        ("What do you think about my plan?", "your plan"),
        ("Hi! What is AKool?", "AKool"),
        ("And trains?", "trains"),
    ],
)
def test_the_topic_is_the_phrase_the_question_asks_about_in_a_form_that_fits_a_sentence(
    question: str, phrase: str
) -> None:
    assert topic_of(question) == ("phrase", phrase)
    assert phrase in dialogue_reply(question, seed=0)


@pytest.mark.parametrize("question", ["Why is the sky blue?", "Is it going to rain tomorrow?", "How does a car work?"])
def test_a_question_without_a_reusable_phrase_is_quoted_whole(question: str) -> None:
    assert topic_of(question) == ("quote", None)
    assert f'"{question}"' in dialogue_reply(question, seed=0)


def test_questions_about_the_avatar_get_an_answer_about_itself() -> None:
    for question in ("Who are you?", "What is your name?", "Tell me about yourself."):
        assert topic_of(question) == ("self", None)
        assert "AKool avatar" in dialogue_reply(question, seed=3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_are_a_few_well_formed_sentences(question: str, seed: int) -> None:
    answer = dialogue_reply(question, seed=seed)
    parts = sentences(answer)
    assert 3 <= len(parts) <= 6, parts
    assert 18 <= len(answer.split()) <= 70, answer
    for part in parts:
        assert part[0].isupper() and part[-1] in ".?!", part
        # The word salad this replaces ended sentences on a preposition ("You asked about avatar good for."); only
        # an embedded wh-clause may ("... about what an avatar is good for.").
        if re.search(r"\b(about|for|of|to|with|in)\.$", part):
            assert re.search(r"\bwhat .+ (is|are) (\w+ )?\w+\.$", part), part
    assert "  " not in answer and not re.search(r"\b(\w+) \1\b", answer.lower()), answer


def test_the_word_salad_of_the_old_answers_is_gone() -> None:
    answer = dialogue_reply("What is an avatar good for?", seed=0)
    assert "about avatar good for" not in answer and "what an avatar is good for" in answer


def test_the_same_seed_and_question_give_the_same_answer_and_other_seeds_vary_it() -> None:
    question = "What can you tell me about latency?"
    assert dialogue_reply(question, seed=5) == dialogue_reply(question, seed=5)
    assert len({dialogue_reply(question, seed=s) for s in range(8)}) >= 4
    assert dialogue_reply(question, seed=5) != dialogue_reply("What about bicycles?", seed=5)


def test_the_knowledge_base_prompt_is_quoted_and_a_language_is_tagged() -> None:
    answer = dialogue_reply("Who are you?", seed=0, prompt="You are Captain Flint, a pirate who loves maps and tea.")
    assert '"You are Captain Flint, a pirate who loves maps and tea"' in answer
    assert dialogue_reply("Hola?", seed=0, lang="es-ES").endswith("[es-ES]")
    assert "[" not in dialogue_reply("Hello?", seed=0, lang="en-US")


def test_on_the_realistic_profile_an_answer_takes_seconds_to_speak_in_proportion_to_its_words() -> None:
    realistic = PROFILES["realistic"]
    assert realistic.words_per_minute is not None
    ms_per_word = 60_000 / realistic.words_per_minute
    for question in filter(None, QUESTIONS):
        answer = dialogue_reply(question, seed=0)
        speak_ms = realistic.speak(answer, 1.0)
        assert speak_ms == pytest.approx(len(answer.split()) * ms_per_word)
        assert 5_000 <= speak_ms <= 30_000, (answer, speak_ms)  # seconds, like a spoken short answer
