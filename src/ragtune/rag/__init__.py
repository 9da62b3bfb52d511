"""Retrieval-augmented answers: context packing, prompts, generation and citation checks."""
