"""The Modbus TCP endpoint against a real pymodbus client on loopback: what a PLC writes and reads."""

import socket
import threading

import pytest

pytest.importorskip("pymodbus")

from pymodbus.client import ModbusTcpClient  # noqa: E402

from engine.errors import LineIOError  # noqa: E402
from engine.lineio.hub import LineHub, LineVerdict  # noqa: E402
from engine.lineio.modbus import (  # noqa: E402
    ERROR_TEXT_REGISTERS,
    STRING_REGISTERS,
    Coil,
    DiscreteInput,
    ErrorCode,
    ModbusEndpoint,
    Register,
    decode_string,
    encode_string,
)


@pytest.fixture
def hub():
    return LineHub(station="press-3")


@pytest.fixture
def endpoint(hub):
    ep = ModbusEndpoint(hub, host="127.0.0.1", port=0)
    ep.start()
    yield ep
    ep.stop()


@pytest.fixture
def plc(endpoint):
    host, port = endpoint.address.rsplit(":", 1)
    client = ModbusTcpClient(host, port=int(port), timeout=5)
    assert client.connect()
    yield client
    client.close()


def read_outputs(plc):
    regs = plc.read_holding_registers(0, count=Register.ACTIVE_RECIPE + STRING_REGISTERS).registers
    p = plc.convert_from_registers(regs[1:3], plc.DATATYPE.FLOAT32, word_order="big")
    counter = plc.convert_from_registers(regs[4:6], plc.DATATYPE.UINT32, word_order="big")
    return regs, p, counter


def test_trigger_edge_queues_the_part_the_plc_named(hub, plc):
    assert not plc.write_registers(Register.PART_ID, encode_string("SN-0042")).isError()
    assert not plc.write_coil(Coil.TRIGGER, True).isError()
    part = hub.next_trigger(timeout=5)
    assert part is not None and part.part_id == "SN-0042" and part.via == "modbus"
    assert hub.state().part_id == "SN-0042"

    plc.write_coil(Coil.TRIGGER, True)  # still 1 (a cyclic master rewriting its outputs): no new edge
    assert hub.pending_triggers() == 0
    plc.write_registers(Register.PART_ID, encode_string("SN-0043"))
    plc.write_coil(Coil.TRIGGER, False)
    plc.write_coils(Coil.TRIGGER, [True, False])  # FC15 over both coils: Trigger rises, RecipeApply stays 0
    part = hub.next_trigger(timeout=5)
    assert part is not None and part.part_id == "SN-0043"


def test_plc_reads_a_published_result_whole(hub, plc):
    regs, p, counter = read_outputs(plc)
    assert regs[Register.VERDICT] == LineVerdict.NONE and counter == 0

    hub.publish(LineVerdict.ANOMALY, 0.8125, part=hub.trigger("test", part_id="A1"))
    regs, p, counter = read_outputs(plc)
    assert regs[Register.VERDICT] == LineVerdict.ANOMALY
    assert p == pytest.approx(0.8125) and regs[Register.P_ANOMALY_SCALED] == 8125
    assert counter == 1 and regs[Register.LAST_ERROR_CODE] == ErrorCode.NONE

    hub.publish_error("camera lost")
    regs, p, counter = read_outputs(plc)
    assert regs[Register.VERDICT] == LineVerdict.ERROR and counter == 2 and p == 0.0
    assert regs[Register.LAST_ERROR_CODE] == ErrorCode.PART_NOT_INSPECTED
    assert decode_string(regs[Register.LAST_ERROR_TEXT : Register.ACTIVE_RECIPE]) == "camera lost"
    # the input-register table carries the same outputs for PLCs that read station data with FC4
    assert plc.read_input_registers(0, count=6).registers == regs[:6]


def test_ready_busy_and_heartbeat_are_mirrored(hub, plc):
    hub.set_ready(True)
    hub.beat()
    bits = plc.read_discrete_inputs(0, count=2).bits
    assert bits[DiscreteInput.READY] and not bits[DiscreteInput.BUSY]
    hub.set_busy(True)
    assert plc.read_discrete_inputs(0, count=2).bits[DiscreteInput.BUSY]
    regs = plc.read_holding_registers(Register.HEARTBEAT, count=2).registers
    assert regs == [1, 0b11]


def test_station_outputs_are_read_only(hub, plc):
    hub.publish(LineVerdict.GOOD, 0.1)
    assert plc.write_register(Register.VERDICT, 2).isError()
    assert plc.write_registers(Register.RESULT_COUNTER, [0, 9]).isError()
    assert read_outputs(plc)[0][Register.VERDICT] == LineVerdict.GOOD


def test_recipe_write_reaches_the_handler(hub, plc):
    loaded = threading.Event()

    def handler(name):
        if name != "bolt-m8":
            raise ValueError(f"no recipe named {name!r}")
        hub.set_recipe(name)
        loaded.set()

    hub.set_recipe_handler(handler)
    plc.write_registers(Register.RECIPE, encode_string("bolt-m8"))
    plc.write_coil(Coil.RECIPE_APPLY, True)
    assert loaded.wait(5)
    regs = plc.read_holding_registers(Register.ACTIVE_RECIPE, count=STRING_REGISTERS).registers
    assert decode_string(regs) == "bolt-m8"

    plc.write_coil(Coil.RECIPE_APPLY, False)
    plc.write_registers(Register.RECIPE, encode_string("nut"))
    done = threading.Event()
    hub.subscribe(lambda state, _r: done.set() if "nut" in state.last_error else None)
    plc.write_coil(Coil.RECIPE_APPLY, True)
    assert done.wait(5)
    regs = plc.read_holding_registers(Register.LAST_ERROR_CODE, count=2 + ERROR_TEXT_REGISTERS).registers
    assert regs[0] == ErrorCode.RECIPE_REJECTED
    assert "no recipe named 'nut'" in decode_string(regs[2:])
    assert hub.state().recipe == "bolt-m8"


def test_port_in_use_is_one_line_and_stop_is_idempotent(hub):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ep = ModbusEndpoint(hub, host="127.0.0.1", port=port)
        with pytest.raises(LineIOError, match=f"127.0.0.1:{port}.*in use") as err:
            ep.start()
        assert "\n" not in str(err.value)
        ep.stop()
    with ModbusEndpoint(hub, host="127.0.0.1", port=port) as ep:  # the port is free again: it serves
        assert ep.description.endswith("(listening)")
    ep.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("modbus")]


def test_a_plc_that_drops_off_and_reconnects_is_served_again(hub, endpoint, plc):
    plc.write_coil(Coil.TRIGGER, True)
    assert hub.next_trigger(timeout=5) is not None
    plc.close()  # cable pulled with Trigger still 1
    host, port = endpoint.address.rsplit(":", 1)
    again = ModbusTcpClient(host, port=int(port), timeout=5)
    assert again.connect()
    try:
        again.write_coil(Coil.TRIGGER, False)
        again.write_coil(Coil.TRIGGER, True)
        assert hub.next_trigger(timeout=5) is not None
        hub.publish(LineVerdict.GOOD, 0.2)
        assert read_outputs(again)[2] == 1
    finally:
        again.close()
