"""The engine never imports Qt, so it runs headless in the CLI, on servers and in tests without a display."""
import subprocess
import sys


def test_engine_imports_no_qt():
    code = (
        "import sys, engine, engine.cli, engine.model, engine.data.layouts, engine.data.synthetic, engine.training, "
        "engine.inference.inspector, engine.evaluation.evaluate, engine.sources, engine.results, engine.render\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'visinspect_gui'))\n"
        "print(','.join(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
