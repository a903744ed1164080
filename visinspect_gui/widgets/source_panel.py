"""The source panel: which camera, stream, video, folder or images to inspect, and Start / Stop / Step."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from engine.data.decode import IMAGE_SUFFIXES, is_image_file
from engine.sources import VIDEO_SUFFIXES, camera_spec
from visinspect_gui.widgets.common import Card, elide_middle, glyph_icon, hint, wheel_only_when_focused

INDUSTRIAL_PREFIXES = ("pylon:", "genicam:")
RATES = (("As fast as possible", None), ("30 fps", 30.0), ("10 fps", 10.0), ("5 fps", 5.0), ("2 fps", 2.0), ("1 fps", 1.0))


def classify_paths(paths: list[str]) -> str | list[str] | None:
    """What dropped or chosen paths mean as a source: a folder, a video, a list of images, or None."""
    paths = [p for p in paths if p]
    if len(paths) == 1:
        path = Path(paths[0])
        if path.is_dir():
            return str(path)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return str(path)
    images = [str(p) for p in paths if is_image_file(p) and Path(p).is_file()]
    return images or None


class SourcePanel(Card):
    """Chooses the source; emits start/stop/step requests and shows whether a run is going."""

    start_requested = Signal()
    stop_requested = Signal()
    step_requested = Signal()
    source_changed = Signal(str)  # a short description of the new source

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Source", parent)
        self._spec: str | list[str] | None = None
        self._shown_text = ""  # what set_source put in the line edit, so an unchanged edit is not a new source
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Camera index, stream URL, video, folder or image")
        self.edit.setToolTip("Type a camera index (0, 1 …), an rtsp:// or http:// URL, or a path; or drop files here")
        self.edit.editingFinished.connect(self._on_text_edited)
        self.body.addWidget(self.edit)

        pick = QGridLayout()
        pick.setSpacing(6)
        self.camera_button = QPushButton("Camera…")
        self.video_button = QPushButton("Video…")
        self.folder_button = QPushButton("Folder…")
        self.images_button = QPushButton("Images…")
        self.camera_button.clicked.connect(self._on_camera_clicked)
        self.video_button.clicked.connect(self._on_video_clicked)
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.images_button.clicked.connect(self._on_images_clicked)
        for i, b in enumerate((self.camera_button, self.video_button, self.folder_button, self.images_button)):
            pick.addWidget(b, i // 2, i % 2)
        self.body.addLayout(pick)

        self.current = hint("No source chosen — pick one above or drop a folder, video or images on the window.")
        self.body.addWidget(self.current)

        options = QHBoxLayout()
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setToolTip("Start again from the first file or frame at the end (folders, videos, images)")
        self.rate_combo = QComboBox()
        for label, value in RATES:
            self.rate_combo.addItem(label, value)
        wheel_only_when_focused(self.rate_combo)
        self.rate_combo.setToolTip("Read at most this many frames per second (replaying files at line speed)")
        options.addWidget(self.loop_box)
        options.addStretch(1)
        options.addWidget(QLabel("Rate"))
        options.addWidget(self.rate_combo)
        self.body.addLayout(options)
        self.choosers = (self.edit, self.camera_button, self.video_button, self.folder_button, self.images_button, self.loop_box, self.rate_combo)
        self._option_labels = [options.itemAt(i).widget() for i in range(options.count()) if isinstance(options.itemAt(i).widget(), QLabel)]

        controls = QHBoxLayout()
        controls.setSpacing(6)
        self.start_button = QPushButton("Start")
        self.start_button.setIcon(glyph_icon("play"))
        self.start_button.setObjectName("StartButton")
        self.start_button.setToolTip("Start inspecting the source (F5)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(glyph_icon("stop"))
        self.stop_button.setObjectName("StopButton")
        self.stop_button.setToolTip("Stop and release the source (Shift+F5)")
        self.step_button = QPushButton("Step")
        self.step_button.setIcon(glyph_icon("step", "#d8dbe0"))
        self.step_button.setObjectName("StepButton")
        self.step_button.setToolTip("Inspect one frame, then pause (F10)")
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.step_button.clicked.connect(self.step_requested)
        for b in (self.start_button, self.stop_button, self.step_button):
            controls.addWidget(b)
        self.body.addLayout(controls)
        self.set_state("idle")

    # -- what the station reads ----------------------------------------------------------------

    def spec(self) -> str | list[str] | None:
        """The chosen source: a settings string (camera, URL, path) or a list of image files."""
        return self._spec

    @property
    def loop(self) -> bool:
        """Whether files and videos start again at their end."""
        return self.loop_box.isChecked()

    @property
    def max_fps(self) -> float | None:
        """Most frames per second to read, or None for as fast as possible."""
        return self.rate_combo.currentData()

    # -- setting the source --------------------------------------------------------------------

    def set_source(self, spec: str | list[str], *, loop: bool | None = None, max_fps: float | None = -1.0) -> None:
        """Use spec as the source (and optionally set loop and rate; max_fps=None means unlimited)."""
        self._spec = spec
        if isinstance(spec, list):
            names = ", ".join(Path(p).name for p in spec[:3]) + (" …" if len(spec) > 3 else "")
            self.edit.setText(f"{len(spec)} image(s): {names}")
            text = f"{len(spec)} image file(s)"
        else:
            self.edit.setText(spec)
            text = self._describe(spec)
        self._shown_text = self.edit.text()
        self.current.setText(text)
        self.current.setToolTip(spec if isinstance(spec, str) else "\n".join(spec[:50]))
        if loop is not None:
            self.loop_box.setChecked(loop)
        if max_fps != -1.0:
            index = next((i for i, (_, v) in enumerate(RATES) if v == max_fps), 0)
            self.rate_combo.setCurrentIndex(index)
        self.source_changed.emit(text)

    def accept_paths(self, paths: list[str]) -> bool:
        """Take dropped files or folders as the source; False when none of them is usable."""
        spec = classify_paths(paths)
        if spec is None:
            return False
        self.set_source(spec)
        return True

    @staticmethod
    def _describe(spec: str) -> str:
        """A short label for a source string (camera, stream, folder, video or file)."""
        text = spec.strip()
        if text.startswith(INDUSTRIAL_PREFIXES):
            return f"Camera {elide_middle(text, 48)}"
        camera = camera_spec(text)
        if camera is not None and isinstance(camera.target, str):
            return f"Stream {elide_middle(text, 48)}"
        if camera is not None:
            return f"Camera {camera.target}" + (f" at {camera.width}x{camera.height}" if camera.width else "")
        path = Path(text)
        if path.is_dir():
            return f"Folder {elide_middle(str(path), 48)}"
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return f"Video {elide_middle(path.name, 48)}"
        return elide_middle(text, 56)

    def set_state(self, state: str) -> None:
        """Enable the buttons that make sense: idle, starting, running or paused."""
        self.start_button.setEnabled(state in ("idle", "paused"))
        self.start_button.setText("Resume" if state == "paused" else "Start")
        self.stop_button.setEnabled(state != "idle")
        self.step_button.setEnabled(state in ("idle", "running", "paused"))
        for w in self.choosers:
            w.setEnabled(state == "idle")

    def set_choosing_allowed(self, allowed: bool) -> None:
        """Operator mode shows the source and Start / Stop / Step only; engineer mode lets the source be changed."""
        for w in (*self.choosers, *self._option_labels):
            w.setVisible(allowed)

    def _dialog_dir(self) -> str:
        """Where file dialogs open: beside the current source, else the home folder (never the program's folder)."""
        spec = self._spec[0] if isinstance(self._spec, list) and self._spec else self._spec
        if isinstance(spec, str) and camera_spec(spec) is None and Path(spec).exists():
            return str(Path(spec) if Path(spec).is_dir() else Path(spec).parent)
        return str(Path.home())

    # -- slots ---------------------------------------------------------------------------------

    def _on_text_edited(self) -> None:
        """A typed camera index, URL or path becomes the source."""
        text = self.edit.text().strip()
        if text and text != self._shown_text:
            self.set_source(text)

    def _on_camera_clicked(self) -> None:
        """Open the Camera dialog (device list, live preview, settings); OK makes its spec the source."""
        from visinspect_gui.widgets.camera_dialog import CameraDialog  # imports the camera SDK probes only when asked

        current = self._spec if isinstance(self._spec, str) and not Path(self._spec).exists() else None
        dialog = self.camera_dialog = CameraDialog(self, current=current)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: dialog.spec() and self.set_source(dialog.spec()))
        dialog.open()

    def _on_video_clicked(self) -> None:
        """Pick a video file."""
        pattern = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self._dialog_dir(), f"Videos ({pattern});;All files (*)")
        if path:
            self.set_source(path)

    def _on_folder_clicked(self) -> None:
        """Pick a folder of images."""
        path = QFileDialog.getExistingDirectory(self, "Open folder of images", self._dialog_dir())
        if path:
            self.set_source(path)

    def _on_images_clicked(self) -> None:
        """Pick one or more image files."""
        pattern = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self._dialog_dir(), f"Images ({pattern});;All files (*)")
        if paths:
            self.set_source(paths if len(paths) > 1 else paths[0])
