"""Fragmenty crawler service."""
