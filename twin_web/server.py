"""Serving the app with waitress: in the foreground (``twin serve``) or in a thread (tests, load test).

waitress is a production WSGI server (a pool of worker threads behind one
asyncore loop); Flask's development server is never used.
"""

from __future__ import annotations

import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server


class Server:
    """A waitress server of a WSGI app on ``host:port`` (port 0: a free one), started by :meth:`run` or :meth:`start`.

    Examples
    --------
    >>> from web import create_app                              # doctest: +SKIP
    >>> with Server(create_app("twins/cevennes")) as server:     # doctest: +SKIP
    ...     print(server.url)
    http://127.0.0.1:41234/
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 8):
        self._map: dict[int, Any] = {}
        self._server = create_server(app, map=self._map, host=host, port=port, threads=threads)
        self.host = host
        self.port = int(getattr(self._server, "effective_port", port))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve until :meth:`close` (or Ctrl-C)."""
        self._server.run()

    def start(self) -> Server:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="waitress", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, close every connection, stop the worker threads."""
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._map)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
