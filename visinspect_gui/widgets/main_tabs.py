"""The main tab widget: each page sits in its own scroll area, so no page can make the window grow."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QTabWidget, QWidget


class MainTabs(QTabWidget):
    """Tabs whose pages scroll when the window is smaller than they would like; callers see the pages themselves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainTabs")
        self._pages: list[QWidget] = []

    def add_page(self, page: QWidget, title: str) -> int:
        """Add page in a frameless scroll area (it fills the tab while it fits, and scrolls when it does not)."""
        scroll = QScrollArea()
        scroll.setObjectName("PageScroll")
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(page)
        self._pages.append(page)
        return self.addTab(scroll, title)

    def page(self, index: int) -> QWidget | None:
        """The page at index (not its scroll area)."""
        return self._pages[index] if 0 <= index < len(self._pages) else None

    def currentWidget(self) -> QWidget | None:  # noqa: N802 - the QTabWidget name, for the page not its scroll area
        return self.page(self.currentIndex())

    def setCurrentWidget(self, page: QWidget) -> None:  # noqa: N802 - as above
        self.setCurrentIndex(self._pages.index(page))

    def set_page_visible(self, page: QWidget, visible: bool) -> None:
        """Show or hide a page's tab (engineer-only pages in operator mode)."""
        self.setTabVisible(self._pages.index(page), visible)
