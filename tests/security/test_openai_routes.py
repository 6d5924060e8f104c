"""OpenAI-compatible routes on a secured fleet, tried as a caller with a key for
one artifact would: the official ``openai`` client works through the gateway
with that key (whole and streamed), and the key reaches nothing more - not the
node's own manifest model (the operator's upstream and its credentials), on
the gateway or on the node directly, and nothing at all without a key."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
import websockets
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from control_support import bearer, deployed, secured_fleet
from modrun.plugins.wasmbin import append_custom_section
from support import CHAT_AS, EXAMPLES, chat_app, wait_until

pytestmark = pytest.mark.slow


def test_a_key_for_one_chat_handler_reaches_only_it(tmp_path: Path, api_server: str):
    fleet = secured_fleet(tmp_path / "orch")
    admin = fleet.admin
    # the operator's model on this node ("assistant"): for admins only
    plugins = chat_app(tmp_path / "n1-plugins", api_server, "delay-20", plugin=False)
    node = fleet.node(plugins, "n1")
    try:
        schema = (EXAMPLES / "chat-as" / "modrun.schema.json").read_bytes()
        wasm = tmp_path / "chat.wasm"
        wasm.write_bytes(append_custom_section(CHAT_AS.read_bytes(), "modrun.schema", schema))
        chat = deployed(admin, wasm, "chat")
        key = admin.create_key("chat-only", artifact_ids=[chat], scopes=["invoke"], expires="1d")["api_key"]

        client = openai.OpenAI(base_url=f"{fleet.orch.url}/v1", api_key=key, max_retries=0)
        wait_until(lambda: [m.id for m in client.models.list().data] == ["politeAssistant"], what="listed")
        messages = [{"role": "user", "content": "heck no"}]
        whole = client.chat.completions.create(model="politeAssistant", messages=messages)
        assert whole.choices[0].message.content == "echo: **** no"
        streamed = client.chat.completions.create(model="politeAssistant", messages=messages, stream=True)
        texts = [c.choices[0].delta.content for c in streamed if c.choices and c.choices[0].delta.content]
        assert "".join(texts) == "echo: **** no" and len(texts) == 3

        # the operator's manifest model is not for this key: not through the gateway...
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="assistant", messages=messages)
        # ...and not on the node itself, nor is the chat handler without a key
        request = {"model": "assistant", "messages": messages}
        on_node = httpx.post(f"{node.url}/v1/chat/completions", json=request, headers=bearer(key))
        assert on_node.status_code == 403, on_node.text
        handler = {"model": "politeAssistant", "messages": messages}
        assert (
            httpx.post(f"{node.url}/v1/chat/completions", json=handler, headers=bearer(key)).status_code
            == 200
        )
        for url in (fleet.orch.url, node.url):
            assert httpx.post(f"{url}/v1/chat/completions", json=handler).status_code == 401
        unreadable = httpx.post(f"{node.url}/v1/chat/completions", content=b"{not json", headers=bearer(key))
        assert unreadable.status_code == 403
        # a subscription is checked like any GraphQL request: the key's own function, through
        # the gateway and on the node; nothing without a key
        subscription = {"query": 'subscription { chatUpper(prompt: "hi") }'}
        sse = {"accept": "text/event-stream"}
        for url in (fleet.orch.url, node.url):
            events = httpx.post(
                f"{url}/graphql", json=subscription, headers={**sse, **bearer(key)}, timeout=30
            )
            assert events.status_code == 200 and '"chatUpper": "ECHO: "' in events.text, events.text
            assert httpx.post(f"{url}/graphql", json=subscription, headers=sse).status_code == 401
        # GraphQL over WebSocket is not open on a secured node, with a key or without
        ws = node.url.replace("http://", "ws://") + "/graphql"
        for headers in ({"X-API-Key": key}, {}):
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                connect(ws, subprotocols=[Subprotocol("graphql-transport-ws")], additional_headers=headers)
            assert refused.value.response.status_code == 403
        # the admin may use the operator's model on the node
        allowed = httpx.post(f"{node.url}/v1/chat/completions", json=request, headers=bearer(admin.token))
        assert (
            allowed.status_code == 200
            and allowed.json()["choices"][0]["message"]["content"] == "echo: heck no"
        )
    finally:
        node.stop()
        fleet.stop()
