"""A BYOC worker for the payload-size rows of ``bench/run.py``: answers every POST with its own body.

Runs in its own process (``python bench/_echo_worker.py``; prints its port, then serves until killed), so
the bench measures the client and the devnet orchestrator's relay, not a worker sharing the client's GIL.
The stdlib server keeps it dependency-free; one thread per connection.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-type", self.headers.get("content-type", "application/json"))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()  # until terminated by the bench
    return 0


if __name__ == "__main__":
    sys.exit(main())
