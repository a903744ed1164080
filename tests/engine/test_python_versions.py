"""VisInspect runs on every Python pyproject.toml declares: nothing newer than its oldest is used (vermin reads the code)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_code_needs_no_python_newer_than_requires_python():
    declared = re.search(r'requires-python\s*=\s*">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    r = subprocess.run(
        [sys.executable, "-c", "import sys; from vermin.main import main; sys.exit(main())", "--no-tips", "--violations", "--eval-annotations", f"-t={declared}-",
         "engine", "visinspect_gui", "scripts"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, f"needs a Python newer than {declared}:\n{r.stdout}{r.stderr}"
