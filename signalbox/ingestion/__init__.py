"""Ingestion: Segment-compatible messages through validate, normalize, resolve, persist, derive."""
