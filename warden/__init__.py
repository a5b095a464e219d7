"""Warden: monitors and governs large language models in production.

This package holds the CLI, the settings object and the embedded runtime; the
producer SDK lives in :mod:`warden.client`.
"""

__version__ = "0.1.0"
