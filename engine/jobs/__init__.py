"""The long jobs, each defined once: train, evaluate, calibrate, review, live.

Each is a Qt-free generator that takes a `stop` event and yields typed events. `visinspect` (engine.cli)
iterates them and prints; the station runs them in its one worker type and shows what they yield.
"""
