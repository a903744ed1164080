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
from asyncua.crypto.cert_gen import setup_self_signed_certificate  # noqa: E402
from asyncua.sync import Client as SyncClient  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402 - asyncua's dependency

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


USER, PASSWORD = "plc1", "Pa55-word-2468"


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    """One loopback server (anonymous, or plc1 from its users file) for most tests: starting asyncua costs a second."""
    hub = LineHub(station="cell-7")
    users = tmp_path_factory.mktemp("line") / "users.txt"
    add_user(users, USER, PASSWORD)
    ep = OpcUaEndpoint(hub, host="127.0.0.1", port=0, users_file=users)
    ep.start()
    yield hub, ep
    ep.stop()
    ep.stop()  # stop is idempotent
    assert not ep.running and not _server_threads()


@pytest.fixture
def hub(station) -> LineHub:
    """The station's hub with nothing left waiting from an earlier test (tests read counters relative to the start)."""
    hub = station[0]
    hub.drain_triggers()
    yield hub
    hub.set_recipe_handler(None)


@pytest.fixture
def endpoint(station, hub) -> OpcUaEndpoint:
    return station[1]


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
    plc.write("Trigger", False)
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
    start = hub.state().result_counter
    wait_until(lambda: plc.read("ResultCounter") == start, "the PLC reads the current ResultCounter")
    assert plc.read("Station") == "cell-7"
    stop = threading.Event()
    snapshots = []

    def poll():
        while not stop.is_set():
            snapshots.append(plc.read("ResultCounter", "Verdict", "PAnomaly", "ResultPartId"))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for n in range(start + 1, start + 31):  # p encodes which result it belongs to; so do part ids and verdicts
            hub.set_part_id(f"P{n}")
            verdict = LineVerdict.ANOMALY if n % 2 else LineVerdict.GOOD
            hub.publish(verdict, n / 1000, part=hub.trigger("test"))
            hub.next_trigger(0)
        wait_until(lambda: snapshots and snapshots[-1][0] == start + 30, "the PLC reads the 30th new ResultCounter")
    finally:
        stop.set()
        reader.join()
    for counter, verdict, p, part in snapshots:
        if counter == start:
            continue
        shown = round(p * 1000)
        assert shown >= counter, f"ResultCounter {counter} was visible before its PAnomaly ({p})"
        assert verdict == (2 if shown % 2 else 1) and part == f"P{shown}"
    last = start + 30
    assert snapshots[-1] == [last, 2 if last % 2 else 1, last / 1000, f"P{last}"]
    hub.publish_error("camera lost")
    wait_until(lambda: plc.read("ResultCounter") == last + 1, "the error result arrives")
    assert plc.read("Verdict", "PAnomaly", "LastError") == [3, 0.0, "camera lost"]


def test_a_subscribed_plc_is_told_of_every_new_result(hub, plc):
    changes: queue.Queue = queue.Queue()

    class Handler:
        def datachange_notification(self, node, value, data):
            changes.put(value)

    sub = plc.client.create_subscription(20, Handler())
    try:
        start = hub.state().result_counter
        sub.subscribe_data_change(plc.node["ResultCounter"])
        assert changes.get(timeout=10) == start  # the initial value
        for _ in range(3):
            hub.publish(LineVerdict.GOOD, 0.1)
        seen = [changes.get(timeout=10)]
        while seen[-1] != start + 3:
            seen.append(changes.get(timeout=10))
        assert seen == sorted(seen) and seen[0] > start
    finally:
        sub.delete()


def test_station_state_is_mirrored(hub, plc):
    beats = hub.state().heartbeat
    hub.set_ready(True)
    hub.set_busy(True)
    hub.beat()
    hub.beat()
    wait_until(lambda: plc.read("Heartbeat") == beats + 2, "Heartbeat moves on by 2")
    assert plc.read("Ready", "Busy") == [True, True]
    hub.set_busy(False)
    wait_until(lambda: plc.read("Busy") is False, "Busy drops")


def test_station_variables_are_read_only_to_the_plc(hub, plc):
    counter = hub.state().result_counter
    wait_until(lambda: plc.read("ResultCounter") == counter, "the PLC reads the current ResultCounter")
    with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
        plc.node["ResultCounter"].write_value(ua.DataValue(ua.Variant(counter + 9, ua.VariantType.UInt32)))
    with pytest.raises(ua.UaStatusCodeError, match="BadTypeMismatch"):  # the wrong type is refused, not stored
        plc.write("Trigger", 1)
    assert plc.read("ResultCounter") == counter


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
        start = hub.state().result_counter
        lost = Client(endpoint.address)
        await lost.connect()
        idx = await lost.get_namespace_index(NAMESPACE_URI)
        await lost.get_node(ua.NodeId("VisInspect.PartId", idx)).write_value("P-1")
        lost.uaclient.protocol.transport.abort()  # cable pulled: no CloseSession
        await lost.disconnect()
        hub.publish(LineVerdict.GOOD, 0.05)  # the line carries on while the PLC is away
        async with Client(endpoint.address) as again:
            await again.get_node(ua.NodeId("VisInspect.PartId", idx)).write_value("P-2")
            await again.get_node(ua.NodeId("VisInspect.Trigger", idx)).write_value(False)
            await again.get_node(ua.NodeId("VisInspect.Trigger", idx)).write_value(True)
            counter = again.get_node(ua.NodeId("VisInspect.ResultCounter", idx))
            for _ in range(500):
                if await counter.read_value() == start + 1:
                    return True
                await asyncio.sleep(0.01)
            return False

    assert asyncio.run(scenario()), "the reconnected PLC reads the result published while it was away"
    assert hub.next_trigger(5).part_id == "P-2"


def test_a_port_in_use_is_one_clear_error(hub, endpoint):
    port = int(endpoint.address.rsplit(":", 1)[1])
    other = OpcUaEndpoint(hub, host="127.0.0.1", port=port)
    with pytest.raises(LineIOError, match=rf"^OPC UA port {port} on 127.0.0.1 is in use by another program$"):
        other.start()
    assert not other.running and endpoint.running
    other.stop()
    with socket.create_server(("127.0.0.1", 0)) as taken:  # any program's listening socket, not only ours
        port = taken.getsockname()[1]
        with pytest.raises(LineIOError, match=f"port {port} on 127.0.0.1 is in use"):
            OpcUaEndpoint(hub, host="127.0.0.1", port=port).start()


def test_a_network_address_without_users_or_an_unknown_host_is_refused(tmp_path):
    with pytest.raises(LineIOError, match="needs a line users file"):
        OpcUaEndpoint(LineHub(station="s"), host="0.0.0.0", port=0)
    with pytest.raises(LineIOError, match="does not exist"):
        OpcUaEndpoint(LineHub(station="s"), host="0.0.0.0", port=0, users_file=tmp_path / "none.txt")
    add_user(tmp_path / "users.txt", "plc1", "good-pass")
    unknown = OpcUaEndpoint(
        LineHub(station="s"), host="no-such-host.invalid", port=0, users_file=tmp_path / "users.txt"
    )
    with pytest.raises(LineIOError, match="not known"):
        unknown.start()
    assert not unknown.running


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
    with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied|BadIdentityTokenRejected"):
        with _session(address, user, password):  # leaving the block disconnects (and stops the client's thread)
            pass


def _network_address() -> str | None:
    """This machine's address on a non-loopback interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_on_a_network_address_anonymous_is_refused_and_users_need_their_password(tmp_path):
    address = _network_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address (the user manager is tested directly above)")
    hub = LineHub(station="cell-9")
    users = tmp_path / "users.txt"
    add_user(users, "plc1", "good-pass")
    with OpcUaEndpoint(hub, host=address, port=0, users_file=users, certificate_dir=tmp_path / "pki") as ep:
        assert "line users only, encrypted passwords" in ep.description
        _refused(ep.address)
        _refused(ep.address, "plc1", "bad-pass")
        with _session(ep.address, "plc1", "good-pass") as client:
            plc = Plc(client)
            plc.write("PartId", "net-1")
            plc.write("Trigger", True)
        assert hub.next_trigger(5).part_id == "net-1"


class WireTap:
    """A TCP relay in front of the server that keeps every byte the client sends (what a sniffer on the line would see)."""

    def __init__(self, target_port: int) -> None:
        self.sent = bytearray()
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._serve)]
        self._threads[0].start()

    def _serve(self) -> None:
        client, _ = self._listener.accept()
        server = socket.create_connection(("127.0.0.1", self._target))
        self._socks = (client, server)
        back = threading.Thread(target=self._pump, args=(server, client, None))
        self._threads.append(back)
        back.start()
        self._pump(client, server, self.sent)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, keep: bytearray | None) -> None:
        try:
            while data := src.recv(65536):
                if keep is not None:
                    keep += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()
        for t in self._threads:
            t.join(10)
        for s in getattr(self, "_socks", ()):
            s.close()


def _login_through_tap(endpoint: OpcUaEndpoint, password: str) -> bytes:
    tap = WireTap(int(endpoint.address.rsplit(":", 1)[1]))
    try:
        with _session(f"opc.tcp://127.0.0.1:{tap.port}", "plc1", password) as client:
            Plc(client).write("PartId", "after-login")
    finally:
        tap.close()
    return bytes(tap.sent)


def test_a_line_user_logs_in_with_their_password_only(hub, endpoint):
    _refused(endpoint.address, USER, "bad-pass")
    _refused(endpoint.address, "nobody", PASSWORD)
    with _session(endpoint.address) as anonymous:  # on loopback, programs on this computer need no user
        assert Plc(anonymous).read("Station") == "cell-7"
    hub.set_part_id("")
    wire = _login_through_tap(endpoint, PASSWORD)
    assert hub.state().part_id == "after-login"
    assert PASSWORD.encode() in wire  # no certificate: the password crossed in clear (the tap can see it)


def test_with_a_server_certificate_the_password_does_not_cross_the_wire_in_clear(tmp_path):
    hub = LineHub(station="cell-8")
    users = tmp_path / "users.txt"
    add_user(users, USER, PASSWORD)
    pki = tmp_path / "pki"
    with OpcUaEndpoint(hub, host="127.0.0.1", port=0, users_file=users, certificate_dir=pki) as secured:
        assert b"Pa55-word-2468" not in _login_through_tap(secured, PASSWORD)
        assert hub.state().part_id == "after-login"
        with SyncClient(secured.address) as client:
            policies = {e.SecurityPolicyUri.rsplit("#", 1)[1] for e in client.get_endpoints()}
        assert policies == {"None", "Basic256Sha256"}
        plc_key, plc_cert = tmp_path / "plc-key.pem", tmp_path / "plc-cert.der"
        asyncio.run(
            setup_self_signed_certificate(
                plc_key, plc_cert, "urn:test:plc", "plc", [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "plc"}
            )
        )
        encrypted = _session(secured.address, USER, PASSWORD)
        encrypted.application_uri = "urn:test:plc"
        encrypted.set_security_string(f"Basic256Sha256,SignAndEncrypt,{plc_cert},{plc_key}")
        with encrypted:  # a PLC that signs and encrypts the whole channel
            assert Plc(encrypted).read("Station") == "cell-8"
    assert (pki / "server-key.pem").stat().st_mode & 0o077 == 0 and (pki / "server-cert.der").is_file()


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
