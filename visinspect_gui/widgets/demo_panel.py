"""The first-run demo banner: builds a synthetic product and a small model offline, with a progress bar."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from engine.demo import DemoProgress, DemoReady, prepare_demo
from visinspect_gui.workers import Worker


class DemoPanel(QFrame):
    """Offers (or runs) the demo build when the station has no model; emits demo_ready when the model is saved."""

    demo_ready = Signal(object)  # DemoReady
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, out_dir=None, model_dir=None) -> None:
        super().__init__(parent)
        self.setObjectName("DemoPanel")
        self.out_dir, self.model_dir = out_dir, model_dir
        self._worker: Worker | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        top = QHBoxLayout()
        text = QVBoxLayout()
        self.title = QLabel("No product model on this station yet")
        self.title.setObjectName("DemoTitle")
        self.message = QLabel(
            "Build a demo: synthetic parts and a small model trained on them right here, offline, in about a minute."
        )
        self.message.setObjectName("DemoMessage")
        self.message.setWordWrap(True)
        text.addWidget(self.title)
        text.addWidget(self.message)
        top.addLayout(text, 1)
        self.build_button = QPushButton("Build demo")
        self.build_button.setObjectName("PrimaryButton")
        self.build_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        top.addWidget(self.build_button)
        top.addWidget(self.cancel_button)
        layout.addLayout(top)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.progress.hide()
        layout.addWidget(self.progress)

    @property
    def is_running(self) -> bool:
        """True while the demo is being prepared."""
        return self._worker is not None

    def start(self) -> None:
        """Build the demo in a worker (reusing an earlier one if it is complete)."""
        if self._worker is not None:
            return
        self.show()
        self.title.setText("Preparing the demo station")
        self.build_button.hide()
        self.cancel_button.show()
        self.progress.show()
        self.progress.setValue(0)
        worker = Worker(prepare_demo, out_dir=self.out_dir, model_dir=self.model_dir)
        worker.event_ready.connect(self._on_event)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.finished.connect(self._on_finished)
        self._worker = worker.start()

    def cancel(self) -> None:
        """Ask the demo build to stop; no model is saved."""
        if self._worker is not None:
            self._worker.stop()
            self.message.setText("Cancelling…")

    def shutdown(self) -> None:
        """Stop the demo build (window close)."""
        self.cancel()

    def _on_event(self, event) -> None:
        """Advance the progress bar, and announce the demo when it is ready."""
        if isinstance(event, DemoProgress):
            self.progress.setValue(round(event.fraction * 1000))
            self.message.setText(event.message)
        elif isinstance(event, DemoReady):
            self.title.setText("Demo ready")
            self.message.setText(
                f"Demo model saved to {event.model_path}. It was trained without ImageNet weights on synthetic parts."
            )
            self.demo_ready.emit(event)

    def _on_failed(self, message: str) -> None:
        """Say why the demo could not be built."""
        self.title.setText("The demo could not be built")
        self.message.setText(message)
        self.failed.emit(message)

    def _on_cancelled(self) -> None:
        """Say that nothing was saved and what to do instead."""
        self.title.setText("Demo cancelled")
        self.message.setText("No model was saved. Build the demo again, or open a model file in the Model panel.")

    def _on_finished(self) -> None:
        """Hide the banner after success; otherwise offer the build again."""
        self._worker = None
        self.cancel_button.hide()
        self.progress.hide()
        if self.title.text() == "Demo ready":
            self.hide()
        else:
            self.build_button.show()
