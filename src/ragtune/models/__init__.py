"""Bundled models, the embedder and generator protocols and their implementations."""
