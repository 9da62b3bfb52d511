"""Where chunks live: vector store, lexical index, manifest and the record of sources."""
