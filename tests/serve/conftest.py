"""The server over the shared two-document knowledge base with the fake models
(``create_app(fakes)``), and a live uvicorn on 127.0.0.1 for the clients that need a real socket."""

import socket
import threading

import pytest
import uvicorn
from fastapi.testclient import TestClient

from ragtune.serve import ServeSettings, create_app

KEY = "test-key-123"


def make_client(kb, **settings):
    app = create_app(ServeSettings(kb=kb.path, **settings), kb=kb)
    return TestClient(app)


@pytest.fixture
def client(kb):
    with make_client(kb) as c:
        yield c


@pytest.fixture
def keyed(kb):
    with make_client(kb, api_keys=(KEY,), max_upload_mb=0.01) as c:
        yield c


class LiveServer:
    """uvicorn in a thread on a socket that listens before the thread starts, so clients
    can connect at once (the backlog holds them until the app has started)."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def live(kb):
    app = create_app(ServeSettings(kb=kb.path, api_keys=(KEY,)), kb=kb)
    with LiveServer(app) as server:
        yield server
