#!/usr/bin/env python3
"""Normal requests served while slow clients trickle their requests.

Opens SLOW connections to a rewind server on 127.0.0.1 that each send one
byte of a request head per second, and meanwhile sends NORMAL requests
(GET /__rewind/health, one at a time, each on a new connection), printing
their latency (p50, p99, max) and how many failed. Bounded: it stops after
the last normal request.

Usage: tools/bench/slowloris.py PORT [SLOW=120] [NORMAL=200] [SECONDS=30]
"""
import socket
import statistics
import sys
import threading
import time


def trickle(port, slow, stop):
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
    socks = []
    for _ in range(slow):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    at = 0
    while not stop.is_set() and at < len(head):
        for s in socks:
            try:
                s.send(head[at:at + 1])
            except OSError:
                pass
        at += 1
        stop.wait(1.0)
    cut = 0
    for s in socks:
        try:
            s.setblocking(True)
            s.settimeout(0.2)
            if s.recv(12) in (b"HTTP/1.1 408", b""):
                cut += 1
        except OSError:
            cut += 1
        s.close()
    return cut


def main():
    port = int(sys.argv[1])
    slow = int(sys.argv[2]) if len(sys.argv) > 2 else 120
    normal = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    stop = threading.Event()
    t = threading.Thread(target=trickle, args=(port, slow, stop), daemon=True)
    t.start()
    time.sleep(1.0)
    latencies, failed = [], 0
    gap = seconds / normal
    for _ in range(normal):
        start = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /__rewind/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                failed += 1
        except OSError:
            failed += 1
        latencies.append((time.monotonic() - start) * 1000)
        time.sleep(max(0.0, gap - latencies[-1] / 1000))
    stop.set()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{slow} slow connections, {normal} normal requests over {seconds:.0f} s: "
          f"p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms, "
          f"max {latencies[-1]:.2f} ms, failed {failed}")


if __name__ == "__main__":
    main()
