"""Accounts, passwords, tokens, permissions and the audit trail."""
