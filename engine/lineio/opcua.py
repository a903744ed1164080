"""The station as an OPC UA server (asyncua): a PLC writes PartId, Trigger and Recipe; it reads the verdict and state.

The server runs in its own thread and event loop and mirrors one LineHub: hub changes become node values in
the order they happened (a result's Verdict, PAnomaly and ResultPartId before ResultCounter), and PLC writes
become hub calls. Every variable lives under Objects/VisInspect in the namespace NAMESPACE_URI, with the
string NodeId "VisInspect.<BrowseName>". Anonymous sessions are allowed only on a loopback address; on any
other address a session needs a user from the users file (engine/lineio/users.py).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from engine.errors import LineIOError
from engine.lineio.hub import LineHub, LineState
from engine.lineio.opcua_nodes import NAMESPACE_URI, NODES, OBJECT_NAME, RESULT_ORDER, NodeSpec, state_values
from engine.lineio.users import UsersFile, load_users
from engine.paths import data_dir

try:
    from asyncua import Server, ua
    from asyncua.common.callback import CallbackType
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from asyncua.crypto.permission_rules import User, UserRole
    from asyncua.server.user_managers import UserManager
except ImportError:  # the optional "line" extra
    Server = None  # type: ignore[assignment,misc]
    UserManager = object  # type: ignore[assignment,misc]

_log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
_RECIPE_RESYNC = object()  # queued after a PLC recipe request: show the recipe really in use again


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): the only hosts where anonymous sessions are allowed."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _StationUsers(UserManager):
    """asyncua user manager: anonymous only when allowed (loopback), named users only from the users file."""

    def __init__(self, users: UsersFile | None, anonymous: bool) -> None:
        self._users = users
        self._anonymous = anonymous

    def get_user(self, iserver, username=None, password=None, certificate=None):  # noqa: ANN001 - asyncua's signature
        if username is None:  # X509 user tokens are not offered, so this is an anonymous session
            return User(role=UserRole.User) if self._anonymous else None
        if username is not None and self._users is not None and self._users.check(username, password or ""):
            return User(role=UserRole.User, name=username)
        return None  # asyncua answers BadUserAccessDenied


class OpcUaEndpoint:
    """An OPC UA server for one station, mirroring hub (see the module docstring); start() returns once listening."""

    triggers = True  # the PLC writes Trigger

    def __init__(self, hub: LineHub, *, host: str = "127.0.0.1", port: int = 4840, users_file: Path | str | None = None,
                 certificate_dir: Path | str | None = None, start_timeout_s: float = START_TIMEOUT_S) -> None:  # fmt: skip
        """certificate_dir: where the server's self-signed certificate is kept (made on first start); with one, the
        server also offers a signed and encrypted endpoint and clients encrypt passwords. Off loopback it defaults
        to the data folder's opcua/, so a password never crosses the network in clear text."""
        if Server is None:
            raise LineIOError("OPC UA needs the asyncua package: pip install 'visinspect[line]'")
        if not 0 <= int(port) <= 65535:
            raise LineIOError(f"OPC UA port {port} is not a port number: use 0-65535 (0 picks a free one)")
        self.hub = hub
        self.host = host.strip("[]")
        self._port = int(port)
        if self._port == 0 and self.host.lower() == "localhost":
            self.host = "127.0.0.1"  # localhost is IPv4 and IPv6: with port 0 they would get two different ports
        self._loopback = is_loopback(self.host)
        self._users_path = Path(users_file) if users_file is not None else None
        if self._users_path is None and not self._loopback:
            raise LineIOError(
                f"OPC UA on {host} is reachable from the network: it needs a line users file (anonymous sessions are "
                "allowed only on 127.0.0.1, ::1 or localhost)"
            )
        if self._users_path is not None:
            load_users(self._users_path)  # a missing or malformed file is a settings error now, not at the first login
        if certificate_dir is None and not self._loopback:
            certificate_dir = data_dir() / "opcua"
        self._cert_dir = Path(certificate_dir) if certificate_dir is not None else None
        self._start_timeout_s = start_timeout_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: str | None = None
        self._unsubscribe = None
        self._recipes: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- the endpoint contract ------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"opc.tcp://{host}:{self._port}"

    @property
    def description(self) -> str:
        who = "anonymous or line users" if self._loopback else "line users only"
        if self._users_path is None:
            who = "anonymous, this computer only"
        if self._cert_dir is not None:
            who += ", encrypted passwords"
        return f"OPC UA server {self.address} ({who})"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start serving; returns once listening, LineIOError (one line) when the address cannot be used."""
        with self._lock:
            if self._thread is not None:
                return
            self._check_bind()
            self._ready.clear()
            self._start_error = None
            self._loop = self._stopping = None
            self._recipes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opcua-recipe")
            self._thread = threading.Thread(target=self._run, name="opcua-server", daemon=True)
            self._thread.start()
            started = self._ready.wait(self._start_timeout_s)
        if self._start_error is not None or not started:
            error = (
                self._start_error or f"OPC UA server on {self.address} did not start in {self._start_timeout_s:.0f} s"
            )
            self.stop()
            raise LineIOError(error)

    def stop(self) -> None:
        """Stop serving and join the server thread; safe to call twice or before start."""
        with self._lock:
            thread, self._thread = self._thread, None
            if self._unsubscribe is not None:
                self._unsubscribe()  # first: the hub must not call into a loop that is going away
                self._unsubscribe = None
            if thread is None:
                return
            while thread.is_alive():  # ask again until it ends: a server still starting has no loop to ask yet
                loop, stopping = self._loop, self._stopping
                if loop is not None and stopping is not None:
                    try:
                        loop.call_soon_threadsafe(stopping.set)
                    except RuntimeError:  # the loop already ended
                        pass
                thread.join(0.2)
            if self._recipes is not None:
                self._recipes.shutdown(wait=True)
                self._recipes = None

    def __enter__(self) -> OpcUaEndpoint:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the server thread ------------------------------------------------------------------------------------
    def _check_bind(self) -> None:
        """Bind the address once, as the server will, so 'in use' and 'no such address' are one clear line."""
        try:
            infos = socket.getaddrinfo(self.host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise LineIOError(f"OPC UA host {self.host!r} is not known here: {exc.strerror}") from None
        for family, kind, proto, _, address in infos:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
                try:
                    sock.bind(address)
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise LineIOError(
                            f"OPC UA port {self._port} on {self.host} is in use by another program"
                        ) from None
                    raise LineIOError(f"OPC UA cannot listen on {self.host}:{self._port}: {exc.strerror}") from None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # noqa: BLE001 - the thread boundary: report to start() or log
            if not self._ready.is_set():
                self._start_error = f"OPC UA server on {self.address} could not start: {exc}"
            else:
                _log.exception("OPC UA server on %s stopped", self.address)
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        users = UsersFile(self._users_path) if self._users_path is not None else None
        server = Server(user_manager=_StationUsers(users, anonymous=self._loopback))
        await server.init()
        server.set_server_name(f"VisInspect {self.hub.state().station}")
        server.set_endpoint(self.address)
        policies = [ua.SecurityPolicyType.NoSecurity]
        if self._cert_dir is not None:
            await self._load_certificate(server)
            policies.append(ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt)
        server.set_security_policy(policies)
        tokens = [ua.AnonymousIdentityToken] if self._loopback else []
        if users is not None:
            tokens.append(ua.UserNameIdentityToken)
        server.set_identity_tokens(tokens)
        self._server = server
        await self._build_nodes(server)
        queue: asyncio.Queue = asyncio.Queue()
        self._queue = queue

        def on_change(state: LineState, _result) -> None:  # on the hub's publishing thread: only hand over
            try:
                loop.call_soon_threadsafe(queue.put_nowait, state)
            except RuntimeError:  # the loop has ended (stopping)
                pass

        self._unsubscribe = self.hub.subscribe(on_change)
        await self._apply(self.hub.state(), force=True)
        server.subscribe_server_callback(CallbackType.PostWrite, self._on_write)
        await server.start()
        try:
            if self._port == 0:
                self._port = server.bserver.port
            self._ready.set()
            mirror = asyncio.create_task(self._mirror(queue))
            await self._stopping.wait()
            mirror.cancel()
        finally:
            clock = getattr(server.iserver, "time_task", None)
            if clock is not None:  # asyncua's 1 s ServerStatus clock: stop it now rather than wait out its sleep
                clock.cancel()
                await asyncio.gather(clock, return_exceptions=True)
                server.iserver.time_task = None
            await server.stop()

    async def _load_certificate(self, server) -> None:
        """Make (first time, or when expired) and load the server's self-signed certificate and private key."""
        from cryptography.x509.oid import ExtendedKeyUsageOID  # asyncua's own dependency

        host = socket.gethostname()
        uri = f"urn:{host}:visinspect:station"
        key, cert = self._cert_dir / "server-key.pem", self._cert_dir / "server-cert.der"
        try:
            self._cert_dir.mkdir(parents=True, exist_ok=True)
            await setup_self_signed_certificate(
                key, cert, uri, host, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                {"organizationName": "VisInspect", "commonName": f"VisInspect {self.hub.state().station}"},
            )  # fmt: skip
            key.chmod(0o600)
        except OSError as exc:
            raise LineIOError(f"OPC UA certificate folder {self._cert_dir} cannot be used: {exc.strerror}") from None
        await server.set_application_uri(uri)
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))

    async def _build_nodes(self, server) -> None:
        idx = await server.register_namespace(NAMESPACE_URI)
        station = await server.nodes.objects.add_object(ua.NodeId(OBJECT_NAME, idx), ua.QualifiedName(OBJECT_NAME, idx))
        self._nodes: dict[str, tuple[ua.NodeId, ua.VariantType]] = {}
        self._names: dict[ua.NodeId, str] = {}
        defaults = {"Boolean": False, "String": "", "Double": 0.0}
        for spec in NODES:
            vtype = getattr(ua.VariantType, spec.data_type)
            node = await station.add_variable(
                ua.NodeId(spec.node_id, idx), ua.QualifiedName(spec.name, idx), defaults.get(spec.data_type, 0),
                varianttype=vtype,
            )  # fmt: skip
            if spec.writable:
                await node.set_writable()
            self._nodes[spec.name] = (node.nodeid, vtype)
            self._names[node.nodeid] = spec.name
        self._shown: dict[str, object] = {}
        self._trigger = False

    async def _write(self, name: str, value) -> None:
        nodeid, vtype = self._nodes[name]
        now = datetime.now(timezone.utc)
        value_at = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=now, ServerTimestamp=now)
        await self._server.write_attribute_value(nodeid, value_at)
        self._shown[name] = value

    async def _apply(self, state: LineState, *, force: bool = False) -> None:
        """Show one hub state: station signals first, then a new result's fields, ResultCounter last."""
        values = state_values(state)
        values["PartId"] = self.hub.state().part_id  # the latest: an older queued state must not undo a PLC write
        for name in (*[n for n in values if n not in RESULT_ORDER], *RESULT_ORDER):
            if force or self._shown.get(name) != values[name]:
                await self._write(name, values[name])

    async def _mirror(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            if item is _RECIPE_RESYNC:
                await self._write("Recipe", self.hub.state().recipe)
            else:
                await self._apply(item)

    def _on_write(self, event, _service) -> None:
        """asyncua PostWrite callback (server loop): turn accepted client writes into hub calls, in order."""
        if not event.is_external:
            return
        for write, status in zip(event.request_params.NodesToWrite, event.response_params):
            name = self._names.get(write.NodeId)
            if name is None or write.AttributeId != ua.AttributeIds.Value or not status.is_good():
                continue
            value = write.Value.Value.Value if write.Value.Value is not None else None
            try:
                if name == "Trigger":
                    rising = bool(value) and not self._trigger
                    self._trigger = bool(value)
                    if rising:
                        self.hub.trigger("opcua")
                elif name == "PartId":
                    self._shown["PartId"] = value or ""
                    self.hub.set_part_id(value or "")
                elif name == "Recipe" and self._recipes is not None:
                    self._recipes.submit(self._request_recipe, value or "")
            except Exception:  # noqa: BLE001 - a client request boundary: never break the server loop
                _log.exception("OPC UA write of %s could not be handed to the station", name)

    def _request_recipe(self, name: str) -> None:
        """Worker thread: load the recipe (may be slow), then show the recipe really in use (the old one on failure)."""
        self.hub.request_recipe(name)
        loop = self._loop
        try:
            if loop is not None:
                loop.call_soon_threadsafe(self._queue.put_nowait, _RECIPE_RESYNC)
        except RuntimeError:  # stopped meanwhile
            pass


__all__ = ["NAMESPACE_URI", "NODES", "OBJECT_NAME", "NodeSpec", "OpcUaEndpoint", "is_loopback"]
