# `make run` sets up .venv on first use and launches the station; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint setup clean

setup: $(STAMP)

# The stamp is written only once Qt's system libraries check out, so a failed check is run again next time.
$(STAMP): pyproject.toml scripts/qt_libs.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[gui,dev,pylon,genicam,line,central,export,cluster]"
	@sh scripts/ensure-qt-libs.sh $(PY)
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/visinspect gui

# Also Xvfb, for the test that opens a real X11 window (installed as root; without it that test is skipped).
test: $(STAMP)
	@sh scripts/ensure-qt-libs.sh $(PY) --xvfb
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/visinspect bench

lint: $(STAMP)
	$(VENV)/bin/ruff check engine visinspect_gui tests

clean:
	rm -rf $(VENV) build *.egg-info
