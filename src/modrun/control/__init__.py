"""The control plane (``/api/v2`` on the orchestrator): who may upload, see,
deploy and call what. Users, teams, tokens, API keys, the audit log."""
