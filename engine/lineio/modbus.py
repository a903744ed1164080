"""Modbus TCP server mirroring a LineHub, for PLCs without OPC UA (map: docs/line-integration.md, Modbus section).

Modbus has no push, so the PLC polls. The server answers every read from the hub's current snapshot (one
`LineState`, so Verdict, PAnomaly and ResultCounter in one read always belong together), and sees every
write as it arrives through pymodbus' datastore hook (`SimDevice.action`): a Trigger edge reaches the hub in the
same request, with no poll interval. Addresses below are 0-based protocol addresses (PLC notation: coil 00001,
holding register 40001 = address 0).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

from engine.errors import LineIOError
from engine.lineio.hub import LineHub, LineState, LineVerdict

log = logging.getLogger(__name__)

STRING_REGISTERS = 16  # PartId, Recipe, ActiveRecipe: 32 ASCII characters, two per register, first in the high byte
ERROR_TEXT_REGISTERS = 32  # LastErrorText: 64 characters
P_SCALE = 10000  # PAnomalyScaled = round(p * 10000), 0..10000


class Coil(enum.IntEnum):
    """Coils (FC1 read, FC5/FC15 write), written by the PLC. A 0 -> 1 change is the edge; the PLC resets to 0."""

    TRIGGER = 0  # rising edge: inspect the next part (PartId as written before the edge)
    RECIPE_APPLY = 1  # rising edge: switch to the recipe named in the Recipe registers


class DiscreteInput(enum.IntEnum):
    """Discrete inputs (FC2), station -> PLC, read-only."""

    READY = 0
    BUSY = 1


class Register(enum.IntEnum):
    """Holding registers (FC3; 0-57 also as input registers, FC4). PLC writes (FC6/FC16) only at 100 and above."""

    VERDICT = 0  # UInt16: 0 none, 1 good, 2 anomaly, 3 error, 4 review, 5 not product
    P_ANOMALY = 1  # Float32 in 1-2: IEEE 754, big-endian bytes, high word first ("ABCD")
    P_ANOMALY_SCALED = 3  # UInt16: round(p * 10000)
    RESULT_COUNTER = 4  # UInt32 in 4-5, high word first; changes after 0-3 hold the new result
    HEARTBEAT = 6  # UInt16, +1 about once a second while the station runs (wraps at 65536)
    STATUS = 7  # bit 0 Ready, bit 1 Busy (the discrete inputs, for PLCs that read registers only)
    LAST_ERROR_CODE = 8  # UInt16, see ErrorCode
    LAST_ERROR_TEXT = 10  # string, 10-41 (64 characters)
    ACTIVE_RECIPE = 42  # string, 42-57: the recipe in use
    PART_ID = 100  # string, 100-115, PLC-writable: taken at the Trigger edge
    RECIPE = 116  # string, 116-131, PLC-writable: applied at the RecipeApply edge


OUTPUT_END = Register.ACTIVE_RECIPE + STRING_REGISTERS  # 58: registers 0..57 are read-only
INPUT_END = Register.RECIPE + STRING_REGISTERS  # 132


class ErrorCode(enum.IntEnum):
    """LastErrorCode: what kind of error LastErrorText holds."""

    NONE = 0
    PART_NOT_INSPECTED = 1  # the last result is an ERROR result (grab or inspection failed)
    RECIPE_REJECTED = 2  # the recipe asked for over Modbus could not be loaded; the old one stays
    OTHER = 3


def encode_string(text: str, registers: int = STRING_REGISTERS) -> list[int]:
    """A string field's registers: ASCII (others become '?'), cut to fit, padded with NUL."""
    data = text.encode("ascii", errors="replace")[: 2 * registers].ljust(2 * registers, b"\0")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def decode_string(registers: list[int]) -> str:
    """A PLC-written string field: up to the first NUL, surrounding spaces removed."""
    data = b"".join(int(r & 0xFFFF).to_bytes(2, "big") for r in registers)
    return data.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


def float32_registers(value: float) -> list[int]:
    """Two registers of an IEEE 754 float32, high word first."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def render_outputs(state: LineState, error_code: ErrorCode) -> list[int]:
    """Registers 0..57 for one hub snapshot."""
    p = 0.0 if state.verdict == LineVerdict.ERROR else float(state.p_anomaly)
    counter = state.result_counter % 2**32
    regs = [0] * OUTPUT_END
    regs[Register.VERDICT] = int(state.verdict)
    regs[Register.P_ANOMALY : Register.P_ANOMALY + 2] = float32_registers(p)
    regs[Register.P_ANOMALY_SCALED] = max(0, min(P_SCALE, round(p * P_SCALE)))
    regs[Register.RESULT_COUNTER : Register.RESULT_COUNTER + 2] = [counter >> 16, counter & 0xFFFF]
    regs[Register.HEARTBEAT] = state.heartbeat % 2**16
    regs[Register.STATUS] = int(state.ready) | int(state.busy) << 1
    regs[Register.LAST_ERROR_CODE] = int(error_code)
    regs[Register.LAST_ERROR_TEXT : Register.ACTIVE_RECIPE] = encode_string(state.last_error, ERROR_TEXT_REGISTERS)
    regs[Register.ACTIVE_RECIPE : Register.ACTIVE_RECIPE + STRING_REGISTERS] = encode_string(state.recipe)
    return regs


READ_REGISTERS = {3, 4, 23}  # holding, input registers (the same outputs), read/write multiple (its read half)
WRITE_REGISTERS = {6, 16, 23}
WRITE_COILS = {5, 15}
READ_DISCRETE = 2


class ModbusEndpoint:
    """A Modbus TCP server in its own thread and event loop, mirroring `hub` (see the module docstring)."""

    triggers = True  # the PLC sets the Trigger coil

    def __init__(self, hub: LineHub, *, host: str, port: int) -> None:
        if not 0 <= int(port) <= 65535:
            raise LineIOError(f"Modbus port {port} is not a TCP port (0-65535)")
        self._hub = hub
        self._host = host
        self._port = int(port)
        self._coils = [False] * len(Coil)  # last values the PLC wrote
        self._inputs = [0] * (INPUT_END - Register.PART_ID)  # PartId and Recipe registers as the PLC wrote them
        self._recipe_error = ""  # the LastError a rejected Modbus recipe request left, to tell its code apart
        self._recipe_before: str | None = None  # LastError before the recipe request now running, if any
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._recipes: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    @property
    def description(self) -> str:
        state = "listening" if self._thread is not None else "stopped"
        return f"Modbus TCP server on {self.address} ({state})"

    def start(self) -> None:
        """Listen on host:port; returns once listening. LineIOError (one line) when the port cannot be had."""
        with self._lock:
            if self._thread is not None:
                return
            try:
                from pymodbus.simulator import SimDevice  # noqa: F401 - the datastore hook this server is built on
            except ImportError as exc:
                raise LineIOError("Modbus needs the pymodbus package, 3.16: pip install 'visinspect[line]'") from exc
            started = threading.Event()
            failure: list[str] = []
            self._recipes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modbus-recipe")
            self._thread = threading.Thread(
                target=self._run, args=(started, failure), name=f"modbus-{self._port}", daemon=True
            )
            self._thread.start()
            started.wait()
            if failure:
                self._thread.join()
                self._thread = None
                self._recipes.shutdown(wait=True)
                self._recipes = None
                raise LineIOError(failure[0])

    def stop(self) -> None:
        """Stop listening, drop PLC connections and join the server thread (idempotent)."""
        with self._lock:
            thread, loop, stop = self._thread, self._loop, self._stop
            if thread is None:
                return
            if loop is not None and stop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(stop.set)
                except RuntimeError:  # the loop ended on its own
                    pass
            thread.join()
            self._thread = None
            if self._recipes is not None:
                self._recipes.shutdown(wait=True)
                self._recipes = None

    def __enter__(self) -> ModbusEndpoint:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _run(self, started: threading.Event, failure: list[str]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(started, failure))
        except Exception as exc:  # noqa: BLE001 - thread boundary: the server thread must not die with a traceback
            log.error("Modbus server on %s stopped: %s", self.address, exc)
            if not started.is_set():
                failure.append(f"Modbus server on {self.address} cannot start: {exc}")
        finally:
            started.set()
            loop.close()
            self._loop = None

    async def _serve(self, started: threading.Event, failure: list[str]) -> None:
        from pymodbus.server import ModbusTcpServer

        self._stop = asyncio.Event()
        server = ModbusTcpServer(self._device(), address=(self._host, self._port))
        try:
            if not await server.listen():
                failure.append(f"Modbus server cannot listen on {self.address}: {_bind_error(self._host, self._port)}")
                return
            if self._port == 0:
                self._port = server.transport.sockets[0].getsockname()[1]
            started.set()
            await self._stop.wait()
        finally:
            await server.shutdown()

    def _device(self):
        from pymodbus.simulator import DataType, SimData, SimDevice

        def bits(count: int) -> list:
            return [SimData(0, count=count, values=False, datatype=DataType.BITS)]

        registers = [
            SimData(0, count=OUTPUT_END, values=0, datatype=DataType.REGISTERS),
            SimData(Register.PART_ID, count=INPUT_END - Register.PART_ID, values=0, datatype=DataType.REGISTERS),
        ]
        # tuple = separate coil, discrete input, holding and input register tables, bit-addressed (classic Modbus)
        mirror = [SimData(0, count=OUTPUT_END, values=0, datatype=DataType.REGISTERS)]  # input registers = outputs
        return SimDevice(0, simdata=(bits(len(Coil)), bits(len(DiscreteInput)), registers, mirror), action=self._access)

    # -- the datastore hook: runs on the server loop for every request, before a write is stored ---------------
    async def _access(self, func_code: int, _start: int, address: int, _count: int, registers: list, values):
        from pymodbus.constants import ExcCodes

        if values is not None and func_code in WRITE_COILS:
            self._coils_written(address, list(values))
        elif values is not None and func_code in WRITE_REGISTERS:
            if address < OUTPUT_END:
                return ExcCodes.ILLEGAL_ADDRESS  # results are the station's: a PLC cannot overwrite them
            self._registers_written(address, list(values))
        elif func_code in READ_REGISTERS:
            state = self._hub.state()
            registers[0:OUTPUT_END] = render_outputs(state, self._error_code(state))
        elif func_code == READ_DISCRETE:
            state = self._hub.state()
            registers[0] = int(state.ready) << DiscreteInput.READY | int(state.busy) << DiscreteInput.BUSY
        return None

    def _registers_written(self, address: int, values: list[int]) -> None:
        first = address - Register.PART_ID
        old_part = decode_string(self._inputs[:STRING_REGISTERS])
        self._inputs[first : first + len(values)] = values
        part = decode_string(self._inputs[:STRING_REGISTERS])
        if part != old_part:
            self._hub.set_part_id(part)

    def _coils_written(self, address: int, values: list[bool]) -> None:
        for offset, value in enumerate(values):
            coil = address + offset
            if coil >= len(Coil):
                break
            rising = bool(value) and not self._coils[coil]
            self._coils[coil] = bool(value)
            if rising and coil == Coil.TRIGGER:
                self._hub.trigger("modbus", part_id=decode_string(self._inputs[:STRING_REGISTERS]))
            elif rising and coil == Coil.RECIPE_APPLY and self._recipes is not None:
                name = decode_string(self._inputs[Register.RECIPE - Register.PART_ID :])
                self._recipes.submit(self._apply_recipe, name)  # loading a model must not stall the server

    def _apply_recipe(self, name: str) -> None:
        before = self._hub.state().last_error
        self._recipe_before = before  # while set, a new LastError is this request's (the hub sets it inside the call)
        try:
            self._hub.request_recipe(name)
        finally:
            after = self._hub.state().last_error
            if after != before:
                self._recipe_error = after
            self._recipe_before = None

    def _error_code(self, state: LineState) -> ErrorCode:
        if not state.last_error:
            return ErrorCode.NONE
        result = state.last_result
        if result is not None and result.verdict == LineVerdict.ERROR and result.message == state.last_error:
            return ErrorCode.PART_NOT_INSPECTED
        pending = self._recipe_before
        if state.last_error == self._recipe_error or (pending is not None and state.last_error != pending):
            return ErrorCode.RECIPE_REJECTED
        return ErrorCode.OTHER


def _bind_error(host: str, port: int) -> str:
    """Why host:port cannot be bound, in the operating system's words (pymodbus only logs it)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
    except OSError as exc:
        return exc.strerror or str(exc)
    return "the address could not be bound"


__all__ = [
    "ERROR_TEXT_REGISTERS",
    "STRING_REGISTERS",
    "Coil",
    "DiscreteInput",
    "ErrorCode",
    "ModbusEndpoint",
    "Register",
    "decode_string",
    "encode_string",
]
