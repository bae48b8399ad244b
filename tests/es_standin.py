"""A stand-in for Elasticsearch, as far as chartreuse talks to it: the cluster health
endpoint, with basic auth, a status the test sets (or that turns yellow after a delay).
The real Elasticsearch cannot be installed on these machines."""
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EsStandIn:
    def __init__(self, user="elastic", password="es-pw", status="green", ready_after=0.0):
        self.user, self.password = user, password
        self.status = status
        self.ready_at = time.monotonic() + ready_after
        self.requests = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                standin.requests.append(self.path)
                expected = "Basic " + base64.b64encode(
                    f"{standin.user}:{standin.password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.answer(401, {"error": "unauthorized"})
                if not self.path.startswith("/_cluster/health"):
                    return self.answer(404, {"error": "no such endpoint"})
                status = standin.status if time.monotonic() >= standin.ready_at else "red"
                # Like Elasticsearch: wait_for_status not reached -> 408 with the body.
                code = 200 if status in ("yellow", "green") else 408
                self.answer(code, {"cluster_name": "standin", "status": status,
                                   "timed_out": code != 200})

            def answer(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, password=None):
        from urllib.parse import quote
        pw = self.password if password is None else password
        return f"http://{self.user}:{quote(pw, safe='')}@127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
