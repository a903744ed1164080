"""The main tab widget: each page sits in its own scroll area, so no page can make the window grow."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QTabWidget, QWidget


class _Holder(QWidget):
    """Holds a page in its scroll area without a layout, so the page's height-for-width is not passed on.

    A scroll area sizes a page whose layout has height-for-width (any wrapping label) to its *preferred*
    height and scrolls whenever that exceeds the tab; held, the page fills the tab and scrolls only below
    its minimum size.
    """

    def __init__(self, page: QWidget) -> None:
        super().__init__()
        self.page = page
        page.setParent(self)
        page.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        """The page's content changed size needs: grow to its new minimum, so the scroll area scrolls to it."""
        if obj is self.page and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
            needed = self.size().expandedTo(self.minimumSizeHint())
            if needed != self.size():
                self.resize(needed)
        return False

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return self.page.minimumSizeHint().expandedTo(self.page.minimumSize())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return self.page.sizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.page.setGeometry(self.rect())


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
        scroll.setWidget(_Holder(page))
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
