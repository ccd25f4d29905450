"""Fragmenty's shared package: the contracts, settings and plumbing every service agrees on."""
