"""Product recipes in the station: save the current setup as one, switch to another (engineer mode), name the one in use.

A recipe is model + thresholds + source + ROI + line I/O (engine.recipes); reading and writing it runs in a worker,
switching goes through the window's own model loading, so the model panel, audit and live view follow as usual.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QInputDialog, QMessageBox

from engine import recipes
from engine.errors import RecipeError
from engine.recipes import Recipe
from engine.results import ChangeKind
from visinspect_gui.access import Mode
from visinspect_gui.widgets.common import elide_middle, format_threshold
from visinspect_gui.widgets.status_bar import _field
from visinspect_gui.workers import Latest, call

log = logging.getLogger(__name__)
NEEDS_ENGINEER = "Saving or switching recipes needs engineer mode (Station → Engineer mode…)."


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


class RecipeController(QObject):
    """The Recipe menu's actions and the status-bar field that names the recipe in use."""

    recipe_applied = Signal(object)  # Recipe, once its model is loaded and its thresholds set
    recipe_saved = Signal(object)  # Recipe, once its file is written

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.current: Recipe | None = None  # the recipe switched to or saved this session
        self.name: str | None = window.settings.recipe_name()
        self._pending: Recipe | None = None  # switched to, waiting for its model
        self._who: str | None = None  # who asked for the pending recipe when not the person at the station (the PLC)
        self._job = Latest()
        self.field = _field("RecipeField", "The product recipe in use (Recipe → Switch recipe… changes it)")
        window.status.addPermanentWidget(self.field)
        window.station.recipe = self.name
        window.station.model_loaded.connect(self._on_model_loaded)
        window.station.model_failed.connect(self._on_model_failed)
        self._show_name()

    # -- what the menu calls ---------------------------------------------------------------------

    def _allowed(self) -> bool:
        if self.w.access.mode is not Mode.ENGINEER:
            self.w.show_message(NEEDS_ENGINEER, "warning")
            return False
        return True

    def ask_save(self) -> None:
        """List the recipes (in a worker), ask for a name (confirming a replacement) and save the current setup under it."""
        if self._allowed() and self._has_model():
            self._job.start(call, recipes.list_recipes, on_event=self._ask_name, on_failed=self._on_failed)

    def _ask_name(self, names: list[str]) -> None:
        suggested = self.name or self.w.station.inspector.meta.product
        name, ok = QInputDialog.getText(self.w, "Save as recipe", "Recipe name (the product it inspects):", text=suggested)
        name = name.strip()
        if not ok or not name:
            return
        replace = QMessageBox.StandardButton.Yes
        if name in names and QMessageBox.question(self.w, "Save as recipe", f"Replace recipe {name}?") != replace:
            return
        self.save_as(name)

    def ask_switch(self) -> None:
        """List the saved recipes (in a worker), then ask which one to switch to."""
        if self._allowed() and self._idle():
            self._job.start(call, recipes.list_recipes, on_event=self._choose, on_failed=self._on_failed)

    # -- saving ----------------------------------------------------------------------------------

    def _has_model(self) -> bool:
        if self.w.station.inspector is None:
            self.w.show_message("Load a model first: a recipe names the model it inspects with.", "warning")
            return False
        return True

    def recipe_now(self, name: str) -> Recipe:
        """The station's setup as a recipe: model in use, thresholds in force, source, ROI, and its line I/O settings."""
        inspector = self.w.station.inspector
        spec = self.w.source_panel.spec()
        return Recipe(
            name=name, model=str(Path(inspector.path).resolve()), decision_threshold=float(inspector.thresholds.decision),
            box_threshold=float(inspector.thresholds.box), source=spec if isinstance(spec, str) else None,
            roi=self.w.roi_tool.roi, io=self.w.line_io.io, triggered=self.w.line_io.triggered,
        )  # fmt: skip

    def save_as(self, name: str) -> None:
        """Write the current setup as recipe name (in a worker); it becomes the recipe in use."""
        if not self._allowed() or not self._has_model():
            return
        try:
            recipe = self.recipe_now(name)
        except RecipeError as exc:  # a name or value the recipe refuses: one line, nothing written
            self.w.show_message(str(exc), "warning")
            return
        if isinstance(self.w.source_panel.spec(), list):
            self.w.show_message("The recipe is saved without a source: a list of image files is not a line source.", "warning")
        self._job.start(call, recipes.save_recipe, recipe, on_event=lambda path: self._on_saved(recipe, path), on_failed=self._on_failed)

    def _on_saved(self, recipe: Recipe, path) -> None:
        previous = self.name
        self._use(recipe)
        if previous != recipe.name:
            self.w.access.record(ChangeKind.RECIPE, previous or "", recipe.name)
        self.w.show_message(f"Recipe {recipe.name} saved ({Path(path).name}).", "info")
        self.recipe_saved.emit(recipe)

    # -- switching -------------------------------------------------------------------------------

    def _idle(self) -> bool:
        if self.w.station.is_running:
            self.w.show_message("Stop the running source before switching recipe.", "warning")
            return False
        return True

    def _choose(self, names: list[str]) -> None:
        if not names:
            self.w.show_message("No recipe is saved yet: Recipe → Save as recipe… saves the current setup.", "info")
            return
        current = names.index(self.name) if self.name in names else 0
        name, ok = QInputDialog.getItem(self.w, "Switch recipe", "Recipe:", names, current, False)
        if ok and name:
            self.switch_to(name)

    def switch_to(self, name: str) -> None:
        """Read recipe name (in a worker), then set its source and ROI and load its model; its thresholds follow."""
        if self._allowed() and self._idle():
            self._job.start(call, recipes.load_recipe, name, on_event=self._apply, on_failed=self._on_failed)

    def _apply(self, recipe: Recipe) -> None:
        """Load the recipe's model; its source, ROI and thresholds are set once the model is in (nothing changes if not)."""
        if self._idle():
            self.apply_recipe(recipe)

    def apply_recipe(self, recipe: Recipe, *, who: str | None = None) -> None:
        """Switch to a recipe already read (the menu's, or a PLC's with who="plc"): its model loads, the rest follows."""
        self._pending, self._who = recipe, who
        self.w.open_model(recipe.model)

    def _on_model_loaded(self, inspector) -> None:
        """The pending recipe's model is in: set its thresholds once the window has shown the model's own (next turn)."""
        recipe = self._pending
        if recipe is None:
            return
        self._pending = None
        if _same_file(str(inspector.path), recipe.model):
            QTimer.singleShot(0, lambda: self._finish(recipe))

    def _finish(self, recipe: Recipe) -> None:
        if recipe.source:
            self.w.source_panel.set_source(recipe.source)
        self.w.roi_tool.set_roi(recipe.roi)
        panel = self.w.model_panel
        if recipe.decision_threshold is not None:
            panel.set_threshold(recipe.decision_threshold)
        if recipe.box_threshold is not None:
            panel.box_threshold.set_value(recipe.box_threshold, quiet=True)
            panel.box_threshold_changed.emit(recipe.box_threshold)
        previous = self.name
        self._use(recipe)
        if previous != recipe.name:
            if self._who:
                self.w.results.record_change(ChangeKind.RECIPE, previous or "", recipe.name, who=self._who)
            else:
                self.w.access.record(ChangeKind.RECIPE, previous or "", recipe.name)
        threshold = self.w.station.inspector.thresholds.decision
        self.w.show_message(f"Recipe {recipe.name} in use: {Path(recipe.model).name} at threshold {format_threshold(threshold)}.", "info")
        log.info("recipe %s in use (model %s)", recipe.name, recipe.model)
        self.recipe_applied.emit(recipe)

    def _on_model_failed(self, text: str) -> None:
        """The recipe's model could not be loaded: the station stays as it was, and the message (after the window's) says so."""
        recipe, self._pending = self._pending, None
        if recipe is not None:
            kept = f" Recipe {self.name} stays in use." if self.name else ""
            QTimer.singleShot(0, lambda: self.w.show_message(f"Recipe {recipe.name} was not switched to: {text}.{kept}", "error"))

    # -- showing it ------------------------------------------------------------------------------

    def _use(self, recipe: Recipe) -> None:
        self.current, self.name = recipe, recipe.name
        self.w.station.recipe = recipe.name
        self.w.settings.save_recipe_name(recipe.name)
        self._show_name()

    def _show_name(self) -> None:
        self.field.setText(f"Recipe: {elide_middle(self.name, 32) if self.name else 'none'}")

    def _on_failed(self, text: str) -> None:
        self.w.show_message(text, "error")

    def shutdown(self) -> None:
        self._job.stop()
