"""An app run as a named user: counts its starts in /home/app/data, serves the count."""
import http.server
import os

DATA = "/home/app/data/starts"
with open(DATA, "a") as log:
    log.write("start\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(DATA) as log:
            starts = len(log.readlines())
        body = f"named-user app uid={os.getuid()} starts={starts}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
