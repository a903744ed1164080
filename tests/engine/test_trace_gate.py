"""Quantizing one model (FX tracing) while another runs in a second thread must not break either (issue 11, found live)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engine.inference import Inspector
from engine.inference.quantize import quantize_features, quantized_engine
from engine.inference.trace_gate import TraceGate
from engine.modelfile import load_model


def _hold(cm, entered: threading.Event, release: threading.Event) -> threading.Thread:
    """A thread that enters cm, says so, and stays inside until released."""

    def body():
        with cm:
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_a_trace_waits_for_running_models_and_new_calls_wait_for_the_trace():
    gate = TraceGate()
    call_in, call_out = threading.Event(), threading.Event()
    trace_in, trace_out = threading.Event(), threading.Event()
    later_in = threading.Event()
    caller = _hold(gate.model_call(), call_in, call_out)
    assert call_in.wait(2)
    tracer = _hold(gate.tracing(), trace_in, trace_out)
    assert not trace_in.wait(0.2)  # a model is running: the trace waits
    later = _hold(gate.model_call(), later_in, threading.Event())
    assert not later_in.wait(0.2)  # a trace is waiting: new model calls wait behind it (no starvation)
    call_out.set()
    assert trace_in.wait(2) and not later_in.is_set()  # the running call ended: the trace runs alone
    trace_out.set()
    assert later_in.wait(2)  # the trace ended: model calls go on
    for thread in (caller, tracer, later):
        thread.join(6)


@pytest.mark.skipif(quantized_engine() is None, reason="no quantized CPU engine in this torch")
def test_quantizing_one_model_while_another_runs_live(model_file):
    loaded = load_model(model_file)
    live = Inspector(loaded, device="cpu", precision="fp32")
    size = loaded.meta.input_size
    image = np.full((size, size, 3), 128, np.uint8)
    batch = torch.rand(4, 3, size, size)
    stop, errors, inspected = threading.Event(), [], []

    def run_live():
        try:
            while not stop.is_set():
                inspected.append(live.inspect([image])[0].p_anomaly)
        except Exception as exc:  # noqa: BLE001 - the test reports any failure of the running model
            errors.append(exc)

    thread = threading.Thread(target=run_live)
    thread.start()
    try:
        for _ in range(3):
            quantize_features(loaded.model, batch)
    finally:
        stop.set()
        thread.join(10)
    assert errors == [] and inspected
