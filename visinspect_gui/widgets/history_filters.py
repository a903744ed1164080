"""History's filter bar: verdict, a from–to date and time (to the minute), one exact source, one run; with a plant
results store, "This station" or "Plant", and for the plant one station and one recipe instead of source and run."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import QDate, QDateTime, Qt, QTime, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDateTimeEdit, QGridLayout, QHBoxLayout, QLabel, QWidget

from engine.results import ResultFilter, ResultsLog, RunSummary
from engine.types import Verdict
from visinspect_gui.widgets.history_model import source_label
from visinspect_gui.widgets.verdict_style import table_text
from visinspect_gui.workers import Latest, call

RUNS_LISTED = 500


def filter_choices(results: ResultsLog) -> tuple[list[str], list[RunSummary]]:
    """The log's sources and newest runs, for the combo boxes (run in a worker)."""
    return results.sources(), results.runs(limit=RUNS_LISTED)


def run_label(run: RunSummary) -> str:
    """A run as a combo box names it: when it started, its source, its rows."""
    return f"{datetime.fromtimestamp(run.first):%Y-%m-%d %H:%M} · {source_label(run.source)} · {run.rows:,} rows"


def _combo(first: str) -> QComboBox:
    """A combo box whose long entries are elided rather than widening the window."""
    combo = QComboBox()
    combo.addItem(first, None)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(12)
    return combo


class HistoryFilters(QWidget):
    """The controls that say which rows History lists; `changed` whenever one of them changes."""

    changed = Signal()
    failed = Signal(str)

    def __init__(self, results: ResultsLog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results = results
        self.plant = None  # the central store's CentralTarget, once set_plant() offers it
        self._choices = Latest()
        self._plant_choices = Latest()
        self.scope_combo = QComboBox()
        self.scope_combo.addItem("This station", False)
        self.scope_combo.addItem("Plant", True)
        self.scope_combo.setToolTip("This station's results log, or every station's results in the plant results store")
        self.scope_combo.hide()
        self.station_combo = _combo("All stations")
        self.station_combo.setToolTip("Only results of this station")
        self.recipe_combo = _combo("All recipes")
        self.recipe_combo.setToolTip("Only results judged under this recipe")
        self.verdict_combo = QComboBox()
        self.verdict_combo.addItem("All verdicts", None)
        for verdict in Verdict:
            self.verdict_combo.addItem(table_text(verdict), verdict)
        self.use_dates = QCheckBox("From")
        today = QDate.currentDate()
        self.since_edit = QDateTimeEdit(QDateTime(today.addDays(-7), QTime(0, 0)))
        self.until_edit = QDateTimeEdit(QDateTime(today, QTime(23, 59)))
        for edit in (self.since_edit, self.until_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setEnabled(False)
            edit.setToolTip("Both minutes included")
            self.use_dates.toggled.connect(edit.setEnabled)
            edit.dateTimeChanged.connect(lambda _d: self.use_dates.isChecked() and self.changed.emit())
        self.source_combo = _combo("All sources")
        self.source_combo.setToolTip("Only results of this source (exactly this one)")
        self.run_combo = _combo("All runs")
        self.run_combo.setToolTip("Only results of this run")

        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        dates = QHBoxLayout()
        dates.addWidget(self.use_dates)
        dates.addWidget(self.since_edit)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.until_edit)
        dates.addStretch(1)
        first = QHBoxLayout()
        first.addWidget(self.scope_combo)
        first.addWidget(self.verdict_combo, 1)
        layout.addLayout(first, 0, 0)
        layout.addLayout(dates, 0, 1)
        layout.addWidget(self.source_combo, 1, 0)
        layout.addWidget(self.run_combo, 1, 1)
        layout.addWidget(self.station_combo, 1, 0)  # the same places: either these or source and run are shown
        layout.addWidget(self.recipe_combo, 1, 1)
        self.station_combo.hide()
        self.recipe_combo.hide()
        layout.setColumnStretch(1, 1)
        self.verdict_combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.use_dates.toggled.connect(lambda _on: self.changed.emit())
        self.source_combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.run_combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.station_combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.recipe_combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.scope_combo.currentIndexChanged.connect(self._on_scope)

    def set_plant(self, target) -> None:
        """Offer the plant's results (a CentralTarget) beside this station's."""
        self.plant = target
        self.scope_combo.setToolTip(f"This station's results log, or every station's results in the plant results store {target.display}")
        self.scope_combo.show()

    def is_plant(self) -> bool:
        """True when the plant's results are listed rather than this station's."""
        return bool(self.scope_combo.currentData()) and self.plant is not None

    def _on_scope(self, _index: int) -> None:
        plant = self.is_plant()
        for combo in (self.source_combo, self.run_combo):
            combo.setVisible(not plant)
        for combo in (self.station_combo, self.recipe_combo):
            combo.setVisible(plant)
        self.reload_choices()
        self.changed.emit()

    def _dates(self) -> tuple[datetime | None, datetime | None]:
        if not self.use_dates.isChecked():
            return None, None
        since = self.since_edit.dateTime().toPython().replace(second=0, microsecond=0)
        until = self.until_edit.dateTime().toPython().replace(second=0, microsecond=0) + timedelta(minutes=1)
        return since, until

    def plant_filter(self):
        """The plant query the controls describe (verdict, both minutes of the range, station, recipe)."""
        from engine.central.plant import PlantFilter

        since, until = self._dates()
        return PlantFilter(self.station_combo.currentData(), self.recipe_combo.currentData(),
                           self.verdict_combo.currentData(), since, until)  # fmt: skip

    def filter(self) -> ResultFilter:
        """The filter the controls describe (both minutes of the date-time range included)."""
        since, until = self._dates()
        return ResultFilter(
            self.verdict_combo.currentData(), since, until,
            run_id=self.run_combo.currentData(), source=self.source_combo.currentData(),
        )  # fmt: skip

    def reload_choices(self) -> None:
        """Read the log's sources and runs (or the plant's stations and recipes) again in a worker, keeping what is
        selected; the plant's failure is History's one line, not a message of its own."""
        if self.is_plant():
            from visinspect_gui.widgets.history_plant import plant_choices

            self._plant_choices.start(call, plant_choices, self.plant, on_event=self._on_plant_choices)
        else:
            self._choices.start(call, filter_choices, self.results, on_event=self._on_choices, on_failed=self.failed.emit)

    def stop(self) -> None:
        self._choices.stop()
        self._plant_choices.stop()

    def _on_plant_choices(self, choices: tuple[list[str], list[str]]) -> None:
        stations, recipes = choices
        lost = [self._fill(self.station_combo, [(s, s, s) for s in stations]), self._fill(self.recipe_combo, [(r, r, r) for r in recipes])]
        if any(lost):
            self.changed.emit()

    def _on_choices(self, choices: tuple[list[str], list[RunSummary]]) -> None:
        sources, runs = choices
        source_items = [(s, s, s) for s in sources]
        run_items = [(run_label(r), r.run_id, f"{r.run_id}\n{r.source}\n{r.rows:,} rows, {r.anomalies:,} anomalies") for r in runs]
        lost = [self._fill(self.source_combo, source_items), self._fill(self.run_combo, run_items)]
        if any(lost):
            self.changed.emit()  # the selected source or run is no longer in the log: all of them are listed

    @staticmethod
    def _fill(combo: QComboBox, items: list[tuple[str, str, str]]) -> bool:
        """Replace the entries after the first, keeping the selection; True when the selected one is gone."""
        selected = combo.currentData()
        combo.blockSignals(True)
        try:
            while combo.count() > 1:
                combo.removeItem(1)
            for text, data, tip in items:
                combo.addItem(text, data)
                combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
            index = combo.findData(selected) if selected is not None else 0
            combo.setCurrentIndex(max(index, 0))
        finally:
            combo.blockSignals(False)
        return selected is not None and combo.findData(selected) < 0
