"""Routers of the governance API."""
