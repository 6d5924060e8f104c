"""OpenAPI 3.1 at /openapi.json: one typed operation per function, a reference
page that needs nothing from elsewhere, and schemathesis finding no 5xx and
no response that breaks the document."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from openapi_support import failures, schemathesis
from support import EXAMPLES, TEXTKIT_C, ModrunServer

TEXTKIT_SCHEMA = {
    "version": 1,
    "types": {"Stats": {"fields": {"bytes": "Int!", "words": "Int!", "lines": "Int!"}}},
    "functions": {
        "echo": {"params": {"text": "String!", "times": "Int"}, "input": "json", "returns": "JSON"},
        "reverse": {"params": {"text": "String!"}, "input": "text", "returns": "String!"},
        "rot13": {"params": {"text": "String!"}, "input": "text", "returns": "String!"},
        "wordCount": {"params": {"text": "String!"}, "input": "text", "returns": "Stats!"},
        "noop": {"input": "none"},
    },
}


@pytest.fixture(scope="module")
def typed_node(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("openapi")
    app = root / "app"
    shutil.copytree(EXAMPLES / "hello-as", app / "hello-as", ignore=shutil.ignore_patterns("node_modules"))
    shutil.copy(TEXTKIT_C, app / "textkit.wasm")
    (app / "textkit.schema.json").write_text(json.dumps(TEXTKIT_SCHEMA))
    (root / "state").mkdir()
    with ModrunServer(app, root / "state", "--allowRuntimeChanges", "--refresh", "200ms") as server:
        yield server


def test_every_function_is_a_typed_operation(typed_node: ModrunServer):
    doc = httpx.get(typed_node.url + "/openapi.json").json()
    validate(doc)  # a valid OpenAPI 3.1 document
    assert doc["openapi"] == "3.1.0"
    functions = httpx.get(typed_node.url + "/functions").json()["functions"]
    for fn in functions:
        assert "post" in doc["paths"][fn["path"]], fn["path"]

    echo = doc["paths"]["/functions/echo"]["post"]
    body = echo["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["text"] == {"type": "string"}
    assert body["properties"]["times"]["type"] == ["integer", "null"]
    assert body["required"] == ["text"] and body["additionalProperties"] is False

    count = doc["paths"]["/functions/wordCount"]["post"]
    assert "text/plain" in count["requestBody"]["content"]
    returned = count["responses"]["200"]["content"]["application/json"]["schema"]
    assert returned == {"$ref": "#/components/schemas/textkit.Stats"}
    assert doc["components"]["schemas"]["textkit.Stats"]["required"] == ["bytes", "words", "lines"]
    assert set(count["responses"]) >= {"200", "400", "422", "503", "504"}
    assert "204" in doc["paths"]["/functions/noop"]["post"]["responses"]


def test_the_document_follows_the_plugins(typed_node: ModrunServer, tmp_path: Path):
    (typed_node.plugins / "textkit.schema.json").write_text(
        json.dumps({**TEXTKIT_SCHEMA, "functions": {"noop": {"input": "none"}}})
    )
    try:
        url = typed_node.url + "/openapi.json"
        doc = _wait_for(
            lambda: httpx.get(url).json(),
            lambda d: "text/plain" in d["paths"]["/functions/echo"]["post"]["requestBody"]["content"],
        )
        assert doc["paths"]["/functions/echo"]["post"]["summary"] == "echo(input: String): String"
    finally:
        (typed_node.plugins / "textkit.schema.json").write_text(json.dumps(TEXTKIT_SCHEMA))
        _wait_for(
            lambda: httpx.get(typed_node.url + "/openapi.json").json(),
            lambda d: "application/json" in d["paths"]["/functions/echo"]["post"]["requestBody"]["content"],
        )


def test_the_reference_page_needs_nothing_from_elsewhere(typed_node: ModrunServer):
    page = httpx.get(typed_node.url + "/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "hello-as__greet" in page.text and "wordCount(text: String!): Stats!" in page.text
    assert not re.search(
        r"""(src|href)=["']?(https?:)?//""", page.text
    )  # no script, style or font from a CDN
    assert "<script" not in page.text


def test_schemathesis_finds_nothing_on_the_node(typed_node: ModrunServer, tmp_path: Path):
    run = schemathesis(typed_node.url + "/openapi.json", tmp_path)
    assert run.returncode == 0, failures(run)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert tested and int(tested.group(1)) >= 25, run.stdout[-3000:]


def _wait_for(fetch, ready, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ready(value) or time.monotonic() > deadline:
            assert ready(value), "timed out"
            return value
        time.sleep(0.2)
