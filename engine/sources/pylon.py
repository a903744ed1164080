"""Basler cameras through pypylon: free run, software trigger or line-1 trigger, RGB frames, unplug as SourceError.

The pylon camera emulator (PYLON_CAMEMU=N in the environment before the first pylon call) gives N offline cameras;
with image_dir one replays a folder of images through the real acquisition path (in plain name order).
pylon's Linux runtime installs its own SIGALRM handler when a camera opens: a process that uses it must not install
one (a grab then never times out).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from engine.errors import SourceError
from engine.sources.base import FrameSource
from engine.sources.industrial import (
    PYLON_HINT,
    CameraKind,
    CameraSettings,
    TriggerMode,
    format_camera_spec,
    import_quietly,
)
from engine.types import Frame

EMULATOR_CLASS = "BaslerCamEmu"


def load_pylon():
    """The pypylon.pylon and pypylon.genicam modules; SourceError saying how to install them when absent."""
    pylon = import_quietly("pypylon.pylon", PYLON_HINT)
    return pylon, import_quietly("pypylon.genicam", PYLON_HINT)


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _one_line(exc: BaseException) -> str:
    """A pylon exception's message without its ' : XException thrown (file …, line …)' tail."""
    text = " ".join(str(exc).split())
    return text.split(" : ", 1)[0].rstrip(". ") or type(exc).__name__


class PylonSource(FrameSource):
    """RGB frames from a Basler camera (or the pylon emulator) chosen by index or serial number."""

    is_live = True

    def __init__(self, target: int | str, settings: CameraSettings | None = None) -> None:
        self.target = str(target).strip()
        self.settings = settings or CameraSettings()
        self.trigger_mode = self.settings.trigger
        self.serial: str | None = None
        self.model: str | None = None
        self._camera = None
        self._pylon = self._genicam = None
        self._converter = None
        self._index = 0
        self._closing = False
        self._source_id = f"pylon:{self.target}"
        self.last_error: str | None = None  # why the last triggered grab gave no frame, when the camera said why
        self.description = f"pylon camera {self.target}" + self._mode_text()

    def _mode_text(self) -> str:
        return {TriggerMode.FREE_RUN: "", TriggerMode.SOFTWARE: " (software trigger)",
                TriggerMode.LINE1: " (hardware trigger, line 1)"}[self.trigger_mode]  # fmt: skip

    @property
    def spec(self) -> str:
        """The source spec that opens this camera with these settings again."""
        return format_camera_spec(CameraKind.PYLON, self.serial or self.target, self.settings)

    # -- opening ------------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Find the camera, open it, apply the settings and start acquiring; SourceError in one line otherwise."""
        self.close()
        self._pylon, self._genicam = load_pylon()
        pylon, genicam = self._pylon, self._genicam
        try:
            factory = pylon.TlFactory.GetInstance()
            devices = list(factory.EnumerateDevices())
        except genicam.GenericException as exc:
            raise SourceError(f"pylon cameras could not be listed ({_one_line(exc)})") from None
        info = self._choose(devices)
        self.serial, self.model = info.GetSerialNumber(), info.GetModelName()
        self.description = f"pylon camera {info.GetFriendlyName()}" + self._mode_text()
        try:
            camera = pylon.InstantCamera(factory.CreateDevice(info))
            camera.Open()
        except genicam.GenericException as exc:
            raise SourceError(f"pylon camera {self.serial} could not be opened ({_one_line(exc)}); "
                              "is another program using it?") from None  # fmt: skip
        self._camera = camera
        self._source_id = self.spec
        self._closing = False
        self._index = 0
        try:
            self._apply(camera, info.GetDeviceClass() == EMULATOR_CLASS)
            self._converter = pylon.ImageFormatConverter()
            self._converter.OutputPixelFormat = pylon.PixelType_RGB8packed
            # Free run shows the newest frame (never a stale one); a triggered frame is a part and is never skipped.
            strategy = pylon.GrabStrategy_LatestImageOnly if self.trigger_mode is TriggerMode.FREE_RUN else pylon.GrabStrategy_OneByOne
            camera.StartGrabbing(strategy)
        except SourceError:
            self.close()
            raise
        except genicam.GenericException as exc:
            self.close()
            raise SourceError(f"pylon camera {self.serial} could not start acquiring ({_one_line(exc)})") from None

    def _choose(self, devices):
        if not devices:
            raise SourceError(f"pylon camera {self.target}: no pylon camera found (is it connected and powered?)")
        serials = [d.GetSerialNumber() for d in devices]
        if self.target.isascii() and self.target.isdigit() and len(self.target) <= 3:
            index = int(self.target)
            if index >= len(devices):
                raise SourceError(f"pylon camera {index}: only {len(devices)} camera(s) found (serial numbers {', '.join(serials)})")
            return devices[index]
        for device in devices:
            if device.GetSerialNumber() == self.target:
                return device
        raise SourceError(f"pylon camera {self.target}: no camera has this serial number; found {', '.join(serials)}")

    def _node(self, camera, *names: str):
        """The first of names the camera has and can write, or None."""
        for name in names:
            node = camera.GetNodeMap().GetNode(name)
            if node is not None and self._genicam.IsWritable(node):
                return node
        return None

    def _set(self, camera, key: str, value, *names: str) -> None:
        """Write value to the first writable node of names; SourceError names the setting and its allowed range."""
        node = self._node(camera, *names)
        if node is None:
            raise SourceError(f"pylon camera {self.serial}: this camera cannot set {key} (no writable {' or '.join(names)})")
        try:
            if hasattr(node, "Symbolics"):
                if value not in node.Symbolics:
                    raise SourceError(f"pylon camera {self.serial}: {key} must be one of {', '.join(node.Symbolics)}; got {value!r}")
                node.Value = value
            elif isinstance(node.Value, str):
                node.Value = str(value)
            elif isinstance(node.Value, bool):
                node.Value = bool(value)
            elif isinstance(node.Value, int):
                node.Value = int(round(value))
            else:
                node.Value = float(value)
        except self._genicam.GenericException as exc:
            bounds = f" (allowed {node.Min:g} to {node.Max:g})" if hasattr(node, "Min") else ""
            raise SourceError(f"pylon camera {self.serial}: {key} {_shown(value)} cannot be set{bounds}: {_one_line(exc)}") from None

    def _apply(self, camera, emulated: bool) -> None:
        s = self.settings
        if s.image_dir is not None:
            folder = Path(s.image_dir).expanduser()
            if not emulated:
                raise SourceError(f"pylon camera {self.serial}: image_dir is only for the pylon camera emulator")
            if not folder.exists():
                raise SourceError(f"pylon camera {self.serial}: image_dir {folder}: no such file or folder")
            self._set(camera, "image_dir", str(folder.resolve()), "ImageFilename")
            self._set(camera, "image_dir", "On", "ImageFileMode")
            self._set(camera, "image_dir", "Off", "TestImageSelector")
            if s.pixel_format is None and "RGB8Packed" in camera.PixelFormat.Symbolics:
                camera.PixelFormat.Value = "RGB8Packed"  # replay colour images in colour
        if s.pixel_format is not None:
            self._set(camera, "pixel_format", s.pixel_format, "PixelFormat")
        if s.binning is not None:
            self._set(camera, "binning", s.binning, "BinningHorizontal")
            self._set(camera, "binning", s.binning, "BinningVertical")
        if s.roi is not None:
            x, y, w, h = s.roi
            self._set(camera, "roi", 0, "OffsetX")
            self._set(camera, "roi", 0, "OffsetY")
            self._set(camera, "roi width", w, "Width")
            self._set(camera, "roi height", h, "Height")
            self._set(camera, "roi x", x, "OffsetX")
            self._set(camera, "roi y", y, "OffsetY")
        if s.exposure_us is not None:
            if self._node(camera, "ExposureAuto") is not None:
                camera.GetNodeMap().GetNode("ExposureAuto").Value = "Off"
            self._set(camera, "exposure_us", s.exposure_us, "ExposureTime", "ExposureTimeAbs")
        if s.gain is not None:
            if self._node(camera, "GainAuto") is not None:
                camera.GetNodeMap().GetNode("GainAuto").Value = "Off"
            self._set(camera, "gain", s.gain, "Gain", "GainRaw")
        if s.frame_rate is not None:
            self._set(camera, "frame_rate", True, "AcquisitionFrameRateEnable")
            self._set(camera, "frame_rate", s.frame_rate, "AcquisitionFrameRate", "AcquisitionFrameRateAbs")
        self._apply_trigger(camera)

    def _apply_trigger(self, camera) -> None:
        nodes = camera.GetNodeMap()
        selector = self._node(camera, "TriggerSelector")
        if selector is not None and "AcquisitionStart" in selector.Symbolics:
            selector.Value = "AcquisitionStart"  # older cameras: acquisition must not wait for its own trigger
            self._set(camera, "trigger", "Off", "TriggerMode")
        if self.trigger_mode is TriggerMode.FREE_RUN:
            if selector is not None and "FrameStart" in selector.Symbolics:
                selector.Value = "FrameStart"
            if self._node(camera, "TriggerMode") is not None:
                nodes.GetNode("TriggerMode").Value = "Off"
            return
        if selector is None or "FrameStart" not in selector.Symbolics:
            raise SourceError(f"pylon camera {self.serial}: this camera has no frame trigger; use trigger=off")
        selector.Value = "FrameStart"
        self._set(camera, "trigger", "On", "TriggerMode")
        self._set(camera, "trigger", "Software" if self.trigger_mode is TriggerMode.SOFTWARE else "Line1", "TriggerSource")

    def current_settings(self) -> CameraSettings:
        """The settings as the camera reports them now (it may round what it was asked for)."""
        camera = self._require()

        def value(*names):
            for name in names:
                node = camera.GetNodeMap().GetNode(name)
                if node is not None and self._genicam.IsReadable(node):
                    return node.Value
            return None

        try:
            roi = tuple(int(value(n)) for n in ("OffsetX", "OffsetY", "Width", "Height"))
            rate = value("AcquisitionFrameRate", "AcquisitionFrameRateAbs") if value("AcquisitionFrameRateEnable") else None
            binning = value("BinningHorizontal")
            source = value("TriggerSource") if value("TriggerMode") == "On" else None
            trigger = {None: TriggerMode.FREE_RUN, "Software": TriggerMode.SOFTWARE, "Line1": TriggerMode.LINE1}.get(source, self.trigger_mode)
            return CameraSettings(
                exposure_us=value("ExposureTime", "ExposureTimeAbs"), gain=value("Gain", "GainRaw"),
                pixel_format=value("PixelFormat"), roi=roi, binning=None if binning is None else int(binning),
                frame_rate=rate, trigger=trigger, image_dir=self.settings.image_dir,
                grab_timeout_s=self.settings.grab_timeout_s,
            )  # fmt: skip
        except self._genicam.GenericException as exc:
            raise self._lost(camera, exc) from None

    # -- frames ---------------------------------------------------------------------------------------------------
    def _require(self):
        camera = self._camera
        if camera is None:
            raise SourceError(f"{self.description} " + ("was closed" if self._closing else "is not open"))
        return camera

    def _lost(self, camera, exc: BaseException | None = None) -> SourceError:
        if self._closing:
            return SourceError(f"{self.description} was closed")
        reason = _one_line(exc) if exc is not None else "it stopped delivering frames"
        removed = " (unplugged or switched off?)" if camera.IsCameraDeviceRemoved() else ""
        return SourceError(f"{self.description} lost: {reason}{removed}")

    def fire(self) -> None:
        """Execute the software trigger (trigger=software only); SourceError if the camera cannot take it."""
        camera = self._require()
        if self.trigger_mode is not TriggerMode.SOFTWARE:
            raise SourceError(f"{self.description}: a software trigger needs trigger=software, not {self.trigger_mode.value}")
        try:
            if not camera.IsGrabbing():
                raise self._lost(camera)
            ms = int(self.settings.grab_timeout_s * 1000)
            if not camera.WaitForFrameTriggerReady(ms, self._pylon.TimeoutHandling_Return):
                raise SourceError(f"{self.description} was not ready for a trigger within {self.settings.grab_timeout_s:g} s")
            camera.ExecuteSoftwareTrigger()
        except self._genicam.GenericException as exc:
            raise self._lost(camera, exc) from None

    def grab(self, timeout_s: float) -> Frame | None:
        """The next frame as RGB, or None if none arrived within timeout_s; SourceError when the camera is gone."""
        camera = self._require()
        self.last_error = None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if not camera.IsGrabbing():
                    raise self._lost(camera)
                ms = max(0, int((deadline - time.monotonic()) * 1000))
                result = camera.RetrieveResult(ms, self._pylon.TimeoutHandling_Return)
                if result is None or not result.IsValid():
                    if not camera.IsGrabbing() or camera.IsCameraDeviceRemoved():
                        raise self._lost(camera)
                    return None
                try:
                    if result.GrabSucceeded():
                        self._index += 1 + result.GetNumberOfSkippedImages()
                        image = self._rgb(result)
                        return Frame(image=image, index=self._index - 1, timestamp=time.time(), source_id=self._source_id)
                    self.last_error = f"{self.description}: frame not grabbed ({result.GetErrorDescription().strip()})"
                finally:
                    result.Release()
            except self._genicam.GenericException as exc:
                raise self._lost(camera, exc) from None
            if self.trigger_mode is not TriggerMode.FREE_RUN or time.monotonic() >= deadline:
                return None  # a triggered part whose frame failed gets no frame; last_error says why

    def _rgb(self, result) -> np.ndarray:
        pylon = self._pylon
        kind = result.PixelType
        if kind == pylon.PixelType_RGB8packed:
            return np.array(result.Array, dtype=np.uint8, copy=True)
        if kind == pylon.PixelType_Mono8:
            return cv2.cvtColor(result.Array, cv2.COLOR_GRAY2RGB)
        return np.array(self._converter.Convert(result).GetArray(), dtype=np.uint8, copy=True)

    def read(self) -> Frame:
        """Free run: the newest frame. Triggered: the next triggered frame. SourceError if none within the timeout."""
        self._require()
        timeout = self.settings.grab_timeout_s + (self.settings.exposure_us or 0) / 1e6
        frame = self.grab(timeout)
        if frame is None:
            raise SourceError(self.last_error if self.trigger_mode is not TriggerMode.FREE_RUN and self.last_error
                              else f"{self.description} delivered no frame within {timeout:g} s")  # fmt: skip
        return frame

    def close(self) -> None:
        """Stop acquiring and release the camera; safe to call twice, and from another thread mid-grab."""
        if self._camera is None:
            return
        self._closing = True  # first: a grab in another thread that finds no camera then says "closed"
        camera, self._camera = self._camera, None
        for step in (camera.StopGrabbing, camera.Close, camera.DestroyDevice):
            try:
                step()
            except self._genicam.GenericException:
                pass  # already gone: closing is all that is left to do
