# idle.py: a small Python HTTP server on 127.0.0.1:PORT that idles after
# one request. Prints "ready" when listening.
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


port = int(sys.argv[1]) if len(sys.argv) > 1 else 18081
srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
print("ready", flush=True)
srv.serve_forever()
