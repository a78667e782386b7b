"""The append-only event log: every accepted message, stored once per (workspace, message_id)."""
