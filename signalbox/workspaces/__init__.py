"""Workspaces: the tenants. Every customer-data row carries a workspace_id."""
