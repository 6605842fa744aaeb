"""Starts moto server (the AWS emulator the tests use) with DynamoDB requests applied one at a time.

Real DynamoDB applies each request atomically: a conditional update or a TransactWriteItems either
sees and changes the item alone, or fails. moto's in-memory backend takes no lock, so under a
threaded server two concurrent conditional decrements can both pass their condition. Serialising
DynamoDB requests restores the real guarantee without slowing SQS long polls, S3 or Cognito, which
keep running concurrently.

It also makes moto's Cognito check TOTP codes (RFC 6238), which it skips by default, so the MFA
tests exercise real codes, and makes it check a refresh's SECRET_HASH the way Cognito does: over
the user's own username (in a pool whose usernames are emails, the sub that access tokens carry as
`username`), where moto 5.2 checks the email the sign-in used.

`GET /_amanar/ses-messages` lists the mail SES accepted. moto's own `/moto-api/data.json` dumps every
service's state and fails with a 500 when a concurrent Cognito request changes a list while it is
being serialised; this reads SES messages alone. Usage: moto_server.py HOST PORT
"""

import json
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

def cognito_refresh_by_own_username():
    """moto keeps, with each refresh token, the name the sign-in used (the email) and computes the
    refresh's SECRET_HASH over it; Cognito uses the user's own username. Keep that one, and sign out
    by both names, so global sign-out still ends every session."""
    from moto.cognitoidp.models import CognitoIdpUserPool

    create_refresh_token = CognitoIdpUserPool.create_refresh_token
    sign_out = CognitoIdpUserPool.sign_out

    def own_username(pool, username):
        user = pool._get_user(username)
        return user.username if user is not None else username

    def create_by_own_username(self, client_id, username):
        return create_refresh_token(self, client_id, own_username(self, username))

    def sign_out_by_both(self, username):
        sign_out(self, username)
        own = own_username(self, username)
        if own != username:
            sign_out(self, own)

    CognitoIdpUserPool.create_refresh_token = create_by_own_username
    CognitoIdpUserPool.sign_out = sign_out_by_both


cognito_refresh_by_own_username()
dynamodb_lock = threading.Lock()
app = DomainDispatcherApplication(create_backend_app)


def ses_messages():
    """Every public, JSON-serialisable attribute of each message SES accepted."""
    from moto.core.model_instances import model_data

    model = model_data.get("ses", {}).get("Message")
    messages = []
    for instance in list(getattr(model, "instances_tracked", [])):
        message = {}
        for attr in dir(instance):
            if attr.startswith("_"):
                continue
            try:
                value = json.loads(json.dumps(getattr(instance, attr)))
            except (TypeError, AttributeError, ValueError):
                continue
            message[attr] = value
        messages.append(message)
    return messages


def serialised(environ, start_response):
    if environ.get("PATH_INFO") == "/_amanar/ses-messages":
        body = json.dumps({"messages": ses_messages()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with dynamodb_lock:
            return list(app(environ, start_response))
    return app(environ, start_response)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)
