"""Prometheus metrics for this process, in a registry of our own (no global collisions)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter(
    "signalbox_events_accepted_total", "Messages stored (new message ids).", ["source"], registry=REGISTRY
)
EVENTS_DUPLICATE = Counter(
    "signalbox_events_duplicate_total", "Messages acknowledged but already stored.", ["source"], registry=REGISTRY
)
EVENTS_REJECTED = Counter(
    "signalbox_events_rejected_total", "Messages refused for their own fault.", ["reason"], registry=REGISTRY
)
EVENTS_DEAD_LETTERED = Counter(
    "signalbox_events_dead_lettered_total", "Messages that failed on our side.", ["step"], registry=REGISTRY
)
REQUESTS_REJECTED = Counter(
    "signalbox_requests_rejected_total",
    "Whole requests refused (auth, size, unreadable).",
    ["reason"],
    registry=REGISTRY,
)
BATCH_LATENCY = Histogram(
    "signalbox_batch_seconds",
    "Time to run one batch through the pipeline.",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)
