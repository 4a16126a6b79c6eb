"""The browser's pacer (``Pacer`` in stage.js) spaces messages exactly like ``akool_lab.protocol.Pacer``.

Runs the ES module's exported ``Pacer`` under Node.js (skipped when ``node`` is not installed) on the same message
sizes and arrival times as the Python pacer, for every provider budget.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from akool_lab.protocol import Pacer
from akool_lab.protocol.limits import PROVIDERS
from akool_lab.widgets.stage import _budget_state

STAGE_JS = Path(__file__).parents[2] / "akool_lab" / "widgets" / "static" / "stage.js"
NODE = shutil.which("node")

_SCRIPT = """
const { Pacer } = await import(process.argv[1]);
const { budget, messages } = JSON.parse(process.argv[2]);
const pacer = new Pacer(budget);
console.log(JSON.stringify(messages.map(([size, now]) => pacer.delayFor(size, now))));
"""


@pytest.mark.skipif(NODE is None, reason="needs Node.js to run the stage's ES module")
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_browser_pacer_matches_the_python_pacer(provider: str) -> None:
    rng = random.Random(provider)
    now_ms, messages = 1000.0, []
    for _ in range(60):
        now_ms += rng.choice([0.0, 0.0, 5.0, 50.0, 400.0])  # bursts, trickles and pauses
        messages.append((rng.randint(1, 960), now_ms))
    budget = PROVIDERS[provider]

    result = subprocess.run(
        [NODE or "node", "--input-type=module", "-e", _SCRIPT, STAGE_JS.as_uri(),
         json.dumps({"budget": _budget_state(budget), "messages": messages})],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    js_delays_ms = json.loads(result.stdout)

    pacer = Pacer(budget)
    py_delays_ms = [pacer.delay_for(size, round(t * 1e6)) / 1e6 for size, t in messages]
    assert js_delays_ms == pytest.approx(py_delays_ms, abs=1e-3)
    if budget.bytes_per_second:
        assert max(js_delays_ms) > 0, "the bursts were paced"
