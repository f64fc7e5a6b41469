"""Workflows as data: the model admins write, its validation, and the engine that runs it."""
