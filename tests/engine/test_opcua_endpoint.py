"""The station's OPC UA server against a real asyncua client acting as the PLC, on loopback ephemeral ports."""

from __future__ import annotations

import asyncio
import queue
import re
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("asyncua")

from asyncua import Client, ua  # noqa: E402
from asyncua.sync import Client as SyncClient  # noqa: E402

from engine.errors import LineIOError, RecipeError  # noqa: E402
from engine.lineio.hub import LineHub, LineVerdict  # noqa: E402
from engine.lineio.opcua import NAMESPACE_URI, NODES, OpcUaEndpoint, _StationUsers  # noqa: E402
from engine.lineio.users import PBKDF2, UsersFile, add_user, load_users, remove_user, verify_password  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "line-integration.md"


def wait_until(condition, what: str, timeout: float = 10.0):
    """Poll until condition() is truthy (returned); fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.01)


def _server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("opcua-", "opcua-recipe"))]


@pytest.fixture
def hub() -> LineHub:
    return LineHub(station="cell-7")


@pytest.fixture
def endpoint(hub):
    ep = OpcUaEndpoint(hub, host="127.0.0.1", port=0)
    ep.start()
    yield ep
    ep.stop()
    assert not ep.running and not _server_threads()


class Plc:
    """A PLC's view of the station: its variables by browse name, over one sync client session."""

    def __init__(self, client: SyncClient) -> None:
        self.client = client
        idx = client.get_namespace_index(NAMESPACE_URI)
        station = client.nodes.objects.get_child(f"{idx}:VisInspect")  # resolved by browse path, as a PLC would
        self.node = {spec.name: station.get_child(f"{idx}:{spec.name}") for spec in NODES}

    def read(self, *names: str):
        values = self.client.read_values([self.node[n] for n in names])  # one Read request: one snapshot
        return values[0] if len(values) == 1 else values

    def write(self, name: str, value) -> None:
        self.node[name].write_value(value)


@pytest.fixture
def plc(endpoint):
    with SyncClient(endpoint.address) as client:
        yield Plc(client)


def test_part_id_then_a_rising_trigger_edge_queues_that_part_for_the_line_job(hub, plc):
    plc.write("PartId", "P-17")
    plc.write("Trigger", True)
    plc.write("Trigger", True)  # still high: no new edge
    plc.write("PartId", "P-18")
    plc.write("Trigger", False)
    plc.write("Trigger", True)
    first, second = hub.next_trigger(5), hub.next_trigger(5)
    assert (first.part_id, first.via) == ("P-17", "opcua")
    assert second.part_id == "P-18" and hub.pending_triggers() == 0
    assert plc.read("PartId") == "P-18"


def test_a_published_result_is_read_whole_and_the_counter_moves_last(hub, plc):
    assert plc.read("Verdict", "ResultCounter", "Station") == [0, 0, "cell-7"]
    stop = threading.Event()
    snapshots = []

    def poll():
        while not stop.is_set():
            snapshots.append(plc.read("ResultCounter", "Verdict", "PAnomaly", "ResultPartId"))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for n in range(1, 31):  # p encodes which result it belongs to; part ids and verdicts alternate with it
            hub.set_part_id(f"P{n}")
            verdict = LineVerdict.ANOMALY if n % 2 else LineVerdict.GOOD
            hub.publish(verdict, n / 100, part=hub.trigger("test"))
        wait_until(lambda: snapshots and snapshots[-1][0] == 30, "the PLC reads ResultCounter 30")
    finally:
        stop.set()
        reader.join()
    for counter, verdict, p, part in snapshots:
        if counter == 0:
            continue
        shown = round(p * 100)
        assert shown >= counter, f"ResultCounter {counter} was visible before its PAnomaly ({p})"
        assert verdict == (2 if shown % 2 else 1) and part == f"P{shown}"
    assert snapshots[-1] == [30, 1, 0.3, "P30"]
    hub.publish_error("camera lost")
    wait_until(lambda: plc.read("ResultCounter") == 31, "the error result arrives")
    assert plc.read("Verdict", "PAnomaly", "LastError") == [3, 0.0, "camera lost"]


def test_a_subscribed_plc_is_told_of_every_new_result(hub, plc):
    changes: queue.Queue = queue.Queue()

    class Handler:
        def datachange_notification(self, node, value, data):
            changes.put(value)

    sub = plc.client.create_subscription(20, Handler())
    try:
        sub.subscribe_data_change(plc.node["ResultCounter"])
        assert changes.get(timeout=10) == 0  # the initial value
        for _ in range(3):
            hub.publish(LineVerdict.GOOD, 0.1)
        seen = [changes.get(timeout=10)]
        while seen[-1] != 3:
            seen.append(changes.get(timeout=10))
        assert seen == sorted(seen) and seen[-1] == 3
    finally:
        sub.delete()


def test_station_state_is_mirrored(hub, plc):
    hub.set_ready(True)
    hub.set_busy(True)
    hub.beat()
    hub.beat()
    wait_until(lambda: plc.read("Heartbeat") == 2, "Heartbeat reaches 2")
    assert plc.read("Ready", "Busy") == [True, True]
    hub.set_busy(False)
    wait_until(lambda: plc.read("Busy") is False, "Busy drops")


def test_station_variables_are_read_only_to_the_plc(plc):
    with pytest.raises(ua.UaStatusCodeError):
        plc.node["ResultCounter"].write_value(ua.DataValue(ua.Variant(9, ua.VariantType.UInt32)))
    with pytest.raises(ua.UaStatusCodeError):  # the wrong type is refused, not stored
        plc.write("Trigger", 1)
    assert plc.read("ResultCounter") == 0


def test_a_recipe_write_reaches_the_handler_and_a_refused_one_sets_last_error(hub, plc):
    asked = []

    def load(name: str) -> None:
        asked.append(name)
        if name not in {"bolt-a", "bolt-b"}:
            raise RecipeError(f"no recipe {name!r}: recipes are bolt-a, bolt-b")
        hub.set_recipe(name)

    hub.set_recipe_handler(load)
    hub.set_recipe("bolt-a")
    plc.write("Recipe", "bolt-b")
    wait_until(lambda: hub.state().recipe == "bolt-b", "the station changes to bolt-b")
    wait_until(lambda: plc.read("Recipe") == "bolt-b", "Recipe shows bolt-b")
    plc.write("Recipe", "nut-x")
    wait_until(lambda: "nut-x" in plc.read("LastError"), "LastError names the refused recipe")
    assert "recipes are bolt-a, bolt-b" in plc.read("LastError")
    wait_until(lambda: plc.read("Recipe") == "bolt-b", "Recipe shows the recipe still in use again")
    assert asked == ["bolt-b", "nut-x"] and hub.state().recipe == "bolt-b"


def test_a_plc_that_drops_its_connection_mid_run_can_reconnect(hub, endpoint):
    async def scenario():
        lost = Client(endpoint.address)
        await lost.connect()
        idx = await lost.get_namespace_index(NAMESPACE_URI)
        await lost.get_node(ua.NodeId("VisInspect.PartId", idx)).write_value("P-1")
        lost.uaclient.protocol.transport.abort()  # cable pulled: no CloseSession
        await lost.disconnect()
        hub.publish(LineVerdict.GOOD, 0.05)  # the line carries on while the PLC is away
        async with Client(endpoint.address) as again:
            await again.get_node(ua.NodeId("VisInspect.PartId", idx)).write_value("P-2")
            await again.get_node(ua.NodeId("VisInspect.Trigger", idx)).write_value(True)
            return await again.get_node(ua.NodeId("VisInspect.ResultCounter", idx)).read_value()

    assert asyncio.run(scenario()) == 1
    assert hub.next_trigger(5).part_id == "P-2"


def test_a_port_in_use_is_one_clear_error_and_stop_is_idempotent(hub, endpoint):
    port = int(endpoint.address.rsplit(":", 1)[1])
    other = OpcUaEndpoint(hub, host="127.0.0.1", port=port)
    with pytest.raises(LineIOError, match=rf"port {port} on 127.0.0.1 is in use"):
        other.start()
    assert not other.running
    other.stop()
    endpoint.stop()
    endpoint.stop()
    assert not endpoint.running


def test_a_network_address_without_users_or_an_unknown_host_is_refused(tmp_path):
    with pytest.raises(LineIOError, match="needs a line users file"):
        OpcUaEndpoint(LineHub(station="s"), host="0.0.0.0", port=0)
    with pytest.raises(LineIOError, match="does not exist"):
        OpcUaEndpoint(LineHub(station="s"), host="0.0.0.0", port=0, users_file=tmp_path / "none.txt")
    add_user(tmp_path / "users.txt", "plc1", "good-pass")
    with pytest.raises(LineIOError, match="not known"):
        OpcUaEndpoint(LineHub(station="s"), host="no-such-host.invalid", port=0, users_file=tmp_path / "users.txt").start()
    assert not _server_threads()


def test_users_file_keeps_only_salted_hashes(tmp_path):
    path = tmp_path / "users.txt"
    assert add_user(path, "plc1", "s3cret-Pa55")
    assert add_user(path, "mes", "other-pass", scheme=PBKDF2)
    assert not add_user(path, "plc1", "new-Pa55")  # a new password for a known user
    text = path.read_text()
    assert "s3cret" not in text and "new-Pa55" not in text and "other-pass" not in text
    assert (path.stat().st_mode & 0o077) == 0
    users = UsersFile(path)
    assert users.check("plc1", "new-Pa55") and not users.check("plc1", "s3cret-Pa55")
    assert users.check("mes", "other-pass") and not users.check("nobody", "other-pass")
    hashes = load_users(path)
    assert hashes["plc1"].startswith("scrypt$") and hashes["mes"].startswith("pbkdf2_sha256$")
    assert not verify_password("new-Pa55", "scrypt$broken")
    remove_user(path, "mes")
    assert not users.check("mes", "other-pass")  # re-read after the change, without a restart
    with pytest.raises(LineIOError, match="not in"):
        remove_user(path, "mes")
    path.write_text("plc1:plaintext\n")
    with pytest.raises(LineIOError, match="line 1"):
        load_users(path)
    with pytest.raises(LineIOError, match="not allowed"):
        add_user(tmp_path / "u2.txt", "bad name", "x")


def test_the_user_manager_refuses_anonymous_off_loopback_and_bad_passwords(tmp_path):
    path = tmp_path / "users.txt"
    add_user(path, "plc1", "good-pass")
    network = _StationUsers(UsersFile(path), anonymous=False)
    assert network.get_user(None) is None
    assert network.get_user(None, username="plc1", password="bad-pass") is None
    assert network.get_user(None, username="plc1", password="good-pass").name == "plc1"
    assert _StationUsers(None, anonymous=True).get_user(None) is not None


def _session(address: str, user: str | None = None, password: str | None = None) -> SyncClient:
    client = SyncClient(address)
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    return client


def _refused(address: str, user: str | None = None, password: str | None = None) -> None:
    with _session(address, user, password):  # leaving the block disconnects (and stops the client's thread)
        pytest.fail("the session was accepted")


def test_a_named_user_with_the_right_password_can_write_and_a_bad_one_is_refused(hub, tmp_path):
    users = tmp_path / "users.txt"
    add_user(users, "plc1", "good-pass")
    with OpcUaEndpoint(hub, host="127.0.0.1", port=0, users_file=users) as ep:
        with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
            _refused(ep.address, "plc1", "bad-pass")
        with _session(ep.address, "plc1", "good-pass") as client:
            Plc(client).write("PartId", "from-plc1")
        assert hub.state().part_id == "from-plc1"
    assert not _server_threads()


def _network_address() -> str | None:
    """This machine's address on a non-loopback interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_on_a_network_address_anonymous_is_refused_and_users_need_their_password(hub, tmp_path):
    address = _network_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address (the user manager is tested directly above)")
    users = tmp_path / "users.txt"
    add_user(users, "plc1", "good-pass")
    with OpcUaEndpoint(hub, host=address, port=0, users_file=users) as ep:
        assert "line users only" in ep.description
        with pytest.raises(ua.UaStatusCodeError):
            _refused(ep.address)
        with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
            _refused(ep.address, "plc1", "bad-pass")
        with _session(ep.address, "plc1", "good-pass") as client:
            plc = Plc(client)
            plc.write("PartId", "net-1")
            plc.write("Trigger", True)
        assert hub.next_trigger(5).part_id == "net-1"


def test_the_docs_node_map_matches_the_server():
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## OPC UA", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| (\w+) \|", section, re.MULTILINE)}
    assert rows == {spec.name: spec.data_type for spec in NODES}
    assert NAMESPACE_URI in section


def test_visinspect_users_adds_lists_and_removes_a_user(tmp_path, monkeypatch, capsys):
    import io

    from engine.cli import main

    path = str(tmp_path / "users.txt")
    monkeypatch.setattr("sys.stdin", io.StringIO("line-pass\n"))
    assert main(["users", "add", "plc1", "--file", path, "--password-stdin"]) == 0
    assert UsersFile(Path(path)).check("plc1", "line-pass")
    assert main(["users", "list", "--file", path]) == 0
    assert main(["users", "remove", "ghost", "--file", path]) == 2
    out, err = capsys.readouterr()
    assert "added line user plc1" in out and out.strip().endswith("plc1")
    assert err.strip() == f"visinspect: error: line user 'ghost' is not in {path}; users there: plc1"
