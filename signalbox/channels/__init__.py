"""Channels behind ports: email, SMS and staff tasks; the sandbox adapter is the default."""
