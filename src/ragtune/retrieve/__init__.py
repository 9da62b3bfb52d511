"""Dense, lexical and hybrid retrieval over a knowledge base."""
