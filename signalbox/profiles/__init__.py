"""Profiles: one row per person node, with the read model (traits, counters) on the canonical one."""
