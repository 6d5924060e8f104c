"""Secrets: ``{{NAME}}`` placeholders, where their values come from, redaction."""
