"""Temporary: :data:`covidlab.papers.HEADLINES` by its old name, until benchmark reads it there."""

from covidlab.papers import HEADLINES  # noqa: F401
