"""Reading files into documents, cleaning their text and cutting it into chunks."""
