#!/usr/bin/env python3
"""Instructions per refresh grant of a `tessera` binary, under callgrind.

    bench/refresh_callgrind.py BINARY [CHAINS] [REFRESHES_PER_CHAIN]

Starts `BINARY serve` on a fresh data directory (embedded SQLite) under
`valgrind --tool=callgrind` with instrumentation off, signs a user in once
per chain (password grants), warms every chain up, then switches
instrumentation on for REFRESHES_PER_CHAIN refreshes on each of CHAINS
chains, each chain on its own connection and thread, and off again. Every
thread of the server is counted (the request's, the runtime's, the SQLite
writer's); the kernel's work (system calls, the disk sync) is not. Prints
the total and the instructions per refresh. Defaults: 1 chain (one refresh
at a time: the cost of a refresh alone), 2,000 refreshes. With
CALLGRIND_OUT set, the profile is kept there (for callgrind_annotate).
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chain:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.host = f"127.0.0.1:{port}"
        self.port = port
        self.refresh = None

    def token(self, fields):
        body = urllib.parse.urlencode(fields)
        self.conn.request("POST", "/v1/token", body, {
            "Host": self.host,
            "Content-Type": "application/x-www-form-urlencoded",
        })
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"/v1/token: {r.status} {data!r}")
        self.refresh = json.loads(data)["refresh_token"]

    def sign_in(self):
        self.token({"grant_type": "password", "username": "bench", "password": PASSWORD})
        # A new connection for the chain: this one may idle past the
        # server's keep-alive timeout while the other chains sign in.
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def run(self, n):
        for _ in range(n):
            self.token({"grant_type": "refresh_token", "refresh_token": self.refresh})


def in_parallel(chains, n):
    failures = []

    def run(chain):
        try:
            chain.run(n)
        except Exception as e:  # reported below, after every thread ends
            failures.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in chains]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} chain(s) failed: {failures[0]!r}")


def main():
    binary = sys.argv[1]
    chains_n = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        out = os.path.join(data, "callgrind.out")
        env = dict(os.environ,
                   TESSERA_DATA_DIR=data,
                   TESSERA_LISTEN=f"127.0.0.1:{port}",
                   TESSERA_PUBLIC_URL=f"http://127.0.0.1:{port}",
                   TESSERA_LOG="warn")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", binary, "serve"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(1200):
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/healthz", headers={"Host": f"127.0.0.1:{port}"})
                    r = c.getresponse()
                    r.read()
                    if r.status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.25)
            else:
                raise RuntimeError("the server did not start")
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            c.request("POST", "/v1/users",
                      json.dumps({"username": "bench", "password": PASSWORD}),
                      {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 201:
                raise RuntimeError(f"/v1/users: {r.status}")
            chains = [Chain(port) for _ in range(chains_n)]
            for chain in chains:
                chain.sign_in()
            in_parallel(chains, 200)
            control = ["callgrind_control", "-i"]
            subprocess.run(control + ["on", str(server.pid)], check=True, capture_output=True)
            in_parallel(chains, n)
            subprocess.run(control + ["off", str(server.pid)], check=True, capture_output=True)
        finally:
            server.terminate()
            server.wait()
        total = 0
        with open(out) as f:
            for line in f:
                m = re.match(r"(?:summary|totals): (\d+)", line)
                if m:
                    total = int(m.group(1))
        if os.environ.get("CALLGRIND_OUT"):
            shutil.copy(out, os.environ["CALLGRIND_OUT"])
        refreshes = chains_n * n
        print(f"{chains_n} chain(s), {refreshes} refreshes: {total} instructions, "
              f"{total // refreshes} per refresh")


if __name__ == "__main__":
    main()
