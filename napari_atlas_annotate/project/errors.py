"""Project errors: every message names the project or case, what is wrong and what to do."""

from __future__ import annotations


class ProjectError(ValueError):
    """Something about the project on disk (or a request against it) is wrong."""
