"""An app that keeps its data in its image's VOLUME: appends a line per start and per request to
/var/lib/volume-app/visits and serves the count, with the UID it runs as."""
import http.server
import os

DATA = "/var/lib/volume-app/visits"


def visit(what):
    with open(DATA, "a") as log:
        log.write(what + "\n")
    with open(DATA) as log:
        return len(log.readlines())


visit("start")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        lines = visit("request")
        body = f"volume app uid={os.getuid()} gid={os.getgid()} lines={lines}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
