"""The station's OPC UA address space as data: namespace, object and variables (browse name, type, access, meaning).

Kept apart from the server so the node map can be read (docs, UI, tests) without the asyncua package.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.lineio.hub import LineState

NAMESPACE_URI = "urn:visinspect:station"
OBJECT_NAME = "VisInspect"


@dataclass(frozen=True)
class NodeSpec:
    """One variable of the station object: browse name, OPC UA data type, whether a client may write it, meaning."""

    name: str
    data_type: str  # an asyncua VariantType name
    writable: bool
    meaning: str

    @property
    def node_id(self) -> str:
        return f"{OBJECT_NAME}.{self.name}"


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("Trigger", "Boolean", True, "a rising edge (False then True) inspects the next frame"),
    NodeSpec("PartId", "String", True, "written before the trigger; stored with that part's result"),
    NodeSpec("Recipe", "String", True, "the recipe in use; writing a name asks the station to change product"),
    NodeSpec("Busy", "Boolean", False, "a triggered part is being grabbed or inspected"),
    NodeSpec("Ready", "Boolean", False, "a model is loaded and the source is open: triggers will be inspected"),
    NodeSpec("Verdict", "Int16", False, "last result: 0 none, 1 good, 2 anomaly, 3 error, 4 review, 5 not product"),
    NodeSpec("PAnomaly", "Double", False, "last result's anomaly probability (0 for an error)"),
    NodeSpec("ResultPartId", "String", False, "the part id the last result belongs to"),
    NodeSpec("ResultCounter", "UInt32", False, "+1 per result, written after Verdict, PAnomaly and ResultPartId"),
    NodeSpec("Heartbeat", "UInt32", False, "+1 about once a second while the station runs"),
    NodeSpec("LastError", "String", False, "the last error (failed part, refused recipe), empty if none"),
    NodeSpec("Station", "String", False, "the station's name"),
)
RESULT_ORDER = ("Verdict", "PAnomaly", "ResultPartId", "ResultCounter")  # ResultCounter last: the PLC's signal


def state_values(state: LineState) -> dict[str, object]:
    """The value each station variable shows for one hub state (PartId aside: the PLC writes it)."""
    result = state.last_result
    return {
        "Station": state.station, "Ready": state.ready, "Busy": state.busy, "Recipe": state.recipe,
        "LastError": state.last_error, "Heartbeat": state.heartbeat,
        "Verdict": int(state.verdict), "PAnomaly": float(state.p_anomaly),
        "ResultPartId": result.part_id if result is not None else "", "ResultCounter": state.result_counter,
    }  # fmt: skip


__all__ = ["NAMESPACE_URI", "NODES", "OBJECT_NAME", "RESULT_ORDER", "NodeSpec", "state_values"]
