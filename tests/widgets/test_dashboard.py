"""The one-call dashboard: built on the simulator, wired together, closed as a whole, and free of secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import ipywidgets as widgets
import pytest

import akool_lab
from akool_lab.api import AkoolClient
from akool_lab.widgets import Dashboard
from akool_lab.widgets._common import describe_target
from tests.widgets.conftest import wait_until


@pytest.fixture
def dash() -> Iterator[Dashboard]:
    dashboard = akool_lab.lab(target="sim", profile="fast")
    yield dashboard
    dashboard.close()


def all_widgets(root: widgets.Widget) -> list[widgets.Widget]:
    """``root`` and every widget reachable from its traits (children, layouts, styles...)."""
    seen: dict[str, widgets.Widget] = {}
    stack = [root]
    while stack:
        widget = stack.pop()
        if widget.model_id in seen:
            continue
        seen[widget.model_id] = widget
        for name in widget.keys:
            value = getattr(widget, name)
            items = value if isinstance(value, list | tuple) else [value]
            stack.extend(item for item in items if isinstance(item, widgets.Widget))
    return list(seen.values())


def saved_state(root: widgets.Widget) -> str:
    """What the notebook would save: the state of every widget, as JSON (binary buffers left out)."""
    states: list[dict[str, Any]] = []
    for widget in all_widgets(root):
        state = widget.get_state()
        states.append({k: v for k, v in state.items() if not isinstance(v, bytes | memoryview)})
    return json.dumps(states, default=str)


def start_session(dash: Dashboard) -> None:
    panel = dash.session_panel
    wait_until(lambda: not panel.create_button.disabled, what="the avatar list")
    panel.create_button.click()
    wait_until(lambda: panel.status == "live", what="the session to be live")


def test_lab_builds_every_panel_on_the_simulator_when_no_key_is_configured() -> None:
    dashboard = akool_lab.lab(profile="fast")
    try:
        assert dashboard.target.kind == "sim"
        assert isinstance(dashboard, widgets.VBox)
        for panel in (dashboard.session_panel, dashboard.stage, dashboard.chat, dashboard.params, dashboard.monitor):
            assert panel in all_widgets(dashboard)
        assert "simulator" in dashboard.children[0].value
    finally:
        dashboard.close()


def test_a_live_session_attaches_chat_and_params_and_a_reply_reaches_the_monitor(dash: Dashboard) -> None:
    assert dash.chat.send_button.disabled and dash.params.apply_button.disabled

    start_session(dash)

    wait_until(lambda: not dash.chat.send_button.disabled and not dash.params.apply_button.disabled, what="attach")
    dash.chat.text.value = "Hello dashboard."
    dash.chat.send_button.click()
    wait_until(lambda: "ttfr" in dash.chat.transcript.value, what="the reply")
    wait_until(lambda: dash.monitor.values["ttfr_ms"], what="the monitor")
    dash.params.language.value = "de-DE"
    dash.params.apply_button.click()
    wait_until(lambda: "ack 1000" in dash.params.errors.text, what="the ack")


def test_ending_the_session_detaches_chat_and_params(dash: Dashboard) -> None:
    start_session(dash)

    dash.session_panel.close_button.click()

    wait_until(lambda: dash.session_panel.status == "ended", what="the session to end")
    assert dash.chat.send_button.disabled and dash.params.apply_button.disabled
    assert dash.chat.live is None and dash.params.live is None


def test_no_secret_is_in_any_widget_state(dash: Dashboard) -> None:
    start_session(dash)
    dash.chat.text.value = "Anything secret in here?"
    dash.chat.send_button.click()
    wait_until(lambda: "ttfr" in dash.chat.transcript.value, what="the reply")
    session = dash.session_panel.session
    assert session is not None and session.credentials is not None
    secrets = {
        "simulator key": dash.target.api_key.reveal(),
        "ws_token": session.credentials.ws_token,
        "ws_url": session.credentials.ws_url,
        "RTC token": getattr(session.credentials, "token", None),
    }

    state = saved_state(dash)

    assert session.id in state, "the walk does reach the session panel's labels"
    for name, secret in secrets.items():
        assert secret, f"the session should have a {name} to look for"
        assert secret not in state, f"the {name} is in a widget's state"


def test_close_closes_the_session_and_stops_the_simulator() -> None:
    dashboard = akool_lab.lab(target="sim", profile="fast")
    start_session(dashboard)
    session_id = dashboard.session_panel.session.id if dashboard.session_panel.session else ""
    server = dashboard.target.sim
    assert server is not None
    with AkoolClient(server.api_key, base_url=server.base_url) as probe:
        assert probe.sessions.get(session_id).status == 2

        dashboard.close()

        assert dashboard.session_panel.status == "ended"
        with pytest.raises(akool_lab.AkoolLabError):
            probe.sessions.get(session_id)  # the simulator is gone with the dashboard


def test_akool_lab_lab_is_the_dashboard_function_even_after_its_module_is_imported() -> None:
    import akool_lab._lab as lab_module

    assert akool_lab.lab is lab_module.lab and callable(akool_lab.lab)


def test_import_akool_lab_does_not_import_ipywidgets_and_the_widgets_never_import_the_simulator() -> None:
    code = (
        "import sys, akool_lab\n"
        "assert 'ipywidgets' not in sys.modules\n"
        "import akool_lab.widgets\n"
        "assert not [m for m in sys.modules if m.startswith('akool_lab.sim')], 'the simulator was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def wait_until_loaded(dashboard: Dashboard) -> None:
    """Wait for the lists the panels load in the background (so that closing does not cut a request short)."""
    wait_until(lambda: not dashboard.session_panel.avatar.disabled, what="the avatar list")
    wait_until(lambda: len(dashboard.params.language.options) > 1, what="the language list")


def test_the_banner_says_what_the_numbers_are() -> None:
    simulated = SimpleNamespace(kind="sim", profile="realistic", seed=0, close=lambda: None)
    real = SimpleNamespace(kind="real", profile=None, seed=None, close=lambda: None)
    server = akool_lab.sim.start(profile="fast")
    try:
        for target, label in ((simulated, "simulated · profile realistic · seed 0"), (real, "AKool")):
            with AkoolClient(server.api_key, base_url=server.base_url) as client:
                dashboard = Dashboard(client, target=target)
                try:
                    wait_until_loaded(dashboard)
                    assert dashboard.label == label
                    assert label in dashboard.children[0].value, "the banner above the panels"
                    assert label in dashboard.session_panel.children[0].value, "and beside the session's title"
                finally:
                    dashboard.close()
    finally:
        server.stop()


def test_lab_says_its_dashboard_runs_on_the_realistic_profile_by_default() -> None:
    dashboard = akool_lab.lab()
    try:
        wait_until_loaded(dashboard)
        assert "simulated · profile realistic · seed 0" in dashboard.children[0].value
    finally:
        dashboard.close()


def test_describe_target_reads_a_target_or_a_saved_runs_mapping() -> None:
    assert describe_target({"kind": "sim", "profile": "fast", "seed": 3}) == "simulated · profile fast · seed 3"
    assert describe_target(SimpleNamespace(kind="real")) == "AKool"
    assert describe_target(None) == ""
