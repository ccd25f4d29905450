"""Fragmenty notifier service."""
