"""Shared plumbing: settings, database, clock, ids, errors, logging, keys."""
