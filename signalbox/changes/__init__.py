"""The change log: what changed, per workspace, in commit order."""
