"""The station on the line: the live run publishes every verdict over OPC UA, and a PLC's Recipe write switches recipe."""

from __future__ import annotations

import pytest

from engine.recipes import LineIOSettings
from engine.types import Verdict

pytest.importorskip("asyncua")


def _plc(address: str):
    """A PLC's view of the station's OPC UA object: a name -> node map on a connected sync client."""
    from asyncua.sync import Client

    from engine.lineio.opcua import NAMESPACE_URI

    client = Client(address)
    client.connect()
    idx = client.get_namespace_index(NAMESPACE_URI)
    station = client.nodes.objects.get_child(f"{idx}:VisInspect")
    names = ("Verdict", "PAnomaly", "ResultCounter", "Recipe", "LastError", "Ready")
    return client, {n: station.get_child(f"{idx}:{n}") for n in names}


@pytest.fixture
def on_the_line(loaded_window, qtbot):
    """The loaded station serving OPC UA on a free loopback port."""
    w = loaded_window
    w.line_io.apply(LineIOSettings(opcua="127.0.0.1:0"))
    qtbot.waitUntil(lambda: bool(w.line_io.endpoints), timeout=30_000)
    assert w.line_io.field.text().startswith("Line: OPC UA")
    client, nodes = _plc(w.line_io.endpoints[0].address)
    yield w, nodes
    client.disconnect()


def test_every_verdict_of_the_live_run_reaches_the_plc(on_the_line, line_folder, run_to_end, qtbot):
    w, nodes = on_the_line
    w.source_panel.set_source(str(line_folder))
    assert run_to_end(w) == "ended"
    qtbot.waitUntil(lambda: nodes["ResultCounter"].read_value() == w.live.counters.inspected == 6, timeout=10_000)
    last = {Verdict.GOOD: 1, Verdict.ANOMALY: 2}[w.live.banner.verdict]
    assert nodes["Verdict"].read_value() == last
    assert nodes["PAnomaly"].read_value() == pytest.approx(w.live.result.inspection.p_anomaly, abs=1e-6)


def test_a_plc_recipe_write_switches_the_station_and_a_missing_recipe_is_refused(on_the_line, qtbot):
    w, nodes = on_the_line
    w.recipes.save_as("bolt-m8")
    qtbot.waitUntil(lambda: w.recipes.name == "bolt-m8", timeout=10_000)
    w.recipes.name = None  # as if another recipe were in use
    nodes["Recipe"].write_value("bolt-m8")
    qtbot.waitUntil(lambda: w.recipes.name == "bolt-m8" and nodes["Recipe"].read_value() == "bolt-m8", timeout=30_000)
    assert "bolt-m8" in w.recipes.field.text()
    changes = w.results.changes()
    assert any(c.new == "bolt-m8" and c.who == "plc" for c in changes)

    nodes["Recipe"].write_value("no-such-recipe")
    qtbot.waitUntil(lambda: "no-such-recipe" in nodes["LastError"].read_value(), timeout=10_000)
    assert w.recipes.name == "bolt-m8"
