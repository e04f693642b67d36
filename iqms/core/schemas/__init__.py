"""Pydantic schemas for input and output of each entity, with validation and examples."""
