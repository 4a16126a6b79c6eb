"""What the emulated avatar answers in dialogue mode (mode 2): short, grammatical, deterministic per seed.

A real avatar's LLM answers a spoken question in a few sentences. The simulator does not understand the question;
it builds an answer of the same shape from templates, so that timings (speech length) and transcripts look like
the real thing:

- an opener ("Good question."),
- a sentence about the question's topic: the noun phrase the question asks about, used where a noun phrase fits
  ("What is the capital of France?" -> "... about the capital of France."; "What is an avatar good for?" ->
  "... about what an avatar is good for."; "How do I bake bread?" -> "... about how to bake bread."). When the
  question has no such phrase ("Why is the sky blue?"), the sentence quotes the question instead;
- with a knowledge base, a sentence quoting the start of its prompt;
- one or two general sentences, and sometimes a closing question.

That is three to six sentences, 20 to 60 words (median about 35): 8 to 24 seconds of speech at 150 words a
minute, the realistic profile's rate. The same seed, question, knowledge-base prompt and language always give the
same answer; another seed picks other templates.
"""

from __future__ import annotations

import hashlib
import random
import re

__all__ = ["dialogue_reply", "topic_of"]

_OPENERS = (
    "Good question.",
    "Happy to help with that.",
    "Sure.",
    "Thanks for asking.",
    "Of course.",
    "That is a great question.",
)
# {topic}: a noun phrase or a wh-clause ("the capital of France", "how to bake bread").
_TOPIC_SENTENCES = (
    "Here is what I can tell you about {topic}.",
    "There is a lot to say about {topic}, so I will keep it short.",
    "When it comes to {topic}, the short answer is that it depends on what you need.",
    "Questions about {topic} come up often, and the answer is simpler than it looks.",
    "Let me give you a short overview of {topic}.",
)
# {question}: the question itself, quoted (it ends with its own punctuation).
_QUOTING_SENTENCES = (
    'You asked, "{question}" Here is my short answer.',
    'Let me answer "{question}" as briefly as I can.',
    'To your question, "{question}" I would say this.',
)
# {question}: what the user said when it is not a question.
_QUOTING_STATEMENTS = (
    'You said, "{question}" Here is what I think.',
    'Thank you for telling me: "{question}" Let me add a thought.',
)
_SELF_SENTENCES = (
    "I am a simulated AKool avatar: I answer questions and speak whatever text I am given.",
    "I am the simulator's stand-in for an AKool avatar, here to talk and to be measured.",
)
_BODIES = (
    "Most people start with the simplest option and adjust from there.",
    "I would try it step by step and check each result before moving on.",
    "There are a few ways to look at it, and each has its trade-offs.",
    "It usually works best when you keep things small and measurable.",
    "A good first step is to write down what you want to achieve.",
    "If you have a specific case in mind, I can give you a more precise answer.",
    "A little preparation at the start usually saves a lot of time later.",
    "The details matter less than a clear picture of the goal.",
)
_CLOSERS = (
    "Anything else you would like to know?",
    "Does that answer your question?",
    "Tell me if you want more detail.",
    "I hope that helps.",
    None,
    None,
)

# Words that start a sentence but are not names (lower-cased when they start a topic phrase).
_COMMON = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "some",
        "any",
        "every",
        "each",
        "all",
        "no",
        "what",
        "which",
        "who",
        "how",
        "when",
        "where",
        "why",
        "whether",
        "to",
    ]
)
_PREPOSITIONS = frozenset(["for", "about", "of", "to", "with", "from", "in", "on", "at", "by", "like", "into"])
_SWAP = {"my": "your", "your": "my", "yours": "mine", "mine": "yours", "me": "you", "myself": "yourself"}
# Words that make a phrase a clause (or about the speaker), not a noun phrase we can reuse.
_CLAUSE_WORDS = frozenset(
    [
        "i",
        "we",
        "you",
        "yourself",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
    ]
)
_SELF_QUESTIONS = re.compile(
    r"^(who|what) (are|r) (you|u)$|^(tell me|talk) about yourself$|^what is your name$|^introduce yourself$"
)
# Prefixes that introduce the topic directly: what follows is a noun phrase.
_NP_PREFIXES = re.compile(
    r"^(?:(?:can|could|would|will) you (?:please )?|please )?"
    r"(?:tell me (?:more )?about|talk (?:to me )?about|teach me about|explain|describe|"
    r"what do you (?:know|think|say) (?:about|of)|what can you tell me about|"
    r"i(?: would|'d)? (?:want|like) to (?:know|learn|hear) (?:more )?about|what about|how about|"
    r"(?:what|who|where) (?:is|are|was|were|'s)|what's|who's|where's)\s+(?P<rest>.+)$"
)
_WHAT_BE = re.compile(r"^what (?P<be>is|are|was|were) (?P<rest>.+)$")
_HOW_TO = re.compile(r"^how (?:do|can|should|could|would|might) (?:i|we|you|one) (?P<rest>.+)$")
_INTERJECTION = re.compile(r"^(?:and|so|ok|okay|well|hi|hello|hey|um|but|also|now)\b[,!.]?\s*", re.IGNORECASE)
# Words before a stranded preposition that belong to the predicate ("good for", "made of", "used for").
_PREDICATE_WORDS = frozenset(
    [
        "good",
        "bad",
        "useful",
        "used",
        "made",
        "meant",
        "known",
        "famous",
        "responsible",
        "needed",
        "necessary",
        "important",
        "best",
        "better",
        "for",
    ]
)


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def _swap_pronouns(words: list[str]) -> list[str]:
    return [_SWAP.get(w, w) for w in words]


def _restore_case(phrase: list[str], original: str) -> str:
    """The phrase's words with their case from the question (names stay capitalised, the first word is lowered)."""
    cased = {w.lower(): w for w in re.findall(r"[\w'-]+", original)}
    out = []
    for i, word in enumerate(phrase):
        form = cased.get(word, word)
        if i == 0 and word in _COMMON:
            form = word
        out.append(form)
    return " ".join(out)


def topic_of(question: str) -> tuple[str, str | None]:
    """What the question asks about: ``("self", None)``, ``("phrase", <noun phrase or wh-clause>)`` or
    ``("quote", None)`` when it has no phrase that fits a sentence about a topic.

    >>> topic_of("What is the capital of France?")
    ('phrase', 'the capital of France')
    >>> topic_of("What is an avatar good for?")
    ('phrase', 'what an avatar is good for')
    >>> topic_of("How do I bake bread?")
    ('phrase', 'how to bake bread')
    """
    asked = not question.strip().endswith((".", "!"))
    text = " ".join(question.split()).strip().rstrip("?!.").strip()
    while True:
        stripped = _INTERJECTION.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    lowered = " ".join(_words(text))
    if not lowered:
        return ("quote", None)
    if _SELF_QUESTIONS.match(lowered):
        return ("self", None)
    how = _HOW_TO.match(lowered)
    if how:
        rest = _swap_pronouns(how.group("rest").split())
        if not _CLAUSE_WORDS.intersection(rest) and 1 <= len(rest) <= 8:
            return ("phrase", "how to " + _restore_case(rest, text))
        return ("quote", None)
    what = _WHAT_BE.match(lowered)
    if what:
        rest = what.group("rest").split()
        # "what is an avatar good for": the question word is the object of a stranded preposition (or of
        # "like"), so the topic is the clause "what an avatar is good for": subject, verb, then the predicate.
        if "like" in rest[1:]:
            cut = rest.index("like", 1)
        elif len(rest) >= 2 and rest[-1] in _PREPOSITIONS:
            cut = -2 if len(rest) >= 3 and (rest[-2] in _PREDICATE_WORDS or rest[-2].endswith("ed")) else -1
        else:
            cut = 0
        if cut:
            subject, predicate = _swap_pronouns(rest[:cut]), rest[cut:]
            if _CLAUSE_WORDS.intersection(subject) or len(rest) > 10:
                return ("quote", None)
            tail = _restore_case(predicate, text) if predicate[0] not in _COMMON else " ".join(predicate)
            return ("phrase", f"what {_restore_case(subject, text)} {what.group('be')} {tail}")
    direct = _NP_PREFIXES.match(lowered)
    if direct:
        rest = _swap_pronouns(direct.group("rest").split())
        if rest[-1] in _PREPOSITIONS or _CLAUSE_WORDS.intersection(rest) or len(rest) > 8:
            return ("quote", None)
        return ("phrase", _restore_case(rest, text))
    words = _swap_pronouns(lowered.split())
    # A bare noun phrase asked about ("Bicycles?", "The weather in Paris?"): short, and no verb we know of.
    if asked and len(words) <= 5 and not _CLAUSE_WORDS.intersection(words) and words[-1] not in _PREPOSITIONS:
        return ("phrase", _restore_case(words, text))
    return ("quote", None)


def _quoted(question: str) -> str:
    text = " ".join(question.split()).strip().replace('"', "'")
    if len(text) > 120:
        text = text[:117].rsplit(" ", 1)[0] + "..."
    return text if text[-1:] in ("?", "!", ".") else text + "?"  # no punctuation: taken as a question


def _prompt_sentence(prompt: str) -> str:
    words = prompt.split()
    start = " ".join(words[:12]).rstrip(".,;:!?").replace('"', "'")
    return f'My knowledge base starts with "{start}{"..." if len(words) > 12 else ""}", and I answer in that spirit.'


def dialogue_reply(question: str, *, seed: int, prompt: str | None = None, lang: str | None = None) -> str:
    """A deterministic answer to ``question``: the same seed, question, prompt and language give the same text.

    It names the question's topic (or quotes the question) and, when the session has a knowledge base, quotes the
    start of its prompt, so a test can see that both reached the answer. A language other than English is marked
    with a ``[lang]`` tag at the end (the simulator only speaks English).
    """
    key = f"{seed}\x00{question}\x00{prompt or ''}\x00{lang or ''}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    kind, phrase = topic_of(question)
    sentences = [rng.choice(_OPENERS)]
    if kind == "self":
        sentences.append(rng.choice(_SELF_SENTENCES))
    elif kind == "phrase" and phrase:
        template = rng.choice(_TOPIC_SENTENCES)
        sentences.append(template.format(topic=phrase, Topic=phrase[:1].upper() + phrase[1:]))
    elif question.strip():
        quoted = _quoted(question)
        templates = _QUOTING_SENTENCES if quoted.endswith("?") else _QUOTING_STATEMENTS
        sentences.append(rng.choice(templates).format(question=quoted))
    if prompt and prompt.strip():
        sentences.append(_prompt_sentence(prompt))
    sentences.extend(rng.sample(_BODIES, k=rng.choice((1, 1, 2))))  # mostly one: spoken answers are short
    closer = rng.choice(_CLOSERS)
    if closer:
        sentences.append(closer)
    if lang and not lang.lower().startswith("en"):
        sentences.append(f"[{lang}]")
    return " ".join(sentences)
