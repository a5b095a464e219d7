"""Warden: monitors and governs large language models in production.

This package holds the CLI, the settings object and the embedded runtime; the
producer SDK lives in :mod:`warden.client`.
"""

from importlib.metadata import version

__version__ = version("warden")
