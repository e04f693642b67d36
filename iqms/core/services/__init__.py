"""Core services: the only API the front ends use."""
