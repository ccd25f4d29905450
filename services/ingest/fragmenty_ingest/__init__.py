"""Fragmenty ingest service."""
