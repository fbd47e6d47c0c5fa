"""Semantic image synthesis methods, one module per method, registered by paper name."""
