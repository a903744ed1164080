"""What the calibration view shows scores of, and the rows of its target table."""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import VisInspectError
from engine.evaluation.calibrate import Calibration, CalibrationError, calibration_table
from engine.types import RuntimeOptions


@dataclass(frozen=True)
class ScoredImages:
    """Which images the scores shown came from, so storing a threshold can score the same images again."""

    model_path: str
    data_dir: str
    runtime: RuntimeOptions
    layout: str | None = None
    good_dir: str | None = None
    every_image: bool = False


def table_rows(labels, scores, false_reject_percent: float) -> list[Calibration]:
    """Every target at 1 % and the chosen false-reject percentage, each once (none when no threshold can be chosen)."""
    try:
        rows = calibration_table(labels, scores, false_reject_percents=(1.0, false_reject_percent))
    except (CalibrationError, VisInspectError):
        return []
    unique: dict[str, Calibration] = {}
    for c in rows:
        unique.setdefault(c.target, c)
    return list(unique.values())
