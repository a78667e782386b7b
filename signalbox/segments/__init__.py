"""Segments: who is in which audience, now; the condition language they share with playbooks."""
