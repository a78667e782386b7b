"""Deterministic demo world: a multi-location fitness chain fed through the real pipeline."""
