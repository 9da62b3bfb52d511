"""Where chunks live: the vector store, the lexical index, the manifest and the record of sources."""
