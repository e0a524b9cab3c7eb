"""A web seed for the integration tests: serves a folder over HTTP/1.1 with keep-alive and
single byte ranges, answering pipelined requests in order, as the static file servers of
model hubs and CDNs do. Run as ``python web_seed.py ROOT PORT``.

``twistd web`` is no stand-in here: given the pipelined range requests libtorrent sends a
web seed, it closes the connection after the second answer or stops sending the third after
64 KiB, and libtorrent then waits 20 s (its ``urlseed_timeout``) before it asks again."""

from __future__ import annotations

import os
import re
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

RANGE = re.compile(r"bytes=(\d+)-(\d*)")
CHUNK = 256 * 1024


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so requests can be pipelined

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start, end = 0, size - 1
            asked = RANGE.fullmatch(self.headers.get("Range", "").strip())
            if asked:
                start = int(asked.group(1))
                end = min(int(asked.group(2)) if asked.group(2) else size - 1, size - 1)
                if start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if body:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        self.wfile.flush()


def main(root: str, port: int) -> None:
    handler = partial(Handler, directory=root)
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.daemon_threads = True
        print(f"serving {root} on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
