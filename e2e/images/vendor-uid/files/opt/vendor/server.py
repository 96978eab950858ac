"""A vendor app: serves its own (owner-only) files; runs as the UID the image was built for."""
import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open("/opt/vendor/VERSION") as version:
            body = f"vendor app {version.read().strip()} uid={os.getuid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
