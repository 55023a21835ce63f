"""Real receivers for the notification tests, each checking what it gets the way a real one would.

    receivers.py webhook [--fail-first N] [--hang-first N]
        An HTTP endpoint that verifies Standard Webhooks signatures with the `standardwebhooks`
        package. Signing secrets arrive on stdin, one `SECRET whsec_...` line each (the server
        shows a secret only once, after the endpoint's URL is known). The first N requests are
        answered 500 (--fail-first) or held open without an answer (--hang-first).
    receivers.py smtp
        An SMTP server (aiosmtpd) that parses each message it accepts.
    receivers.py push --vapid-key <base64url>
        A push service endpoint for one subscription whose keys it made itself: it checks the
        VAPID JWT (ES256, audience, expiry) against the server's public key and decrypts the
        RFC 8291 payload with the subscription's private key (http_ece).

Each prints `READY <json>` once it listens, then one JSON line per thing it received.
"""

import argparse
import base64
import email
import email.policy
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out_lock = threading.Lock()


def emit(kind, **fields):
    with out_lock:
        sys.stdout.write(kind + " " + json.dumps(fields) + "\n")
        sys.stdout.flush()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def webhook(args):
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secrets = []
    counter = {"n": 0}

    def read_secrets():
        for line in sys.stdin:
            if line.startswith("SECRET "):
                secrets.append(line.split(" ", 1)[1].strip())

    threading.Thread(target=read_secrets, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            with out_lock:
                counter["n"] += 1
                n = counter["n"]
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = False
            for secret in list(secrets):
                try:
                    Webhook(secret).verify(body, headers)
                    verified = True
                    break
                except WebhookVerificationError:
                    pass
            if n <= args.hang_first:
                emit("HUNG", id=headers.get("webhook-id"), n=n)
                time.sleep(120)
                return
            status = 500 if n <= args.fail_first else 200
            emit(
                "WEBHOOK",
                n=n,
                id=headers.get("webhook-id"),
                verified=verified,
                status=status,
                path=self.path,
                user_agent=headers.get("user-agent"),
                payload=json.loads(body),
            )
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"no thanks" if status == 500 else b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    emit("READY", url="http://127.0.0.1:%d/hooks/switchboard" % server.server_address[1])
    server.serve_forever()


def smtp(args):
    import asyncio

    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            text = message.get_body(preferencelist=("plain",))
            html = message.get_body(preferencelist=("html",))
            emit(
                "EMAIL",
                mail_from=envelope.mail_from,
                rcpt_tos=envelope.rcpt_tos,
                subject=str(message["subject"]),
                content_type=message.get_content_type(),
                text=text.get_content() if text else None,
                html=html.get_content() if html else None,
            )
            return "250 Message accepted for delivery"

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    emit("READY", url="smtp://127.0.0.1:%d" % port)
    threading.Event().wait()


def push(args):
    import http_ece
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)
    token = b64url(os.urandom(12))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reject(self, reason):
            emit("PUSH_REJECTED", reason=reason)
            self.send_response(400)
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path != "/push/" + token:
                return self.reject("unknown subscription " + self.path)
            authorization = self.headers.get("authorization", "")
            if not authorization.startswith("vapid "):
                return self.reject("no VAPID authorization: %r" % authorization)
            params = dict(
                part.strip().split("=", 1) for part in authorization[len("vapid "):].split(",")
            )
            if params.get("k") != args.vapid_key:
                return self.reject("VAPID key %r is not the server's" % params.get("k"))
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(params["k"]))
            origin = "http://127.0.0.1:%d" % self.server.server_address[1]
            try:
                claims = jwt.decode(params["t"], key, algorithms=["ES256"], audience=origin)
            except jwt.PyJWTError as e:
                return self.reject("VAPID JWT: %s" % e)
            if not (time.time() < claims["exp"] <= time.time() + 24 * 3600):
                return self.reject("VAPID exp out of range: %r" % claims["exp"])
            if self.headers.get("content-encoding") != "aes128gcm":
                return self.reject("content-encoding %r" % self.headers.get("content-encoding"))
            try:
                plain = http_ece.decrypt(
                    body, private_key=private, auth_secret=auth, version="aes128gcm"
                )
            except Exception as e:  # noqa: BLE001 - any failure is the test's failure
                return self.reject("decrypt: %r" % e)
            emit(
                "PUSH",
                ttl=self.headers.get("ttl"),
                urgency=self.headers.get("urgency"),
                subject=claims.get("sub"),
                payload=json.loads(plain),
            )
            self.send_response(201)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    emit(
        "READY",
        subscription={
            "endpoint": "http://127.0.0.1:%d/push/%s" % (server.server_address[1], token),
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
        },
    )
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    w = sub.add_parser("webhook")
    w.add_argument("--fail-first", type=int, default=0)
    w.add_argument("--hang-first", type=int, default=0)
    sub.add_parser("smtp")
    p = sub.add_parser("push")
    p.add_argument("--vapid-key", required=True)
    args = parser.parse_args()
    {"webhook": webhook, "smtp": smtp, "push": push}[args.mode](args)


if __name__ == "__main__":
    main()
