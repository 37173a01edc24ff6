"""Runs moto in server mode for local development and tests, with DynamoDB requests
serialized.

Real DynamoDB applies each conditional write and transaction atomically. moto's threaded
server does not: two concurrent conditional writes to one item can both succeed, and a
TransactWriteItems copies whole tables while other threads write to them (HTTP 500
"dictionary changed size during iteration"). Serializing the DynamoDB requests restores the
guarantees the service relies on (optimistic locking, rate-limit counters, idempotency
keys). SQS, KMS and Secrets Manager stay concurrent, so SQS long polls do not block others.

TransactWriteItems is idempotent by its ClientRequestToken, as in DynamoDB (which the AWS SDK
fills in on every call and keeps across its retries): a repeat of a token within 10 minutes
with the same request answers what the first call answered without writing again; with a
different request, IdempotentParameterMismatchException. moto ignores the token, so a retry
of a transaction whose response was lost (a busy machine) would fail its own conditions.

Usage: serve.py [-H HOST] [-p PORT]
"""

import argparse
import hashlib
import io
import json
import os
import signal
import sys
import threading
import time

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class SerializeDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, everything else untouched."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        # ClientRequestToken -> (expiry, request digest, status, headers, body chunks)
        self.tokens = {}

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            if target.endswith(".TransactWriteItems"):
                return self.transact_write(environ, start_response)
            # Materialise the body inside the lock: the backend work happens while the
            # response iterable is produced.
            return list(self.app(environ, start_response))

    TOKEN_TTL = 600.0  # seconds: DynamoDB's idempotency window for ClientRequestToken

    def transact_write(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        token = request.pop("ClientRequestToken", None) if isinstance(request, dict) else None
        if not token:
            return list(self.app(environ, start_response))
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        now = time.monotonic()
        self.tokens = {k: v for k, v in self.tokens.items() if v[0] > now}
        seen = self.tokens.get(token)
        if seen is not None:
            _, seen_digest, status, headers, chunks = seen
            if seen_digest != digest:
                msg = json.dumps({
                    "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                    "message": "The ClientRequestToken was used before with a different request",
                }).encode()
                start_response("400 Bad Request", [
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("Content-Length", str(len(msg))),
                ])
                return [msg]
            start_response(status, headers)
            return chunks
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, list(headers)
            return start_response(status, headers, exc_info)

        chunks = list(self.app(environ, capture))
        if captured.get("status", "").startswith("200"):
            self.tokens[token] = (now + self.TOKEN_TTL, digest, captured["status"], captured["headers"], chunks)
        return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerializeDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
