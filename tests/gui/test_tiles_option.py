"""The Train tab's Tiles option: off by default, a tile side in image pixels when set, kept for good-only training."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from visinspect_gui.widgets.config_form import ConfigForm  # noqa: E402


def test_tiles_are_off_by_default_and_set_the_tile_side(qtbot) -> None:
    form = ConfigForm()
    qtbot.addWidget(form)
    spin = form.field_widget("tile")
    assert form.form.labelForField(spin).text() == "Tiles"
    assert spin.text() == "Off (whole image)" and form.config().tile == 0
    spin.setValue(128)
    assert spin.text() == "128 px" and form.config().tile == 128 and form.config().tile_overlap == 16
    form.set_unused(("epochs", "lr"))  # what good-only training greys out: tiles stay available
    assert spin.isEnabled()
    assert "full resolution" in spin.toolTip() and "--" not in spin.toolTip()
