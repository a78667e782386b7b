"""The operator dashboard: server-rendered pages over the capabilities, behind a sign-in."""
