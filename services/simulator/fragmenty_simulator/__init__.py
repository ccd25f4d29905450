"""A local stand-in for fragment.com that follows the markup description (docs/simulator.md)."""
