"""Notifications: the transactional outbox, message templates, providers and the worker."""
