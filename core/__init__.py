"""Errors, ids, time parsing and tiny shared types. Imports nothing from the project."""
