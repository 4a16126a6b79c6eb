"""Throughput of ``encode_chat`` on 1 MB of mixed-script text, in MB/s (a benchmark, not a timed test).

Run: ``.venv/bin/python benchmarks/bench_chunker.py`` (``--quick`` for fewer repeats).
"""

from __future__ import annotations

import statistics
import sys
import time

from akool_lab.protocol import PROVIDERS, ProviderBudget, encode_chat

#: Sentences in several scripts; repeated to 1 MB, so the chunker meets ASCII, 2-, 3- and 4-byte characters,
#: sentence ends of both kinds, and a few characters JSON must escape.
_SAMPLES = (
    "The quick brown fox jumps over the lazy dog. ",
    'She said "hello" and left a backslash \\ behind!\n',
    "敏捷的棕色狐狸跳过了懒狗。我们明天见！",
    "Déjà vu: a café, a naïve façade, and crème brûlée? ",
    "Party time 🎉🎉 with friends 👩‍👩‍👧 and pizza 🍕. ",
    "素早い茶色の狐が怠け者の犬を飛び越える。",
)
_TARGET_BYTES = 1_000_000


def mixed_text(target_bytes: int = _TARGET_BYTES) -> str:
    """About ``target_bytes`` of UTF-8 text mixing English, CJK, accents and emoji."""
    unit = "".join(_SAMPLES)
    repeats = target_bytes // len(unit.encode("utf-8")) + 1
    return unit * repeats


def _run_once(text: str, budget: ProviderBudget) -> float:
    size = len(text.encode("utf-8"))
    start = time.perf_counter()
    encode_chat(text, mid="msg-bench-1", budget=budget)
    return size / 1e6 / (time.perf_counter() - start)


def throughput(budget: ProviderBudget, repeats: int = 5, text: str | None = None) -> list[float]:
    """MB/s of ``repeats`` runs of ``encode_chat`` on 1 MB of mixed text under ``budget``."""
    text = mixed_text() if text is None else text
    return [_run_once(text, budget) for _ in range(repeats)]


def chunker_mb_per_s(quick: bool = False) -> float:
    """The median ``encode_chat`` throughput (MB/s) over every provider budget; ``quick`` runs fewer repeats."""
    text = mixed_text()
    repeats = 1 if quick else 5
    return statistics.median(mbs for budget in PROVIDERS.values() for mbs in throughput(budget, repeats, text))


def main() -> None:
    """Print min/median/max MB/s for each provider budget, then the overall median."""
    quick = "--quick" in sys.argv
    text = mixed_text()
    for name, budget in PROVIDERS.items():
        runs = throughput(budget, 1 if quick else 5, text)
        print(f"{name:10s} min {min(runs):6.1f}  median {statistics.median(runs):6.1f}  max {max(runs):6.1f} MB/s")
    print(f"overall median: {chunker_mb_per_s(quick):.1f} MB/s")


if __name__ == "__main__":
    main()
