"""The Camera dialog: the cameras the station can see, a live preview of the one selected, its settings -> a source spec."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.errors import SourceError
from engine.sources import camera_spec, discover
from engine.sources.discover import CameraInfo
from engine.sources.industrial import CameraKind, CameraSettings, format_camera_spec, parse_camera_spec
from visinspect_gui.widgets.camera_preview import (
    FRAME_READY,
    LatestFrame,
    PreviewLabel,
    PreviewNote,
    PreviewOpened,
    preview_frames,
)
from visinspect_gui.widgets.camera_settings_form import CameraSettingsForm
from visinspect_gui.widgets.common import elide_middle, hint, scrolled
from visinspect_gui.workers import Latest

PREFERRED_SIZE = (1040, 640)
COLUMNS = ("Camera", "Kind", "Serial", "Source")
PREVIEW_DELAY_MS = 300  # settings typed in quick succession restart the preview once


@dataclass(frozen=True)
class CameraScan:
    """What a scan found: the cameras and, per backend, None when usable or the line saying how to add it."""

    cameras: list[CameraInfo]
    backends: dict[CameraKind, str | None]


def scan_cameras(*, stop) -> Iterator[CameraScan]:
    """Worker body: list every camera (opening OpenCV indices and importing vendor SDKs is slow)."""
    yield CameraScan(discover.list_cameras(), discover.backend_status())


def _industrial(spec: str):
    """The parsed pylon:/genicam: spec, or None for anything else."""
    try:
        return parse_camera_spec(spec)
    except SourceError:
        return None


class CameraDialog(QDialog):
    """Pick a camera (or type a stream URL), see it live, set its acquisition settings; OK gives spec()."""

    def __init__(self, parent: QWidget | None = None, *, current: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Camera")
        self.setObjectName("CameraDialog")
        self._current = current
        self._cameras: list[CameraInfo] = []
        self._scan = Latest()
        self._preview = Latest()
        self._mailbox = LatestFrame()
        self._previewing: str | None = None
        self.scans_done = 0
        self._closed = False

        self.devices = QTreeWidget()
        self.devices.setObjectName("CameraList")
        self.devices.setColumnCount(len(COLUMNS))
        self.devices.setHeaderLabels(COLUMNS)
        self.devices.setRootIsDecorated(False)
        self.devices.setUniformRowHeights(True)
        self.devices.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.devices.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.devices.header().setStretchLastSection(True)
        self.devices.setMinimumHeight(110)
        self.devices.itemSelectionChanged.connect(self._on_selection_changed)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for cameras again (after plugging one in)")
        self.refresh_button.clicked.connect(self.refresh)
        self.scan_status = QLabel("")
        self.scan_status.setWordWrap(True)
        self.backend_lines = hint("")
        self.backend_lines.setObjectName("BackendStatus")
        self.backend_lines.hide()
        self.form = CameraSettingsForm()
        self.form.changed.connect(self._on_settings_changed)
        self.other = QLineEdit()
        self.other.setObjectName("OtherSource")
        self.other.setPlaceholderText("rtsp://…, http://… or any other source")
        self.other.setToolTip("A stream URL (or any source the station reads); it is used instead of the camera selected")
        self.other.textChanged.connect(self._on_other_changed)
        self.spec_label = QLabel("")
        self.spec_label.setObjectName("SpecLine")
        self.spec_label.setWordWrap(True)
        self.spec_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preview = PreviewLabel()
        self.preview.show_text("Select a camera to see it live.")
        self.preview_note = QLabel("")
        self.preview_note.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._restart = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self._restart.timeout.connect(self._start_preview)
        self._compose()
        self._update_spec()
        self.fit_to_screen()
        self.refresh()

    def _compose(self) -> None:
        """Cameras, settings and stream URL on the left (scrolling if the screen is small), the preview on the right."""
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 6, 0)
        column.addWidget(self.devices, 1)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addWidget(self.scan_status, 1)
        column.addLayout(row)
        column.addWidget(self.backend_lines)
        column.addWidget(QLabel("<b>Settings</b> (empty: the camera's own)"))
        column.addWidget(self.form)
        column.addWidget(QLabel("<b>Or a stream URL</b>"))
        column.addWidget(self.other)
        scroll = scrolled(left)
        scroll.setMinimumWidth(380)
        right = QVBoxLayout()
        right.addWidget(self.preview, 1)
        right.addWidget(self.preview_note)
        body = QHBoxLayout()
        body.addWidget(scroll, 5)
        body.addLayout(right, 6)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.spec_label)
        layout.addWidget(self.buttons)

    def fit_to_screen(self) -> None:
        """The preferred size, or inside the available screen area (1280x720 and up)."""
        screen = (self.parent().screen() if self.parent() is not None else None) or QGuiApplication.primaryScreen()
        width, height = PREFERRED_SIZE
        if screen is not None:
            area = screen.availableGeometry()
            width, height = min(width, area.width() - 40), min(height, area.height() - 60)
        self.resize(width, height)

    # -- what the dialog gives -------------------------------------------------------------------

    def selected_camera(self) -> CameraInfo | None:
        items = self.devices.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def spec(self) -> str | None:
        """The source spec chosen: the stream URL typed, else the selected camera with its settings; None when invalid."""
        try:
            return self._spec()
        except ValueError:
            return None

    def _spec(self) -> str | None:
        """As spec(), but a settings field that is not valid raises ValueError saying which."""
        other = self.other.text().strip()
        if other:
            return other
        info = self.selected_camera()
        if info is None:
            return None
        if info.kind is CameraKind.OPENCV:
            size = self.form.resolution_value()
            index = camera_spec(info.spec).target if camera_spec(info.spec) is not None else info.spec
            return f"{index}@{size[0]}x{size[1]}" if size else str(index)
        parsed = parse_camera_spec(info.spec)
        return format_camera_spec(parsed.kind, parsed.target, self.form.settings(parsed.settings))

    # -- listing cameras -------------------------------------------------------------------------

    def refresh(self) -> None:
        """List the cameras again, in a worker; the list keeps its rows until the new ones arrive."""
        self.refresh_button.setEnabled(False)
        self.scan_status.setText("Looking for cameras…")
        self._scan.start(scan_cameras, on_event=self._open_only(self._on_scanned), on_failed=self._open_only(self._on_scan_failed),
                         on_finished=self._open_only(lambda: self.refresh_button.setEnabled(True)))  # fmt: skip

    def _on_scanned(self, scan: CameraScan) -> None:
        """Fill the list (keeping the selection, else selecting the current source's camera) and say what is missing."""
        self.scans_done += 1
        keep = self.selected_camera()
        self._cameras = list(scan.cameras)
        self.devices.blockSignals(True)
        self.devices.clear()
        for info in self._cameras:
            item = QTreeWidgetItem([info.label, info.kind.value, info.serial or "", info.spec])
            item.setToolTip(0, f"{info.label}\n{info.model or ''}".strip())
            item.setToolTip(3, info.spec)
            item.setData(0, Qt.ItemDataRole.UserRole, info)
            self.devices.addTopLevelItem(item)
        self.devices.blockSignals(False)
        for column, most in ((0, 240), (1, 80), (2, 140)):
            self.devices.resizeColumnToContents(column)
            self.devices.setColumnWidth(column, min(most, self.devices.columnWidth(column)))
        count = len(self._cameras)
        self.scan_status.setText(f"{count} camera{'s' if count != 1 else ''} found." if count else "No camera found.")
        missing = [line for line in scan.backends.values() if line]
        self.backend_lines.setText("\n".join(missing))
        self.backend_lines.setVisible(bool(missing))
        wanted = keep.spec if keep is not None else self._current
        self._current = None
        if not self._select(wanted) and wanted and keep is None and not self.other.text():
            self.other.setText(wanted)  # a stream, or a camera not plugged in now: kept as typed
        elif keep is None:
            self._on_selection_changed()

    def _on_scan_failed(self, text: str) -> None:
        self.scan_status.setText(f"Cameras could not be listed: {text}")

    def _select(self, spec: str | None) -> bool:
        """Select the row of the camera spec names (same device, any settings) and fill the settings from spec."""
        if not spec:
            return False
        industrial = _industrial(spec)
        opencv = camera_spec(spec)
        for i in range(self.devices.topLevelItemCount()):
            item = self.devices.topLevelItem(i)
            info: CameraInfo = item.data(0, Qt.ItemDataRole.UserRole)
            row = _industrial(info.spec)
            same = (
                industrial is not None and row is not None and (row.kind, row.target) == (industrial.kind, industrial.target)
                or opencv is not None and info.kind is CameraKind.OPENCV and camera_spec(info.spec) is not None
                and camera_spec(info.spec).target == opencv.target
            )  # fmt: skip
            if same:
                self.devices.setCurrentItem(item)
                item.setSelected(True)
                if industrial is not None:
                    self.form.set_settings(industrial.settings)
                elif opencv is not None:
                    self.form.set_resolution(opencv.width, opencv.height)
                self._update_spec()
                return True
        return False

    # -- reacting to choices ---------------------------------------------------------------------

    def _on_selection_changed(self) -> None:
        """Another camera: show its settings (as its listed spec has them) and preview it."""
        info = self.selected_camera()
        if info is not None:
            self.other.blockSignals(True)
            self.other.clear()
            self.other.blockSignals(False)
            parsed = _industrial(info.spec)
            self.form.blockSignals(True)
            self.form.set_settings(parsed.settings if parsed is not None else CameraSettings())
            self.form.set_resolution(None, None)
            self.form.blockSignals(False)
        self.form.set_kind(info.kind if info is not None else None)
        self._update_spec()
        self._start_preview()

    def _on_other_changed(self, text: str) -> None:
        """A typed URL replaces the camera selected."""
        if text.strip() and self.devices.selectedItems():
            self.devices.blockSignals(True)
            self.devices.clearSelection()
            self.devices.blockSignals(False)
            self.form.set_kind(None)
        self._on_settings_changed()

    def _on_settings_changed(self) -> None:
        self._update_spec()
        self._restart.start()

    def _update_spec(self) -> None:
        """Show the spec OK would give; OK only with a valid one."""
        try:
            spec = self._spec()
            self.form.show_problem("")
        except ValueError as exc:
            spec = None
            self.form.show_problem(str(exc))
        shown = html.escape(elide_middle(spec, 110)) if spec else ""
        self.spec_label.setText(f"Source: <b>{shown}</b>" if spec else "Source: none chosen")  # a long spec never widens the dialog
        self.spec_label.setToolTip(spec or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(spec))

    # -- preview ---------------------------------------------------------------------------------

    def _start_preview(self) -> None:
        """Preview the spec now chosen (the previous preview stops; its frames are never shown)."""
        self._restart.stop()
        spec = self.spec()
        if spec == self._previewing and self._preview.busy():
            return
        self.stop_preview()
        self._previewing = spec
        if not spec or not self.isVisible():
            self.preview.show_text("Select a camera to see it live." if not spec else "")
            return
        self._mailbox = mailbox = LatestFrame()
        self.preview.show_text("Opening…")
        self.preview_note.setText("")
        self._preview.start(preview_frames, spec, mailbox, on_event=self._open_only(lambda item: self._on_preview(item, mailbox)),
                            on_failed=self._open_only(self._on_preview_failed))  # fmt: skip

    def _on_preview(self, item, mailbox: LatestFrame) -> None:
        if item == FRAME_READY:
            frame = mailbox.take()
            if frame is not None:
                self.preview.show_frame(frame)
                h, w = frame.image.shape[:2]
                self.preview_note.setText(f"{self._described} · {w}x{h}")
        elif isinstance(item, PreviewOpened):
            self._described = item.description
            self.preview_note.setText(item.description)
        elif isinstance(item, PreviewNote):
            self.preview_note.setText(item.text)

    _described = ""

    def _on_preview_failed(self, text: str) -> None:
        self.preview.show_text(f"No preview: {text}")

    def stop_preview(self) -> None:
        """Stop reading frames (returns at once; the reader releases the camera on its thread)."""
        self._preview.stop()
        self._previewing = None

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._previewing is None:
            self._restart.start()

    def _open_only(self, slot):
        """slot, called only while the dialog is open (a worker may report after it has closed and gone)."""
        return lambda *args: None if self._closed else slot(*args)

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: OK, Cancel and closing all come here
        self._closed = True
        self._restart.stop()
        self.stop_preview()
        self._scan.stop()
        super().done(result)
