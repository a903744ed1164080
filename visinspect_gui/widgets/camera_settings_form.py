"""The camera dialog's settings fields: exposure, gain, pixel format, ROI, binning, frame rate, trigger; resolution for OpenCV."""

from __future__ import annotations

import re
from dataclasses import replace

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QDoubleValidator, QIntValidator, QRegularExpressionValidator
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QWidget

from engine.sources.industrial import CameraKind, CameraSettings, TriggerMode
from visinspect_gui.widgets.common import wheel_only_when_focused

PIXEL_FORMATS = ("", "Mono8", "RGB8", "BGR8", "BayerRG8", "BayerBG8", "YUV422_8")
TRIGGERS = (("Free run (off)", TriggerMode.FREE_RUN), ("Software trigger", TriggerMode.SOFTWARE), ("Hardware trigger on line 1", TriggerMode.LINE1))
_ROI = re.compile(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*")
_RESOLUTION = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")
DEFAULT = "camera default"


def _number(edit: QLineEdit) -> float | None:
    text = edit.text().strip().replace(",", ".")
    return float(text) if text else None


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class CameraSettingsForm(QWidget):
    """Edits CameraSettings (industrial cameras) or a resolution (OpenCV cameras); empty fields keep the camera's own."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = self.form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.exposure = self._edit("µs, e.g. 5000", QDoubleValidator(1.0, 1e8, 3))
        self.gain = self._edit(f"dB ({DEFAULT})", QDoubleValidator(-100.0, 100.0, 3))
        self.pixel_format = QComboBox()
        self.pixel_format.setEditable(True)
        self.pixel_format.addItems(PIXEL_FORMATS)
        self.pixel_format.lineEdit().setPlaceholderText(DEFAULT)
        self.pixel_format.currentTextChanged.connect(self.changed)
        self.roi = self._edit("x, y, width, height on the sensor", QRegularExpressionValidator(QRegularExpression(r"[\d\s,]*")))
        self.binning = self._edit(f"1, 2, 4 ({DEFAULT})", QIntValidator(1, 16))
        self.frame_rate = self._edit(f"frames per second ({DEFAULT})", QDoubleValidator(0.01, 10000.0, 3))
        self.trigger = QComboBox()
        for label, mode in TRIGGERS:
            self.trigger.addItem(label, mode)
        self.trigger.currentIndexChanged.connect(self.changed)
        self.resolution = self._edit("e.g. 1920x1080 (camera default)", QRegularExpressionValidator(QRegularExpression(r"[\dxX×\s]*")))
        wheel_only_when_focused(self.pixel_format, self.trigger)
        self._industrial = (
            ("Exposure (µs)", self.exposure), ("Gain", self.gain), ("Pixel format", self.pixel_format), ("Sensor ROI", self.roi),
            ("Binning", self.binning), ("Frame rate", self.frame_rate), ("Trigger", self.trigger),
        )  # fmt: skip
        for label, field in self._industrial:
            form.addRow(label, field)
        form.addRow("Resolution", self.resolution)
        self.problem = QLabel("")
        self.problem.setObjectName("SettingsProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #e06c6c;")
        form.addRow(self.problem)
        self.set_kind(None)

    def _edit(self, placeholder: str, validator) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        edit.setValidator(validator)
        edit.setClearButtonEnabled(True)
        edit.textChanged.connect(self.changed)
        return edit

    def set_kind(self, kind: CameraKind | None) -> None:
        """Show the fields that apply: industrial settings, an OpenCV resolution, or none (a stream or file)."""
        industrial = kind in (CameraKind.PYLON, CameraKind.GENICAM)
        for _label, field in self._industrial:
            self.form.setRowVisible(field, industrial)
        self.form.setRowVisible(self.resolution, kind is CameraKind.OPENCV)
        self.kind = kind

    def set_settings(self, settings: CameraSettings) -> None:
        """Fill the fields from settings (None values leave a field empty: the camera's own)."""
        self.exposure.setText("" if settings.exposure_us is None else _plain(settings.exposure_us))
        self.gain.setText("" if settings.gain is None else _plain(settings.gain))
        self.pixel_format.setCurrentText(settings.pixel_format or "")
        self.roi.setText("" if settings.roi is None else ",".join(str(v) for v in settings.roi))
        self.binning.setText("" if settings.binning is None else str(settings.binning))
        self.frame_rate.setText("" if settings.frame_rate is None else _plain(settings.frame_rate))
        self.trigger.setCurrentIndex(next(i for i, (_l, mode) in enumerate(TRIGGERS) if mode is settings.trigger))

    def set_resolution(self, width: int | None, height: int | None) -> None:
        self.resolution.setText(f"{width}x{height}" if width and height else "")

    def settings(self, base: CameraSettings = CameraSettings()) -> CameraSettings:
        """base with the fields' values; ValueError in one line for a field that is not valid."""
        roi_text = self.roi.text().strip()
        match = _ROI.fullmatch(roi_text)
        if roi_text and not match:
            raise ValueError("Sensor ROI needs four whole numbers: x, y, width, height")
        if match and (int(match.group(3)) < 1 or int(match.group(4)) < 1):
            raise ValueError("Sensor ROI needs a width and height of 1 or more")
        for name, edit in (("Exposure", self.exposure), ("Gain", self.gain), ("Binning", self.binning), ("Frame rate", self.frame_rate)):
            if edit.text().strip() and not edit.hasAcceptableInput():
                raise ValueError(f"{name}: {edit.text().strip()} is out of range")
        binning = self.binning.text().strip()
        return replace(
            base,
            exposure_us=_number(self.exposure), gain=_number(self.gain), pixel_format=self.pixel_format.currentText().strip() or None,
            roi=tuple(int(g) for g in match.groups()) if match else None, binning=int(binning) if binning else None,
            frame_rate=_number(self.frame_rate), trigger=self.trigger.currentData(),
        )  # fmt: skip

    def resolution_value(self) -> tuple[int, int] | None:
        """(width, height) asked of an OpenCV camera, None for its default; ValueError when not WxH."""
        text = self.resolution.text().strip()
        if not text:
            return None
        match = _RESOLUTION.fullmatch(text)
        if not match or min(int(g) for g in match.groups()) < 1:
            raise ValueError("Resolution is width x height, e.g. 1920x1080")
        return int(match.group(1)), int(match.group(2))

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
