"""Plugins and manifest from S3, secrets from AWS Secrets Manager (moto_server)."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from apps import fetch, make_app
from modrun.plugins.wasmbin import append_custom_section
from support import HELLO_AS, TEXTKIT_C, ModrunServer, wait_until


@pytest.fixture
def aws(moto, monkeypatch):
    for key, value in moto.items():
        monkeypatch.setenv(key, value)
    return moto


def _names(c) -> set[str]:
    return {p["name"] for p in c.get("/health").json()["plugins"]}


def test_plugins_from_s3_hot_reload_by_etag(aws, storage):
    s3 = boto3.client("s3")
    bucket = f"app-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="shared/text.wasm", Body=TEXTKIT_C.read_bytes())
    s3.put_object(
        Bucket=bucket,
        Key="shared/modrun.json",
        Body=b'{"plugins": {"hello": {"config": {"greeting": "Ahoy"}}}}',
    )
    s3.put_object(Bucket=bucket, Key="other/ignored.wasm", Body=HELLO_AS.read_bytes())
    args = ["--useAwsStorage", "--s3bucket", bucket, "--s3path", "shared", "--refresh", "200ms"]
    with ModrunServer(storage, storage, *args, env=aws) as server, server.client() as c:
        assert _names(c) == {"text"}
        assert c.get("/health").json()["storage"] == f"s3://{bucket}/shared/"
        assert c.post("/functions/reverse", content="s3").text == "3s"

        s3.put_object(Bucket=bucket, Key="shared/hello.wasm", Body=HELLO_AS.read_bytes())  # add
        wait_until(lambda: "hello" in _names(c), what="added plugin")
        assert c.post("/functions/greet", content="Bo").text == "Ahoy, Bo!"  # manifest from S3

        new_text = append_custom_section(TEXTKIT_C.read_bytes(), "v", b"2")  # replace
        old_sha = {p["name"]: p["sha256"] for p in c.get("/health").json()["plugins"]}["text"]
        s3.put_object(Bucket=bucket, Key="shared/text.wasm", Body=new_text)
        wait_until(
            lambda: {p["name"]: p["sha256"] for p in c.get("/health").json()["plugins"]}["text"] != old_sha,
            what="replaced plugin",
        )

        s3.delete_object(Bucket=bucket, Key="shared/text.wasm")  # delete
        wait_until(lambda: _names(c) == {"hello"}, what="deleted plugin")


def test_seed_form_s3bucket_with_plugins_folder(aws, storage):
    s3 = boto3.client("s3")
    bucket = f"seed-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="shared-plugins/text.wasm", Body=TEXTKIT_C.read_bytes())
    server = ModrunServer(storage, storage, "--noreload", env=aws)
    server.args = [
        "serve",
        "--s3bucket",
        bucket,
        "--plugins",
        "shared-plugins",
        "--port",
        str(server.port),
        "--storagePath",
        str(storage),
        "--noreload",
    ]
    with server, server.client() as c:
        assert _names(c) == {"text"}


def test_secrets_from_secrets_manager_rotate_without_restart(aws, app_dir, storage, bridge_wasm, api_server):
    sm = boto3.client("secretsmanager")
    name = f"api-{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=name, SecretString=json.dumps({"AUTH_TOKEN": "from-aws-1"}))
    make_app(
        app_dir,
        bridge_wasm,
        {
            "connections": {
                name: {
                    "type": "http",
                    "baseUrl": f"{api_server}/echo/",
                    "headers": {"Authorization": "Bearer {{AUTH_TOKEN}}", "X-Key": "{{API_KEY}}"},
                }
            }
        },
    )

    def sent() -> dict:
        status, text = fetch(c, {"url": f"{api_server}/echo/aws"})
        assert status == 200
        return json.loads(text)["headers"]

    with (
        ModrunServer(app_dir, storage, "--useAwsSecrets", "--refresh", "300ms", env=aws) as server,
        server.client() as c,
    ):
        assert sent()["authorization"] == "Bearer from-aws-1"
        sm.put_secret_value(SecretId=name, SecretString=json.dumps({"AUTH_TOKEN": "from-aws-2"}))
        wait_until(lambda: sent()["authorization"] == "Bearer from-aws-2", what="rotated secret")
        log = server.log()
    assert "from-aws" not in log


def test_environment_still_wins_over_secrets_manager(aws, app_dir, storage, bridge_wasm, api_server):
    sm = boto3.client("secretsmanager")
    name = f"api-{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=name, SecretString="plain-model-key")  # a plain secret is an API_KEY
    make_app(
        app_dir,
        bridge_wasm,
        {
            "connections": {
                name: {
                    "type": "http",
                    "baseUrl": f"{api_server}/echo/",
                    "headers": {"X-Key": "{{API_KEY}}", "X-Other": "{{OTHER}}"},
                }
            }
        },
    )
    env = {**aws, f"MODRUN_{name.upper().replace('-', '_')}_OTHER": "from-env"}
    with (
        ModrunServer(app_dir, storage, "--useAwsSecrets", "--noreload", env=env) as server,
        server.client() as c,
    ):
        status, text = fetch(c, {"url": f"{api_server}/echo/x"})
    assert status == 200
    headers = json.loads(text)["headers"]
    assert headers["x-key"] == "plain-model-key" and headers["x-other"] == "from-env"
