"""Starts moto server (the AWS emulator the tests use) with DynamoDB requests applied one at a time.

Real DynamoDB applies each request atomically: a conditional update or a TransactWriteItems either
sees and changes the item alone, or fails. moto's in-memory backend takes no lock, so under a
threaded server two concurrent conditional decrements can both pass their condition. Serialising
DynamoDB requests restores the real guarantee without slowing SQS long polls, S3 or Cognito, which
keep running concurrently.

It also makes moto's Cognito check TOTP codes (RFC 6238), which it skips by default, so the MFA
tests exercise real codes. Usage: moto_server.py HOST PORT
"""

import os
import sys
import threading

os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

dynamodb_lock = threading.Lock()
app = DomainDispatcherApplication(create_backend_app)


def serialised(environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with dynamodb_lock:
            return list(app(environ, start_response))
    return app(environ, start_response)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)
