"""Command-line entry point: Typer commands that parse, call a service, and print."""
