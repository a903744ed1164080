"""A logged anomaly frame read back for display, with its heatmap when the model that judged it is loaded."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from engine.data.decode import read_image
from engine.errors import ImageReadError
from engine.results.log import ResultRow
from engine.results.retention import FrameRemovedError, days_text, format_bytes, removed_by_retention
from engine.types import Inspection


def judged_by(inspector, row: ResultRow) -> bool:
    """True when the row's model hash is the inspector's model (rows of older logs hold 16 hex digits of it)."""
    return inspector is not None and bool(row.model_hash and inspector.ref.sha256) and inspector.ref.same_model(row.model)


@dataclass(frozen=True, eq=False)
class LoggedFrame:
    """A saved frame and, where the judging model is loaded, the inspection as logged with its heatmap recomputed."""

    image: np.ndarray
    inspection: Inspection | None


def read_logged_image(frame_path: str) -> np.ndarray:
    """The saved frame's pixels; FrameRemovedError (an ImageReadError) when the retention policy removed it."""
    try:
        return read_image(frame_path)
    except ImageReadError:
        policy = None if os.path.lexists(frame_path) else removed_by_retention(frame_path)
        if policy is None:
            raise
        raise FrameRemovedError(
            f"Frame removed by the retention policy (older than {days_text(policy.max_age_days)} or over "
            f"{format_bytes(policy.max_bytes)} of frames, oldest first); the result itself is still in the log."
        ) from None


def logged_frame(row: ResultRow, inspector=None) -> LoggedFrame:
    """Read the row's saved frame; recompute the heatmap only with the model that judged it (p and boxes as logged)."""
    image = read_logged_image(row.frame_path)
    thresholds = row.thresholds
    if not judged_by(inspector, row) or row.p_anomaly is None:
        return LoggedFrame(image, None)
    if thresholds is None:  # a row of an older log: its decision threshold with the model's box rule
        thresholds = inspector.thresholds.with_decision(row.threshold)
    insp = inspector.inspect([image], thresholds=thresholds)[0]
    regions = row.regions if row.regions is not None else row.boxes
    return LoggedFrame(image, replace(insp, p_anomaly=row.p_anomaly, regions=regions))
