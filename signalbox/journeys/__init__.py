"""Playbooks: versioned YAML journeys, their templates, and (next) the engine that runs them."""
