"""Inbound connectors: webhooks from other systems, checked and mapped to events."""
