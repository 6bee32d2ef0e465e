import json
import logging

from opentelemetry import trace

from finops_runtime.telemetry import JsonFormatter


def test_json_logs_carry_the_trace_id_of_the_current_span(spans):
    formatter = JsonFormatter()
    record = logging.LogRecord("finops", logging.INFO, __file__, 1, "allocated %s lines", (3,), None)
    record.consumer = "allocation"

    with trace.get_tracer("test").start_as_current_span("work") as span:
        entry = json.loads(formatter.format(record))

    assert entry["message"] == "allocated 3 lines"
    assert entry["consumer"] == "allocation"
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
