"""Cold starts of Lambda binaries under cargo-lambda's Runtime API emulator (scripts/bench-start).

For each binary, RUNS times: starts it with the Runtime API pointed at a pass-through proxy in
front of the emulator, and takes
  init  = exec -> the first `GET .../runtime/invocation/next` reaching the proxy,
  first = the first invocation's round trip (sent to the emulator's invoke API once the
          function waits for it, until its answer is back),
then stops the process. Prints one JSON object per binary: the medians and every run.

usage: bench_start.py EMULATOR_PORT RUNS NAME=BINARY=EVENT_FILE...
The binaries inherit this process's environment (the stack's configuration).
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

NEXT = b"/runtime/invocation/next"


class Proxy:
    """Forwards TCP connections to the emulator; notes when the first `next` request arrives."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.first_next = None
        self.seen = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def reset(self):
        self.first_next = None
        self.seen.clear()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, False), daemon=True).start()

    def pipe(self, src, dst, watch):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if watch and self.first_next is None and NEXT in data:
                    self.first_next = time.monotonic()
                    self.seen.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def invoke(port, event):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/_/invocations",
        data=event,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def cold_start(proxy, emulator_port, binary, event):
    proxy.reset()
    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{proxy.port}/.rt",
        AWS_LAMBDA_FUNCTION_NAME="_",
        AWS_LAMBDA_FUNCTION_VERSION="1",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
    )
    log = open(os.environ.get("BENCH_LOG", os.devnull), "ab")
    started = time.monotonic()
    process = subprocess.Popen([binary], env=env, stdout=log, stderr=log)
    try:
        if not proxy.seen.wait(30):
            raise SystemExit(f"{binary} never asked for an invocation (exit {process.poll()})")
        init = proxy.first_next - started
        sent = time.monotonic()
        answer = invoke(emulator_port, event)
        first = time.monotonic() - sent
        return init, first, answer
    finally:
        process.kill()
        process.wait()
        log.close()


def main():
    emulator_port, runs = int(sys.argv[1]), int(sys.argv[2])
    proxy = Proxy(emulator_port)
    for spec in sys.argv[3:]:
        name, binary, event_file = spec.split("=", 2)
        with open(event_file, "rb") as f:
            event = f.read()
        inits, firsts, answer = [], [], b""
        for _ in range(runs):
            init, first, answer = cold_start(proxy, emulator_port, binary, event)
            inits.append(init * 1000)
            firsts.append(first * 1000)
        print(
            json.dumps(
                {
                    "name": name,
                    "init_ms": statistics.median(inits),
                    "first_ms": statistics.median(firsts),
                    "inits": [round(v, 1) for v in inits],
                    "firsts": [round(v, 1) for v in firsts],
                    "answer": answer.decode(errors="replace")[:300],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
