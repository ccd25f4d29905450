"""Fragmenty api service."""
