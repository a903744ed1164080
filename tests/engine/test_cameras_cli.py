"""`visinspect cameras` and list_cameras: every camera this PC can see, each with a spec that opens it."""
import os
import re
import sys

os.environ.setdefault("PYLON_CAMEMU", "2")  # emulated pylon cameras: set before pylon's first transport-layer call

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from engine.cli import main  # noqa: E402
from engine.errors import SourceError  # noqa: E402
from engine.sources import open_source  # noqa: E402
from engine.sources.discover import backend_status, list_cameras  # noqa: E402
from engine.sources.industrial import GENICAM_HINT, CameraKind, import_quietly, parse_camera_spec  # noqa: E402

# pylon's Linux runtime installs its own SIGALRM handler and hangs in RetrieveResult once another replaces it;
# pytest-timeout's default (signal) method does exactly that, so these tests run under its thread method.
pytestmark = pytest.mark.timeout(method="thread")

STATUS = backend_status()


def _viky() -> str | None:
    if STATUS[CameraKind.GENICAM] is not None:
        return None
    path = Path(import_quietly("genicam", GENICAM_HINT).__file__).parent / "viky.cti"
    return str(path) if path.is_file() else None


VIKY = _viky()


def test_cameras_lists_each_camera_with_a_spec_that_opens_it(capsys, monkeypatch):
    monkeypatch.delenv("GENICAM_GENTL64_PATH", raising=False)
    assert main(["cameras", *(["--cti", VIKY] if VIKY else [])]) == 0
    lines = capsys.readouterr().out.splitlines()
    specs = [line.split()[0] for line in lines if line.startswith(("pylon:", "genicam:"))]
    if STATUS[CameraKind.PYLON] is None:
        assert "pylon:0815-0000" in specs  # the emulator's first camera, by serial number
        assert any("Basler Emulation (0815-0000)" in line for line in lines)
    else:
        assert f"note: {STATUS[CameraKind.PYLON]}" in lines
    if VIKY:
        assert [s for s in specs if s.startswith("genicam:")] == [f"genicam:{VIKY}#{i}" for i in range(3)]
    if not specs:
        pytest.skip("neither pylon nor the simulated GenTL producer is available here")
    with open_source(specs[0]) as source:  # what the list says is what opens
        assert source.read().image.ndim == 3


@pytest.mark.skipif(STATUS[CameraKind.PYLON] is not None, reason="pypylon is not installed")
def test_list_cameras_finds_every_emulated_pylon_camera():
    pylon_cameras = [c for c in list_cameras(opencv_max=0, cti_paths=[]) if c.kind is CameraKind.PYLON and c.model == "Emulation"]
    count = int(os.environ["PYLON_CAMEMU"])
    assert [c.serial for c in pylon_cameras] == [f"0815-{i:04d}" for i in range(count)]
    assert all(parse_camera_spec(c.spec).target == c.serial for c in pylon_cameras)


def test_a_producer_that_cannot_load_is_left_out_not_raised(tmp_path):
    broken = tmp_path / "broken.cti"
    broken.write_bytes(b"not a shared library")
    cameras = list_cameras(opencv_max=0, cti_paths=[str(broken), str(tmp_path / "missing.cti")])
    assert all(c.kind is not CameraKind.GENICAM for c in cameras)
    if STATUS[CameraKind.GENICAM] is None:
        with pytest.raises(SourceError, match="could not be loaded"):
            open_source(f"genicam:{broken}").open()


def test_without_the_camera_extras_each_says_how_to_add_it(monkeypatch, capsys):
    for module in ("pypylon.pylon", "pypylon.genicam", "harvesters.core", "genicam.genapi"):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    status = backend_status()
    assert status[CameraKind.OPENCV] is None
    assert "pip install 'visinspect[pylon]'" in status[CameraKind.PYLON]
    assert "pip install 'visinspect[genicam]'" in status[CameraKind.GENICAM]
    assert list_cameras(opencv_max=0, cti_paths=[VIKY or "/nowhere/producer.cti"]) == []
    for spec, extra in (("pylon:0", "pylon"), (f"genicam:{VIKY or '/x.cti'}", "genicam")):
        with pytest.raises(SourceError, match=re.escape(f"pip install 'visinspect[{extra}]'")):
            open_source(spec).open()
    assert main(["cameras"]) == 0
    out = capsys.readouterr().out
    assert "note: pylon cameras need the pypylon package" in out
    assert "note: GenICam cameras need the harvesters package" in out
