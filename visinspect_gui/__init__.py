"""VisInspect station: the PySide6 desktop app over the Qt-free engine."""
