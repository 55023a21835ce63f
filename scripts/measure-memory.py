#!/usr/bin/env python3
"""Memory and cost of large messages, as issue #10 (items 6, 7 and 8) measured them, against a
`switchboard` binary: run it for the current release build and for an older one to compare.

    cargo build --release
    python3 scripts/measure-memory.py target/release/switchboard [--replay-messages 580]

Each part starts the binary's `serve` on a fresh embedded cluster (a scratch data directory)
and reads the server process's resident memory (VmRSS) from /proc:

6. unread messages: 150 user messages of 1.5 MB to one session, never read; resident memory
   before and after, and the time of an append to that session (a short reply, median of 5)
   with no unread messages and with 150; then the agent message that receives them all;
7. idle readers: three `/api/v1/stream` readers that never read, while 20 events of 2 MB are
   appended; resident memory before and after;
8. replay: an export of N messages of 1.95 MB each (580 = 1.13 GB), replayed into an empty
   database; the replay process's peak resident memory (GNU time) and whether it succeeded.

Only the Python standard library is used. Needs the PostgreSQL server binaries (as `serve`
does) and /usr/bin/time.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, binary, data_dir):
        self.data_dir = data_dir
        env = dict(os.environ, SWITCHBOARD_DATA_DIR=data_dir, RUST_LOG="warn")
        env.pop("DATABASE_URL", None)
        self.process = subprocess.Popen(
            [binary, "serve", "--port", "0", "--host", "127.0.0.1"],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.token = None
        for line in self.process.stdout:
            if line.startswith("eyJ"):
                self.token = line.strip()
            if line.startswith("Switchboard listening on "):
                address = line.split("http://", 1)[1].strip()
                self.host, port = address.rsplit(":", 1)
                self.port = int(port)
                break
        else:
            raise SystemExit("the server did not start")

    def rss(self):
        return rss_mib(self.process.pid)

    def request(self, method, path, body=None, timeout=600):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        text = response.read()
        connection.close()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {text[:300]!r}")
        return json.loads(text) if text else None

    def agent(self, session, content, question=False):
        return self.request(
            "POST",
            "/api/v1/messages/agent",
            {
                "agent_instance_id": str(session),
                "agent_type": "measure",
                "content": content,
                "requires_user_input": question,
            },
        )

    def user(self, session, content):
        return self.request(
            "POST",
            "/api/v1/messages/user",
            {"agent_instance_id": str(session), "content": content, "mark_as_read": False},
        )

    def stop(self):
        self.process.terminate()
        self.process.wait(60)


def text(size, seed):
    line = f"{seed} " + "x" * 98 + "\n"
    return (line * (size // len(line) + 1))[:size]


def median_ms(action, times=5):
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def unread(server):
    session = uuid.uuid4()
    server.agent(session, "Which one?", question=True)
    # An append to the session: a short reply (the agent has not read anything yet).
    append_empty = median_ms(lambda: server.user(session, "short"))
    server.agent(session, "read the short ones")
    before = server.rss()
    for i in range(150):
        server.user(session, text(1_500_000, i))
    after = server.rss()
    append_full = median_ms(lambda: server.user(session, "short"))
    # The server's resident memory while it writes the answer, sampled every 5 ms.
    peak = [server.rss()]
    answering = threading.Event()

    def sample():
        while not answering.is_set():
            peak[0] = max(peak[0], server.rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    delivered = server.agent(session, "read them")["queued_user_messages"]
    delivery_s = time.perf_counter() - started
    answering.set()
    sampler.join()
    print(
        f"6. 150 unread 1.5 MB messages: resident {before:.0f} -> {after:.0f} MiB; "
        f"an append (a short reply) {append_empty:.1f} ms with none unread, "
        f"{append_full:.1f} ms with 150; the agent's next message receives all "
        f"{len(delivered)} in {delivery_s:.1f} s, resident at most {peak[0]:.0f} MiB while "
        f"answering, {server.rss():.0f} MiB after"
    )


def idle_readers(server):
    readers = []
    for _ in range(3):
        reader = socket.create_connection((server.host, server.port))
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(
            (
                f"GET /api/v1/stream HTTP/1.1\r\nHost: {server.host}\r\n"
                f"Authorization: Bearer {server.token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        readers.append(reader)
    time.sleep(1)
    before = server.rss()
    session = uuid.uuid4()
    for i in range(20):
        server.agent(session, text(2_000_000, i))
    time.sleep(3)
    after = server.rss()
    for reader in readers:
        reader.close()
    print(
        f"7. three idle /stream readers, 20 events of 2 MB: resident {before:.0f} -> {after:.0f} MiB"
    )


def replay(binary, server, messages, scratch):
    session = uuid.uuid4()
    for i in range(messages):
        server.agent(session, text(1_950_000, i))
    tenant = server.request("GET", "/api/v1/auth/verify")["user_id"]
    export = os.path.join(scratch, "export.ndjson")
    env = dict(os.environ, SWITCHBOARD_DATA_DIR=server.data_dir, RUST_LOG="warn")
    with open(export, "wb") as out:
        subprocess.run([binary, "export", "--user", tenant], stdout=out, env=env, check=True)
    size_gb = os.path.getsize(export) / 1e9
    server.stop()
    target = os.path.join(scratch, "replayed")
    env = dict(os.environ, SWITCHBOARD_DATA_DIR=target, RUST_LOG="warn")
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", binary, "replay", "--from", export],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    peak_mib = int(result.stderr.strip().splitlines()[-1]) / 1024
    outcome = "ok" if result.returncode == 0 else f"FAILED: {result.stderr.strip()[:300]}"
    print(
        f"8. replay of a {size_gb:.2f} GB export ({messages} messages of 1.95 MB): {outcome}; "
        f"peak resident {peak_mib:.0f} MiB; {seconds:.0f} s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--replay-messages", type=int, default=580)
    parser.add_argument("--only", choices=["6", "7", "8"])
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    scratch = tempfile.mkdtemp(prefix="switchboard-measure-")
    os.chmod(scratch, 0o711)  # the embedded cluster runs as `postgres` when we are root
    try:
        if args.only in (None, "6", "7"):
            server = Server(binary, os.path.join(scratch, "a"))
            try:
                if args.only in (None, "6"):
                    unread(server)
                if args.only in (None, "7"):
                    idle_readers(server)
            finally:
                server.stop()
        if args.only in (None, "8"):
            server = Server(binary, os.path.join(scratch, "b"))
            try:
                replay(binary, server, args.replay_messages, scratch)
            finally:
                if server.process.poll() is None:
                    server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
