"""The HTTP server: OpenAI-compatible chat, retrieval, documents and a web page.

Nothing here is imported by ``import ragtune``; FastAPI loads only when a server is built.
"""

from ragtune.serve.app import create_app
from ragtune.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
