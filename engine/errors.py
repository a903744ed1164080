"""Specific engine errors; the CLI and GUI workers turn them into one plain sentence."""


class VisInspectError(Exception):
    """Base of every error the engine raises on purpose (bad input, bad file, bad option)."""


class ImageReadError(VisInspectError):
    """An image file could not be read or decoded."""


class ModelFileError(VisInspectError):
    """A model file is missing, corrupt, or not a VisInspect model."""


class DatasetError(VisInspectError):
    """A dataset folder does not match a known layout or has too few images."""


class BackboneWeightsError(VisInspectError):
    """ImageNet backbone weights were asked for but cannot be had."""


class SourceError(VisInspectError):
    """A frame source (camera, video, folder) cannot be opened or has failed."""


class LineIOError(VisInspectError):
    """A line endpoint (OPC UA, Modbus, MQTT) cannot start or its settings are wrong."""


class RecipeError(VisInspectError):
    """A product recipe is missing, unreadable or names settings that cannot be used."""


class Cancelled(VisInspectError):
    """Long work was stopped on request."""


# What the CLI and the GUI's workers report as one line, never as a traceback: the engine's own errors, bad values
# and the operating system's refusals (missing file, full disk, no network). Anything else is a bug and logged in full.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (VisInspectError, ValueError, OSError)
