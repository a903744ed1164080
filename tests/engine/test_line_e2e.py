"""The whole line loop with no hardware: a folder or the pylon camera emulator in software-trigger mode, the
triggered live job, the OPC UA server, and a PLC (asyncua client) that writes PartId, raises Trigger and reads
Verdict, PAnomaly and ResultCounter: equal to `visinspect predict` on the same files, each row logged with its part."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

os.environ.setdefault("PYLON_CAMEMU", "2")  # emulated cameras: must be set before pylon's first transport-layer call

import pytest  # noqa: E402

from engine.lineio.hub import LineHub  # noqa: E402
from engine.results import ResultsLog  # noqa: E402
from tests.engine.test_line_job import _Job, expected, inspector, parts, tiny_model  # noqa: E402,F401 - fixtures used here

opcua = pytest.importorskip("engine.lineio.opcua", reason="the OPC UA endpoint (engine.lineio.opcua) is not here")
pytest.importorskip("asyncua")


def _pylon_available() -> bool:
    try:
        from engine.sources.pylon import load_pylon

        load_pylon()
        return True
    except Exception:  # noqa: BLE001 - any reason the emulator cannot run is a skip
        return False


async def _plc(address: str, part_ids: list[str]) -> list[tuple[int, float, int]]:
    """A PLC: per part, write PartId, raise Trigger, wait for ResultCounter to move, read Verdict and PAnomaly."""
    from asyncua import Client

    async with Client(address) as client:
        idx = await client.get_namespace_index(opcua.NAMESPACE_URI)
        station = await client.nodes.objects.get_child(f"{idx}:VisInspect")
        node = {n: await station.get_child(f"{idx}:{n}") for n in ("PartId", "Trigger", "Verdict", "PAnomaly", "ResultCounter", "Ready")}
        deadline = time.monotonic() + 60
        while not await node["Ready"].read_value():
            assert time.monotonic() < deadline, "station never Ready"
            await asyncio.sleep(0.02)
        answers = []
        for part_id in part_ids:
            before = await node["ResultCounter"].read_value()
            await node["PartId"].write_value(part_id)
            await node["Trigger"].write_value(True)
            while (counter := await node["ResultCounter"].read_value()) == before:
                assert time.monotonic() < deadline, f"no result for {part_id}"
                await asyncio.sleep(0.01)
            answers.append((await node["Verdict"].read_value(), await node["PAnomaly"].read_value(), counter))
            await node["Trigger"].write_value(False)
        return answers


@pytest.mark.parametrize("kind", ["folder", "pylon"])
def test_a_plc_over_opc_ua_gets_predicts_verdicts_for_triggered_parts(kind, inspector, parts, expected, tmp_path):  # noqa: F811
    if kind == "pylon" and not _pylon_available():
        pytest.skip("pylon emulator not available (pypylon or engine.sources.pylon missing)")
    spec = str(parts) if kind == "folder" else f"pylon:0?trigger=software&image_dir={parts}"
    files = sorted(parts.glob("*.png"))
    hub = LineHub(station="e2e")
    with ResultsLog(tmp_path / "r.sqlite3") as log, opcua.OpcUaEndpoint(hub, host="127.0.0.1", port=0) as endpoint:
        job = _Job(spec, inspector, log, hub=hub, triggered=True, recipe="r1")
        try:
            answers = asyncio.run(_plc(endpoint.address, ["A-1", "A-2", "A-3"]))
        finally:
            job.end()
        rows = sorted(log.query(limit=None), key=lambda r: r.id)
    assert job.error is None
    assert [c for _, _, c in answers] == [1, 2, 3]
    assert [(r.part_id, r.recipe) for r in rows] == [("A-1", "r1"), ("A-2", "r1"), ("A-3", "r1")]
    for (verdict, p, _), f in zip(answers, files[:3]):
        want_verdict, want_p = expected[Path(f).name]
        assert verdict == {"GOOD": 1, "ANOMALY": 2}[want_verdict] and p == pytest.approx(want_p, abs=1e-5)


def _modbus_plc(address: str, part_ids: list[str]) -> list[tuple[int, float, int]]:
    """A PLC without OPC UA: per part, write the PartId registers, raise the Trigger coil, poll ResultCounter."""
    from pymodbus.client import ModbusTcpClient

    from engine.lineio.modbus import STRING_REGISTERS, Coil, DiscreteInput, Register, encode_string

    host, port = address.rsplit(":", 1)
    plc = ModbusTcpClient(host, port=int(port), timeout=5)
    assert plc.connect()
    try:
        deadline = time.monotonic() + 60
        while not plc.read_discrete_inputs(DiscreteInput.READY, count=1).bits[0]:
            assert time.monotonic() < deadline, "station never Ready"
            time.sleep(0.02)

        def outputs():
            regs = plc.read_holding_registers(0, count=Register.ACTIVE_RECIPE + STRING_REGISTERS).registers
            p = plc.convert_from_registers(regs[1:3], plc.DATATYPE.FLOAT32, word_order="big")
            return regs[Register.VERDICT], p, plc.convert_from_registers(regs[4:6], plc.DATATYPE.UINT32, word_order="big")

        answers = []
        for part_id in part_ids:
            before = outputs()[2]
            plc.write_registers(Register.PART_ID, encode_string(part_id))
            plc.write_coil(Coil.TRIGGER, True)
            while (answer := outputs())[2] == before:
                assert time.monotonic() < deadline, f"no result for {part_id}"
                time.sleep(0.01)
            answers.append(answer)
            plc.write_coil(Coil.TRIGGER, False)
        return answers
    finally:
        plc.close()


@pytest.mark.parametrize("kind", ["folder", "pylon"])
def test_a_plc_over_modbus_gets_predicts_verdicts_for_triggered_parts(kind, inspector, parts, expected, tmp_path):  # noqa: F811
    pytest.importorskip("pymodbus")
    from engine.lineio.modbus import ModbusEndpoint

    if kind == "pylon" and not _pylon_available():
        pytest.skip("pylon emulator not available (pypylon or engine.sources.pylon missing)")
    spec = str(parts) if kind == "folder" else f"pylon:0?trigger=software&image_dir={parts}"
    files = sorted(parts.glob("*.png"))
    hub = LineHub(station="e2e")
    with ResultsLog(tmp_path / "r.sqlite3") as log, ModbusEndpoint(hub, host="127.0.0.1", port=0) as endpoint:
        job = _Job(spec, inspector, log, hub=hub, triggered=True, recipe="r1")
        try:
            answers = _modbus_plc(endpoint.address, ["B-1", "B-2", "B-3"])
        finally:
            job.end()
        rows = sorted(log.query(limit=None), key=lambda r: r.id)
    assert job.error is None
    assert [c for _, _, c in answers] == [1, 2, 3]
    assert [(r.part_id, r.recipe) for r in rows] == [("B-1", "r1"), ("B-2", "r1"), ("B-3", "r1")]
    for (verdict, p, _), f in zip(answers, files[:3]):
        want_verdict, want_p = expected[Path(f).name]
        assert verdict == {"GOOD": 1, "ANOMALY": 2}[want_verdict] and p == pytest.approx(want_p, abs=1e-5)
