"""A legacy web app: each request writes a temp file (tempfile: $TMPDIR or /tmp) and reads it back."""
import http.server
import os
import tempfile


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with tempfile.NamedTemporaryFile("w+", prefix="req-") as scratch:
            scratch.write(f"request {self.path}\n")
            scratch.flush()
            scratch.seek(0)
            body = f"ok uid={os.getuid()} wrote and read a temp file in {os.path.dirname(scratch.name)}: {scratch.read()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
