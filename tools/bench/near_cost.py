#!/usr/bin/env python3
"""What a near answer costs (replay --on-miss nearest) beside a hit.

Records N chat requests (a ~700-byte body each, one path, one model)
through `rewind record` in front of a tiny backend, then replays them with
--on-miss nearest --latency none over one keep-alive connection: N hits
(the recorded requests) and N near answers (the same with another
temperature), twice each, printing the mean time per request.

Usage: tools/bench/near_cost.py [N, default 200]
The binary: $REWIND_BIN, else build/rewind.
"""
import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("REWIND_BIN", os.path.join(ROOT, "build", "rewind"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"choices":[{"message":{"content":"ok"}}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start(args):
    p = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    return p, int(line.rsplit(":", 1)[1])


def chat(i, temperature):
    system = "You are a helpful assistant. " * 20
    return json.dumps({"model": "demo", "temperature": temperature,
                       "messages": [{"role": "system", "content": system},
                                    {"role": "user", "content":
                                     "question number %d about the weather in a city" % i}]})


def post(conn, body):
    conn.request("POST", "/v1/chat/completions", body,
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("X-Rewind")


def main():
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "rec.sqlite")
        rec, port = start(["record", "--db", db, "--backend",
                           "http://127.0.0.1:%d" % backend.server_address[1],
                           "--listen", "127.0.0.1:0", "--quiet"])
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(N):
            post(conn, chat(i, 0.2))
        rec.terminate()
        rec.wait()
        replay, port = start(["replay", "--db", db, "--listen", "127.0.0.1:0",
                              "--latency", "none", "--on-miss", "nearest",
                              "--quiet"])
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for kind, temperature in (("hit", 0.2), ("near", 0.9)) * 2:
            start_s = time.perf_counter()
            outcomes = set(post(conn, chat(i, temperature)) for i in range(N))
            ms = (time.perf_counter() - start_s) / N * 1000
            print("%s: %d requests, %.2f ms each, %s" % (kind, N, ms, sorted(outcomes)))
        replay.terminate()
        replay.wait()
    backend.shutdown()


if __name__ == "__main__":
    main()
