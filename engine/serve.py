"""`visinspect serve`: the live job with no window, for a line PC without a screen (e.g. under systemd).

It writes the same results log as the station, talks to the line over the endpoints asked for, prints one
line per start, stop, recipe switch and source trouble, and stops cleanly on SIGTERM or SIGINT. A PLC's
Recipe write switches model, thresholds and ROI from the next part (a recipe that fails keeps the old one
and sets LastError); a recipe on another source or trigger mode restarts the job on it.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """serve's options (parsing stays torch-free)."""
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="model file to inspect with")
    what.add_argument("--recipe", help="recipe name in the recipes folder, or a recipe .json file")
    p.add_argument("--source", help="source spec: camera, pylon:..., genicam:..., stream URL, folder, video (default: the recipe's)")
    p.add_argument("--opcua", metavar="HOST:PORT", help="serve OPC UA here (default: the recipe's)")
    p.add_argument("--modbus", metavar="HOST:PORT", help="serve Modbus TCP here (default: the recipe's)")
    p.add_argument("--mqtt", metavar="HOST:PORT", help="publish results to this MQTT broker (default: the recipe's)")
    p.add_argument("--mqtt-topic", help="MQTT topic (default: visinspect/STATION/results)")
    p.add_argument("--users", metavar="FILE", help="OPC UA users file (needed to accept writes on a non-loopback address)")
    p.add_argument("--triggered", action="store_true", help="inspect one frame per PLC trigger (default: the recipe's, else every frame)")
    p.add_argument("--loop", action="store_true", help="replay a folder or video source forever")
    p.add_argument("--log", metavar="DB", help="results log (default: the station's)")
    p.add_argument("--station", default=socket.gethostname(), help="station name the line sees (default: this host's name)")
    p.add_argument("--recipes-dir", metavar="DIR", help="recipes folder (default: $VISINSPECT_RECIPES or the data folder's)")
    p.add_argument("--central", metavar="URL",
                   help="also forward every result to the plant PostgreSQL at this URL, without a password "
                        "(PGPASSWORD or a pgpass file gives it); the local log keeps working while it is away")  # fmt: skip
    p.add_argument("--central-share", metavar="DIR", help="with --central: copy each anomaly frame to DIR/STATION/DATE/ "
                   "(a mounted plant share) and reference the copy in the central row")  # fmt: skip


def _say(text: str) -> None:
    print(f"visinspect serve: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _Setup:
    """What the job runs with now: the recipe's values with the command line's on top."""

    recipe: str | None
    source: str
    roi: tuple[int, int, int, int] | None
    triggered: bool


class _Serving:
    """The running state a PLC recipe switch changes (read by the job per part, written on an endpoint's thread)."""

    def __init__(self, args, slot, hub, results, runtime, stop: threading.Event) -> None:
        self.args, self.slot, self.hub, self.results, self.runtime = args, slot, hub, results, runtime
        self.setup: _Setup | None = None
        self.stop = stop
        self.job_stop = threading.Event()  # a new one per job: set to end the job (stop, or a recipe on another source)
        self.lock = threading.Lock()

    def inspector_for(self, recipe):
        from engine.errors import RecipeError
        from engine.inference.inspector import Inspector

        inspector = Inspector.open(recipe.model, self.runtime)
        t = inspector.thresholds
        if recipe.decision_threshold is not None:
            t = t.with_decision(recipe.decision_threshold)
        if recipe.box_threshold is not None:
            t = t.with_box(recipe.box_threshold)
        if recipe.accept_threshold is not None:
            if recipe.accept_threshold > t.decision:
                raise RecipeError(f"recipe {recipe.name}: accept_threshold {recipe.accept_threshold:g} is above the decision threshold {t.decision:g}")
            t = t.with_accept(recipe.accept_threshold)
        inspector.thresholds = t
        return inspector

    def switch_recipe(self, name: str) -> None:
        """The PLC asked for recipe name: load it fully, then switch (an error leaves everything as it was)."""
        from engine.errors import EXPECTED_ERRORS
        from engine.recipes import load_recipe
        from engine.results import new_run_id

        try:
            recipe = load_recipe(name, _folder(self.args))
            inspector = self.inspector_for(recipe)
        except EXPECTED_ERRORS as exc:
            _say(f"recipe {name!r} refused, still on {self.setup.recipe or 'the model given'}: {exc}")
            raise
        with self.lock:
            old = self.setup
            new = _Setup(recipe.name, self.args.source or recipe.source or old.source, recipe.roi,
                         self.args.triggered or recipe.triggered)  # fmt: skip
            self.slot.set(inspector, new_run_id("line"))
            self.setup = new
            if (new.source, new.triggered) != (old.source, old.triggered):
                self.job_stop.set()  # the job is restarted on the new source / trigger mode
        self.hub.set_recipe(recipe.name)
        self.results.record_change("recipe", old.recipe or "", recipe.name, who="plc")
        _say(f"recipe {recipe.name}: model {Path(recipe.model).name}, source {new.source}, "
             f"{'triggered' if new.triggered else 'free run'}" + (f", ROI {list(new.roi)}" if new.roi else ""))  # fmt: skip

    def roi(self):
        return self.setup.roi

    def recipe(self):
        return self.setup.recipe

    def request_stop(self, signum, _frame) -> None:
        self.stop.set()
        self.job_stop.set()
        _say(f"stopping ({signal.Signals(signum).name})")


def _folder(args) -> Path | None:
    return Path(args.recipes_dir) if args.recipes_dir else None


def run_serve(args, runtime) -> int:
    """Serve until SIGTERM/SIGINT (exit 0) or until a file source ends (exit 0); a source that fails raises."""
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda signum, _f: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _serve(args, runtime, stop)
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)


def _forwarder(args, log_path: Path):
    """The store-and-forward thread to the plant PostgreSQL given by --central (not started), or None."""
    if not args.central:
        return None
    from engine.central.forwarder import Forwarder

    return Forwarder(args.central, log_path, station=args.station, share=args.central_share)


def _serve(args, runtime, stop: threading.Event) -> int:
    from engine.inference.inspector import Inspector
    from engine.inference.live import LiveResult
    from engine.jobs.line import PartError
    from engine.jobs.live import InspectorSlot, RunOpened, live_job
    from engine.lineio.endpoints import start_endpoints, stop_endpoints
    from engine.lineio.hub import LineHub
    from engine.recipes import LineIOSettings, Recipe, load_recipe
    from engine.results import ResultsLog, new_run_id
    from engine.sources import SourceEvent

    if args.central_share and not args.central:
        raise ValueError("--central-share goes with --central URL")
    recipe = load_recipe(args.recipe, _folder(args)) if args.recipe else Recipe(name="cli", model=args.model)
    source = args.source or recipe.source
    if not source:
        raise ValueError(f"no source: give --source{'' if not args.recipe else ' or set source in recipe ' + recipe.name}")
    io = LineIOSettings(args.opcua or recipe.io.opcua, args.modbus or recipe.io.modbus, args.mqtt or recipe.io.mqtt,
                        args.mqtt_topic or recipe.io.mqtt_topic)  # fmt: skip
    if (args.triggered or recipe.triggered) and not (io.opcua or io.modbus):
        raise ValueError("triggered inspection needs a PLC to trigger it: give --opcua or --modbus (or set io in the recipe)")
    hub = LineHub(station=args.station)
    results = ResultsLog(Path(args.log) if args.log else None)
    forwarder = None
    endpoints: list = []
    serving = _Serving(args, None, hub, results, runtime, stop)
    try:
        inspector = serving.inspector_for(recipe) if args.recipe else Inspector.open(args.model, runtime)
        serving.slot = InspectorSlot(inspector, new_run_id("line"))
        serving.setup = _Setup(recipe.name if args.recipe else None, source, recipe.roi, args.triggered or recipe.triggered)
        if args.recipe:
            hub.set_recipe(recipe.name)
        hub.set_recipe_handler(serving.switch_recipe)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, serving.request_stop)
        endpoints = start_endpoints(hub, io, users_file=args.users, station=args.station)
        forwarder = _forwarder(args, results.path)
        if forwarder is not None:
            forwarder.start()
            _say(f"forwarding results to {forwarder.target.display}")
        done = 0
        while True:
            serving.job_stop = threading.Event()
            if serving.stop.is_set():
                break
            setup = serving.setup
            job = live_job(setup.source, serving.slot, results, loop=args.loop, stop=serving.job_stop, hub=hub,
                           triggered=setup.triggered, roi=serving.roi, recipe=serving.recipe)  # fmt: skip
            for item in job:
                if isinstance(item, RunOpened):
                    inspector = serving.slot.current
                    where = ", ".join(e.description for e in endpoints) or "no line endpoints"
                    _say(f"started: station {args.station}, model {Path(str(inspector.path)).name} "
                         f"({inspector.ref.id}), {item.description}, {'triggered' if setup.triggered else 'free run'}, "
                         f"{where}, results log {results.path}")  # fmt: skip
                elif isinstance(item, LiveResult):
                    done += 1
                elif isinstance(item, PartError):
                    done += 1
                    _say(f"part {item.part.part_id or item.part.sequence}: ERROR: {item.message}")
                elif isinstance(item, SourceEvent) and item.kind in ("lost", "recovered", "ended", "file_error"):
                    _say(item.message)
            if not serving.job_stop.is_set():
                break  # the source ended (a folder or video without --loop)
        hub.set_ready(False)
        _say(f"stopped after {done} results")
        return EXIT_OK
    finally:
        hub.set_recipe_handler(None)
        for problem in stop_endpoints(endpoints):
            _say(f"endpoint did not stop cleanly: {problem}")
        for part in hub.drain_triggers():  # triggered after the job ended, before the endpoints closed: logged, not lost
            results.log_error(run_id=serving.slot.run_id if serving.slot else "", source=source, item=f"part {part.sequence}",
                              model=None, message="not inspected: station stopping", part_id=part.part_id,
                              recipe=serving.setup.recipe if serving.setup else None)  # fmt: skip
        results.close()
        if forwarder is not None and forwarder.stop():
            if forwarder.status().last_error:
                _say(f"central store: {forwarder.status().last_error} (the rest is sent at the next start or `visinspect sync`)")
        if results.last_error:
            _say(f"results log: {results.last_error}")
