"""Any GenICam camera through its vendor's GenTL producer (.cti) and harvesters: RGB frames, triggers, loss as SourceError."""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import cv2
import numpy as np

from engine.errors import SourceError
from engine.sources.base import FrameSource
from engine.sources.industrial import (
    GENICAM_HINT,
    CameraKind,
    CameraSettings,
    TriggerMode,
    format_camera_spec,
    import_quietly,
)
from engine.types import Frame

# GenICam pixel formats (PFNC names) -> how their bytes become RGB.
_BAYER = {"BayerRG8": cv2.COLOR_BayerBG2RGB, "BayerGB8": cv2.COLOR_BayerGR2RGB,
          "BayerGR8": cv2.COLOR_BayerGB2RGB, "BayerBG8": cv2.COLOR_BayerRG2RGB}  # fmt: skip
_HIGH_BITS = {"Mono10": 10, "Mono12": 12, "Mono14": 14, "Mono16": 16}


def load_harvesters():
    """harvesters.core.Harvester and the genicam.genapi module; SourceError saying how to install them when absent."""
    core = import_quietly("harvesters.core", GENICAM_HINT)
    # harvesters logs a producer error with its traceback before raising it; we report it in one line instead.
    logging.getLogger("harvesters.core").setLevel(logging.CRITICAL)
    return core.Harvester, import_quietly("genicam.genapi", GENICAM_HINT)


def _open_producer(path: Path):
    harvester_class, _ = load_harvesters()
    if not path.is_file():
        raise SourceError(f"GenTL producer {path}: no such file (the camera vendor's .cti file)")
    harvester = harvester_class()
    try:
        harvester.add_file(str(path), check_existence=True, check_validity=True)
        harvester.update()
    except Exception as exc:  # noqa: BLE001 -- a foreign binary: whatever it raises means it cannot be used
        harvester.reset()
        raise SourceError(f"GenTL producer {path} could not be loaded ({_one_line(exc)})") from None
    return harvester


# A producer library is one per process: a second Harvester on the same .cti sees no devices, and a Harvester's
# update() invalidates every camera opened through it. So each .cti is loaded once, shared, and unloaded by its last user.
_PRODUCERS: dict[Path, list] = {}  # .cti path -> [Harvester, number of users]
_PRODUCERS_LOCK = threading.Lock()


@contextmanager
def producer(cti_path: str):
    """The shared Harvester of this GenTL producer, its devices listed when it was loaded; SourceError if it cannot load."""
    path = Path(cti_path).expanduser().resolve()
    with _PRODUCERS_LOCK:
        if path not in _PRODUCERS:
            _PRODUCERS[path] = [_open_producer(path), 0]
        entry = _PRODUCERS[path]
        entry[1] += 1
    try:
        yield entry[0]
    finally:
        with _PRODUCERS_LOCK:
            entry[1] -= 1
            if entry[1] == 0:
                del _PRODUCERS[path]
                entry[0].reset()


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.split(" (ID:", 1)[0] or type(exc).__name__


def payload_rgb(width: int, height: int, data_format: str, data: np.ndarray) -> np.ndarray:
    """One buffer component as RGB uint8 HxWx3 (a copy: the buffer goes back to the producer)."""
    if data_format in ("RGB8", "RGB8Packed"):
        return data.reshape(height, width, 3).copy()
    if data_format in ("BGR8", "BGR8Packed"):
        return cv2.cvtColor(data.reshape(height, width, 3), cv2.COLOR_BGR2RGB)
    if data_format in ("RGBa8", "RGBA8Packed"):
        return cv2.cvtColor(data.reshape(height, width, 4), cv2.COLOR_RGBA2RGB)
    if data_format in ("BGRa8", "BGRA8Packed"):
        return cv2.cvtColor(data.reshape(height, width, 4), cv2.COLOR_BGRA2RGB)
    if data_format == "Mono8":
        return cv2.cvtColor(data.reshape(height, width), cv2.COLOR_GRAY2RGB)
    if data_format in _HIGH_BITS:
        grey = (data.reshape(height, width).astype(np.uint16) >> (_HIGH_BITS[data_format] - 8)).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if data_format in _BAYER:
        return cv2.cvtColor(data.reshape(height, width), _BAYER[data_format])
    known = ", ".join(["Mono8", *_HIGH_BITS, "RGB8", "BGR8", "RGBa8", "BGRa8", *_BAYER])
    raise SourceError(f"pixel format {data_format} is not supported; set pixel_format to one of {known}")


class GenTLSource(FrameSource):
    """RGB frames from device INDEX of a GenTL producer (the camera vendor's .cti file) through harvesters."""

    is_live = True

    def __init__(self, cti_path: str | os.PathLike, index: int | None = None, settings: CameraSettings | None = None) -> None:
        self.cti_path = str(cti_path)
        self.device_index = index or 0
        self.settings = settings or CameraSettings()
        if self.settings.image_dir is not None:
            raise SourceError("image_dir is only for the pylon camera emulator (pylon:…)")
        self.trigger_mode = self.settings.trigger
        self._harvester = self._acquirer = self._genapi = None  # _harvester: the hold on the shared producer
        self._index = 0
        self._closing = False
        self._lock = threading.Lock()  # close() waits for a grab's short poll, never unloads the producer under it
        self.last_error: str | None = None
        self.spec = format_camera_spec(CameraKind.GENICAM, self.cti_path, self.settings, index=self.device_index)
        self.description = f"GenTL camera {self.device_index} of {Path(self.cti_path).name}" + {
            TriggerMode.FREE_RUN: "", TriggerMode.SOFTWARE: " (software trigger)",
            TriggerMode.LINE1: " (hardware trigger, line 1)"}[self.trigger_mode]  # fmt: skip

    def open(self) -> None:
        """Load the producer, open the device, apply the settings and start acquiring; SourceError in one line otherwise."""
        self.close()
        _, self._genapi = load_harvesters()
        hold = ExitStack()
        harvester = hold.enter_context(producer(self.cti_path))
        count = len(harvester.device_info_list)
        if self.device_index >= count:
            hold.close()
            raise SourceError(f"{self.description}: the producer lists {count} device(s)")
        try:
            acquirer = harvester.create(self.device_index)
        except Exception as exc:  # noqa: BLE001 -- producer-specific errors
            hold.close()
            raise SourceError(f"{self.description} could not be opened ({_one_line(exc)}); is another program using it?") from None
        self._harvester, self._acquirer = hold, acquirer
        self._closing = False
        self._index = 0
        try:
            self._apply(acquirer.remote_device.node_map)
            self._buffer_mode(acquirer)
            acquirer.start()
        except SourceError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise SourceError(f"{self.description} could not start acquiring ({_one_line(exc)})") from None

    def _set(self, nodes, key: str, value, *names: str) -> None:
        """Write value to the first feature of names the device has; SourceError names the setting and what is allowed."""
        name = next((n for n in names if nodes.has_node(n)), None)
        if name is None:
            raise SourceError(f"{self.description}: this camera cannot set {key} (no {' or '.join(names)} feature)")
        node = nodes.get_node(name)
        try:
            if isinstance(node, self._genapi.IEnumeration):
                if value not in node.symbolics:
                    raise SourceError(f"{self.description}: {key} must be one of {', '.join(node.symbolics)}; got {value!r}")
                node.value = value
            elif isinstance(node, self._genapi.IBoolean):
                node.value = bool(value)
            elif isinstance(node, self._genapi.IInteger):
                node.value = int(round(value))
            else:
                node.value = float(value) if isinstance(node, self._genapi.IFloat) else value
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 -- genapi range/access errors
            bounds = f" (allowed {node.min:g} to {node.max:g})" if hasattr(node, "min") else ""
            raise SourceError(f"{self.description}: {key} {_shown(value)} cannot be set{bounds}: {_one_line(exc)}") from None

    def _apply(self, nodes) -> None:
        s = self.settings
        if s.pixel_format is not None:
            self._set(nodes, "pixel_format", s.pixel_format, "PixelFormat")
        if s.binning is not None:
            self._set(nodes, "binning", s.binning, "BinningHorizontal")
            self._set(nodes, "binning", s.binning, "BinningVertical")
        if s.roi is not None:
            x, y, w, h = s.roi
            for key, value, name in (("roi x", 0, "OffsetX"), ("roi y", 0, "OffsetY"), ("roi width", w, "Width"),
                                     ("roi height", h, "Height"), ("roi x", x, "OffsetX"), ("roi y", y, "OffsetY")):  # fmt: skip
                if value or nodes.has_node(name):  # a sensor without offsets is fine while the ROI starts at 0,0
                    self._set(nodes, key, value, name)
        if s.exposure_us is not None:
            self._set(nodes, "exposure_us", s.exposure_us, "ExposureTime", "ExposureTimeAbs")
        if s.gain is not None:
            self._set(nodes, "gain", s.gain, "Gain", "GainRaw")
        if s.frame_rate is not None:
            if nodes.has_node("AcquisitionFrameRateEnable"):
                self._set(nodes, "frame_rate", True, "AcquisitionFrameRateEnable")
            self._set(nodes, "frame_rate", s.frame_rate, "AcquisitionFrameRate", "AcquisitionFrameRateAbs")
        if self.trigger_mode is TriggerMode.FREE_RUN:
            if nodes.has_node("TriggerMode"):
                self._set(nodes, "trigger", "Off", "TriggerMode")
            return
        if not (nodes.has_node("TriggerSelector") and nodes.has_node("TriggerMode")):
            raise SourceError(f"{self.description}: this camera has no frame trigger; use trigger=off")
        self._set(nodes, "trigger", "FrameStart", "TriggerSelector")
        self._set(nodes, "trigger", "On", "TriggerMode")
        self._set(nodes, "trigger", "Software" if self.trigger_mode is TriggerMode.SOFTWARE else "Line1", "TriggerSource")

    def _buffer_mode(self, acquirer) -> None:
        """Free run keeps only the newest frame; a triggered frame is a part and is taken oldest first."""
        wanted = "NewestOnly" if self.trigger_mode is TriggerMode.FREE_RUN else "OldestFirst"
        for stream in acquirer.data_streams:
            nodes = stream.node_map
            if nodes.has_node("StreamBufferHandlingMode") and wanted in nodes.StreamBufferHandlingMode.symbolics:
                nodes.StreamBufferHandlingMode.value = wanted

    def _require(self):
        acquirer = self._acquirer
        if acquirer is None:
            raise SourceError(f"{self.description} " + ("was closed" if self._closing else "is not open"))
        return acquirer

    def _lost(self, exc: BaseException | None = None) -> SourceError:
        if self._closing:
            return SourceError(f"{self.description} was closed")
        return SourceError(f"{self.description} lost: {_one_line(exc) if exc else 'it stopped delivering frames'}")

    def fire(self) -> None:
        """Execute the software trigger (trigger=software only); SourceError if the camera cannot take it."""
        acquirer = self._require()
        if self.trigger_mode is not TriggerMode.SOFTWARE:
            raise SourceError(f"{self.description}: a software trigger needs trigger=software, not {self.trigger_mode.value}")
        try:
            acquirer.remote_device.node_map.TriggerSoftware.execute()
        except Exception as exc:  # noqa: BLE001
            raise self._lost(exc) from None

    def grab(self, timeout_s: float) -> Frame | None:
        """The next frame as RGB, or None if none arrived within timeout_s; SourceError when the camera is gone."""
        acquirer = self._require()
        self.last_error = None
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if self._closing:
                    raise self._lost()
                image = self._fetch(acquirer, min(0.05, max(deadline - time.monotonic(), 0.001)))
            if image is not None:
                break
            if time.monotonic() >= deadline or self.last_error:
                return None
        self._index += 1
        return Frame(image=image, index=self._index - 1, timestamp=time.time(), source_id=self.spec)

    def _fetch(self, acquirer, timeout_s: float) -> np.ndarray | None:
        try:
            if not acquirer.is_acquiring():
                raise self._lost()
            buffer = acquirer.try_fetch(timeout=timeout_s)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 -- the producer's own errors: the device or its stream is gone
            raise self._lost(exc) from None
        if buffer is None:
            return None
        with buffer:
            component = buffer.payload.components[0] if buffer.payload.components else None
            if component is None:
                self.last_error = f"{self.description}: a buffer without an image"
                return None
            return payload_rgb(component.width, component.height, str(component.data_format), component.data)

    def read(self) -> Frame:
        """Free run: the next frame. Triggered: the next triggered frame. SourceError if none within the timeout."""
        self._require()
        timeout = self.settings.grab_timeout_s + (self.settings.exposure_us or 0) / 1e6
        frame = self.grab(timeout)
        if frame is None:
            raise SourceError(self.last_error or f"{self.description} delivered no frame within {timeout:g} s")
        return frame

    def close(self) -> None:
        """Stop acquiring, release the device and unload the producer; safe to call twice."""
        if self._acquirer is None and self._harvester is None:
            return
        self._closing = True  # first: a grab in another thread that finds no camera then says "closed"
        acquirer, harvester = self._acquirer, self._harvester
        self._acquirer = self._harvester = None
        with self._lock:
            self._release(acquirer, harvester)

    @staticmethod
    def _release(acquirer, harvester) -> None:
        for step in ((acquirer.stop, acquirer.destroy) if acquirer is not None else ()) + ((harvester.close,) if harvester else ()):
            try:
                step()
            except Exception:  # noqa: BLE001,S110 -- already gone: releasing is all that is left to do
                pass
