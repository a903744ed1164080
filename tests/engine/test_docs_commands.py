"""Every `visinspect` command in README.md and docs/*.md is a real command: its sub-command and flags exist, and the
worked examples (docs/results.md) run as written on the shared data (a smaller magnetic-tile copy, fewer epochs)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import COMMANDS, build_parser
from tests.conftest import SHARED_DATA, shared_dataset

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_COMMAND = re.compile(r"visinspect ((?:[^`\n\\]|\\\n)+)")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command text) for every `visinspect ...` in the docs: in backticks and in code blocks (continuations joined)."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8").replace("\\\n", " ")
        for line_no, line in enumerate(text.splitlines(), start=1):
            for m in _COMMAND.finditer(line):
                command = m.group(1).split("  #")[0].strip()
                if command.split()[0] in COMMANDS:
                    found.append((f"{doc.name}:{line_no}", command))
    return found


def _options(sub: str) -> set[str]:
    if sub == "gui":  # the station parses its own options: read them from its help
        r = subprocess.run([sys.executable, "-m", "engine.cli", "gui", "--help"], capture_output=True, text=True,
                           env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, timeout=120)  # fmt: skip
        return set(re.findall(r"--[a-z][a-z0-9-]*", r.stdout))
    action = next(a for a in build_parser()._subparsers._group_actions if a.choices)
    return {opt for a in action.choices[sub]._actions for opt in a.option_strings}


def test_the_docs_name_commands_and_every_flag_they_use_exists():
    commands = documented_commands()
    assert len(commands) >= 20 and {c.split()[0] for _, c in commands} >= {"train", "eval", "predict", "calibrate", "bench", "gui"}
    options = {}
    for where, command in commands:
        sub = command.split()[0]
        known = options.setdefault(sub, _options(sub))
        unknown = [flag for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", command) if flag not in known]
        assert not unknown, f"{where}: `visinspect {command}` uses {unknown}, which `visinspect {sub}` does not take"


@pytest.fixture(scope="module")
def small_magnetic_tile(tmp_path_factory) -> Path:
    """magnetic_tile as published (class folders, MT_Free, Imgs/ with a same-stem mask PNG beside each JPEG), 1 in 8 images."""
    source = shared_dataset("magnetic_tile")
    root = tmp_path_factory.mktemp("shared") / "magnetic_tile"
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        jpgs = sorted((folder / "Imgs").glob("*.jpg"))
        keep = jpgs[:: 8 if folder.name == "MT_Free" else 4]
        (root / folder.name / "Imgs").mkdir(parents=True)
        for jpg in keep:
            shutil.copyfile(jpg, root / folder.name / "Imgs" / jpg.name)
            if jpg.with_suffix(".png").is_file():
                shutil.copyfile(jpg.with_suffix(".png"), root / folder.name / "Imgs" / jpg.with_suffix(".png").name)
    return root


@pytest.mark.shared
def test_the_worked_examples_of_docs_results_run_as_written(small_magnetic_tile, tmp_path):
    """The commands of docs/results.md, in order, in a working folder laid out as the docs assume (weights/, ../shared/data)."""
    shared_dataset("hazelnut_toy")
    work = tmp_path / "checkout"
    (work / "weights").mkdir(parents=True)
    data = tmp_path / "shared" / "data"
    data.mkdir(parents=True)
    os.symlink(small_magnetic_tile, data / "magnetic_tile")
    os.symlink(SHARED_DATA / "hazelnut_toy", data / "hazelnut_toy")
    results = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", results, flags=re.S)
    commands = [shlex.split(line.strip()) for block in blocks for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    assert [c[1] for c in commands] == ["train", "eval", "train"], commands
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for words in commands:
        args = words[1:]
        if args[0] == "train":  # as written, but a few epochs at 64 px: the point is that it runs, not its accuracy
            args = [a if prev not in ("--epochs", "--image-size") else {"--epochs": "2", "--image-size": "64"}[prev]
                    for prev, a in zip(["", *args], args)]  # fmt: skip
        r = subprocess.run([sys.executable, "-m", "engine.cli", *args, "--device", "cpu"], cwd=work, capture_output=True,
                           text=True, env=env, timeout=900)  # fmt: skip
        assert r.returncode == 0, f"visinspect {' '.join(words[1:])}\n{r.stdout}\n{r.stderr}"
    assert (work / "weights" / "magnetic_tile.safetensors").is_file() and (work / "weights" / "hazelnut.safetensors").is_file()
