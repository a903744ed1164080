"""Line I/O: the station's signals to and from a PLC or MES (OPC UA, Modbus TCP, MQTT), all through one LineHub."""

from engine.lineio.hub import LineHub, LineResult, LineState, LineVerdict, PartTrigger

__all__ = ["LineHub", "LineResult", "LineState", "LineVerdict", "PartTrigger"]
