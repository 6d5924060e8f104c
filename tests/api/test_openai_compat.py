"""The official ``openai`` package, pointed at a real node, works unchanged:
models listed, chat completions whole and streamed, from a chat-handler
function (examples/chat-as ``politeAssistant``) and from a manifest model
(proxied to the OpenAI-compatible test server), with OpenAI's errors."""

from __future__ import annotations

import json

import openai
import pytest

from support import ModrunServer, chat_app, wait_until


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, api_server: str):
    root = tmp_path_factory.mktemp("openai")
    others = {
        "sentiment": {"provider": "embedded", "sourceModel": "vader"},  # not a chat model
        # a model named like a function that is no chat handler: never reached by that name
        "chat": {"provider": "openai", "sourceModel": "fast", "connection": "llm"},
    }
    app = chat_app(root / "app", api_server, "delay-10", models=others)
    with ModrunServer(app, root, "--noreload") as server:
        yield server


@pytest.fixture
def client(node) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{node.url}/v1", api_key="not-needed-on-a-lone-node", max_retries=0)


def test_models_are_the_chat_models_and_chat_handlers(client):
    listed = client.models.list()
    assert sorted(m.id for m in listed.data) == ["assistant", "politeAssistant"]
    assert all(m.object == "model" and m.owned_by == "modrun" for m in listed.data)


def test_a_chat_handler_function_answers_whole_and_streamed(client):
    messages = [{"role": "user", "content": "heck yes"}]
    whole = client.chat.completions.create(model="politeAssistant", messages=messages)
    assert whole.object == "chat.completion" and whole.model == "politeAssistant"
    assert whole.choices[0].message.role == "assistant"
    assert whole.choices[0].message.content == "echo: **** yes"  # the function masked the model's word
    stream = client.chat.completions.create(
        model="politeAssistant", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert deltas == ["echo: ", "**** ", "yes"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_a_manifest_model_is_proxied_whole_and_streamed(client, node):
    messages = [{"role": "user", "content": "how are you"}]
    whole = client.chat.completions.create(model="assistant", messages=messages)
    assert whole.choices[0].message.content == "echo: how are you"
    assert whole.model == "delay-10"  # the model server's own answer, its sourceModel
    texts = [
        c.choices[0].delta.content
        for c in client.chat.completions.create(model="assistant", messages=messages, stream=True)
        if c.choices and c.choices[0].delta.content
    ]
    assert texts == ["echo: ", "how ", "are ", "you"]
    # both are in the inference history, the stream with its chunk count
    with node.client() as http:

        def rows() -> list[dict]:
            found = http.get("/inferences", params={"model": "assistant"}).json()["inferences"]
            return [r for r in found if "how are you" in json.dumps(r["input"])]

        wait_until(lambda: len(rows()) == 2, what="two inference rows")
        streamed = next(r for r in rows() if "stream" in (r["output"] or {}))
        assert streamed["output"]["stream"]["chunks"] == 4


def test_openai_errors_for_unknown_models_and_bad_requests(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):  # a model, but not a chat one
        client.chat.completions.create(model="sentiment", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):  # a function's name shadows the model of that name
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="assistant", messages=[])
    assert "messages" in str(bad.value)
