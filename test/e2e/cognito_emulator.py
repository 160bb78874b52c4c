"""A real Cognito API for the end-to-end tests: moto in server mode on a free loopback port,
driven with boto3 the way an administrator drives AWS.

Facts checked against moto 5.2.5 (moto/cognitoidp/models.py, responses.py, urls.py):
* ID tokens are RS256-signed with a fixed key (kid "dummy") whose public half moto serves at
  ``<endpoint>/<pool-id>/.well-known/jwks.json``; their issuer is
  ``https://cognito-idp.<region>.amazonaws.com/<pool-id>`` (not the emulator's address),
  ``aud`` is the app client id, ``token_use`` is ``id``. For pools whose users log in by email
  (UsernameAttributes=["email"]), ``cognito:username`` and ``sub`` are the same UUID.
* USER_PASSWORD_AUTH: unknown user -> UserNotFoundException, wrong password ->
  NotAuthorizedException "Incorrect username or password.", disabled -> NotAuthorizedException
  "User is disabled.", a user created with a temporary password -> NEW_PASSWORD_REQUIRED
  challenge, a signed-up user never confirmed -> UserNotConfirmedException. It does *not*
  check SECRET_HASH on this flow (ours is unit-tested against AWS's algorithm).
* AdminGetUser reports Enabled and UserStatus; UserNotFoundException once deleted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import requests

REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """`moto_server` in its own process group, stopped at teardown."""

    def __init__(self, log_path: Path):
        self.port = _free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = Path(sys.executable).with_name("moto_server")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start within 30 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        import os

        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def client(self):
        return boto3.client(
            "cognito-idp",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@dataclass
class CognitoUser:
    email: str
    password: str
    sub: str


class UserPool:
    """A pool whose users log in by email, with an app client that has a secret."""

    def __init__(self, moto: MotoServer):
        self.moto = moto
        self.idp = moto.client()
        pool = self.idp.create_user_pool(
            PoolName=f"anki-{uuid.uuid4().hex[:8]}",
            UsernameAttributes=["email"],
            AutoVerifiedAttributes=["email"],
        )["UserPool"]
        self.pool_id: str = pool["Id"]
        app = self.idp.create_user_pool_client(
            UserPoolId=self.pool_id,
            ClientName="ankisyncd",
            GenerateSecret=True,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]
        self.client_id: str = app["ClientId"]
        self.client_secret: str = app["ClientSecret"]

    def server_env(self, recheck_secs: int = 2) -> dict[str, str]:
        """What ankisyncd needs to use this pool through the emulator."""
        return {
            "ANKISYNCD_COGNITO_USER_POOL_ID": self.pool_id,
            "ANKISYNCD_COGNITO_CLIENT_ID": self.client_id,
            "ANKISYNCD_COGNITO_CLIENT_SECRET": self.client_secret,
            "ANKISYNCD_COGNITO_REGION": REGION,
            "ANKISYNCD_COGNITO_ENDPOINT": self.moto.endpoint,
            "ANKISYNCD_COGNITO_RECHECK_SECS": str(recheck_secs),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def add_user(self, email: str, password: str = "Correct-Horse-9", *, permanent: bool = True) -> CognitoUser:
        """A confirmed user; permanent=False leaves a temporary password (FORCE_CHANGE_PASSWORD)."""
        self.idp.admin_create_user(
            UserPoolId=self.pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            TemporaryPassword=password,
            MessageAction="SUPPRESS",
        )
        if permanent:
            self.idp.admin_set_user_password(UserPoolId=self.pool_id, Username=email, Password=password, Permanent=True)
        return CognitoUser(email, password, self.sub_of(email))

    def sign_up(self, email: str, password: str = "Correct-Horse-9") -> None:
        """Self-service sign-up, never confirmed: UNCONFIRMED."""
        digest = hmac.new(self.client_secret.encode(), (email + self.client_id).encode(), hashlib.sha256)
        self.idp.sign_up(
            ClientId=self.client_id,
            SecretHash=base64.b64encode(digest.digest()).decode(),
            Username=email,
            Password=password,
            UserAttributes=[{"Name": "email", "Value": email}],
        )

    def sub_of(self, email: str) -> str:
        attrs = self.idp.admin_get_user(UserPoolId=self.pool_id, Username=email)["UserAttributes"]
        return next(a["Value"] for a in attrs if a["Name"] == "sub")

    def status_of(self, email: str) -> str:
        return self.idp.admin_get_user(UserPoolId=self.pool_id, Username=email)["UserStatus"]

    def disable(self, email: str) -> None:
        self.idp.admin_disable_user(UserPoolId=self.pool_id, Username=email)

    def enable(self, email: str) -> None:
        self.idp.admin_enable_user(UserPoolId=self.pool_id, Username=email)

    def delete(self, email: str) -> None:
        self.idp.admin_delete_user(UserPoolId=self.pool_id, Username=email)
