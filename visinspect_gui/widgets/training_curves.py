"""Loss and accuracy curves of a training run: per-step loss, and per-epoch train and held-out figures."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.training.recipe import EpochReport, StepReport
from visinspect_gui.widgets.calibration_view import PLOT_BG
from visinspect_gui.widgets.report_view import fmt_pct

TRAIN_PEN, TEST_PEN, STEP_RGB = (90, 160, 255), (255, 170, 60), (150, 155, 165)


def _plot(ylabel: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background=PLOT_BG)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setLabel("left", ylabel)
    plot.setLabel("bottom", "epoch")
    plot.addLegend(offset=(-10, 10), labelTextColor="#d0d3d8", brush=pg.mkBrush(30, 32, 36, 200))
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    return plot


class TrainingCurves(QWidget):
    """Two plots that grow while training runs; the label says what the last epoch did."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _plot("loss")
        self.acc_plot = _plot("accuracy")
        self.acc_plot.setYRange(0, 1.02, padding=0)
        self.acc_plot.setXLink(self.loss_plot)

        def line(plot, rgb, symbol, name):
            return plot.plot([], [], pen=pg.mkPen(*rgb, width=2), symbol=symbol, symbolSize=6, symbolBrush=rgb, name=name)

        self.curves = {
            "step loss": self.loss_plot.plot([], [], pen=None, symbol="o", symbolSize=3, symbolPen=None,
                                             symbolBrush=pg.mkBrush(*STEP_RGB, 110), name="train loss per step"),  # fmt: skip
            "train loss": line(self.loss_plot, TRAIN_PEN, "o", "train loss"),
            "held-out loss": line(self.loss_plot, TEST_PEN, "s", "held-out loss"),
            "train accuracy": line(self.acc_plot, TRAIN_PEN, "o", "train accuracy"),
            "held-out accuracy": line(self.acc_plot, TEST_PEN, "s", "held-out accuracy"),
        }
        self.history: list[EpochReport] = []
        self._step_x: list[float] = []
        self._step_y: list[float] = []
        self.label = QLabel("Curves appear here while training.")
        self.label.setStyleSheet("color: #9aa0a6;")
        self.label.setWordWrap(True)  # one long line of figures made the Train tab wider than a 1280 px screen
        lay = QVBoxLayout(self)
        lay.addWidget(self.label)
        lay.addWidget(self.loss_plot, 1)
        lay.addWidget(self.acc_plot, 1)

    def clear(self) -> None:
        self.history, self._step_x, self._step_y = [], [], []
        for item in self.curves.values():
            item.setData([], [])

    def add_step(self, ev: StepReport) -> None:
        self._step_x.append(ev.epoch - 1 + ev.step / ev.steps)
        self._step_y.append(ev.loss)
        self.curves["step loss"].setData(self._step_x, self._step_y)

    def add_epoch(self, ev: EpochReport) -> None:
        self.history.append(ev)
        xs = [h.epoch for h in self.history]
        for name, value in (("train loss", "train_loss"), ("held-out loss", "test_loss"),
                            ("train accuracy", "train_accuracy"), ("held-out accuracy", "test_accuracy")):  # fmt: skip
            self.curves[name].setData(xs, [getattr(h, value) for h in self.history])
        stop = "  —  early stop: training accuracy reached the target" if ev.early_stop else ""
        self.label.setText(
            f"epoch {ev.epoch}: train loss {ev.train_loss:.4f}, accuracy {fmt_pct(ev.train_accuracy)}; "
            f"held-out loss {ev.test_loss:.4f}, accuracy {fmt_pct(ev.test_accuracy)} ({ev.seconds:.1f} s){stop}"
        )

    def points(self) -> dict[str, tuple[list[float], list[float]]]:
        """The plotted (x, y) points of each curve."""
        out = {}
        for name, item in self.curves.items():
            x, y = item.getData()
            out[name] = ([] if x is None else list(map(float, x)), [] if y is None else list(map(float, y)))
        return out
