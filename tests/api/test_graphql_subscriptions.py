"""GraphQL subscriptions on a real node, through real client libraries: the
streaming functions of examples/chat-as (``"streams": true``) are
``Subscription`` fields; their chunks arrive as events over graphql-sse
(``httpx-sse``) and graphql-transport-ws (``gql``'s WebSocket transport), and a
subscriber that leaves stops the function and its model request."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from httpx_sse import connect_sse

from support import ModrunServer, chat_app, wait_until


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, api_server: str):
    root = tmp_path_factory.mktemp("subscriptions")
    app = chat_app(root / "app", api_server, "delay-20")
    with ModrunServer(app, root, "--noreload") as server:
        yield server


def ws_client(node: ModrunServer) -> Client:
    url = node.url.replace("http://", "ws://") + "/graphql"
    transport = WebsocketsTransport(url=url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
    return Client(transport=transport, fetch_schema_from_transport=False)


def test_streaming_functions_are_subscription_fields(node):
    with node.client() as client:
        doc = client.post(
            "/graphql", json={"query": "{ __schema { subscriptionType { fields { name } } } }"}
        ).json()
    fields = {f["name"] for f in doc["data"]["__schema"]["subscriptionType"]["fields"]}
    assert fields == {"chat", "chatUpper", "chatPolite", "politeAssistant"}


def test_events_over_graphql_sse_as_they_come(node):
    query = 'subscription { chatUpper(prompt: "count:6") }'
    arrivals = []
    with (
        httpx.Client(timeout=30) as client,
        connect_sse(client, "POST", f"{node.url}/graphql", json={"query": query}) as source,
    ):
        started = time.perf_counter()
        for event in source.iter_sse():
            arrivals.append((event.event, event.data, time.perf_counter() - started))
    nexts = [json.loads(data)["data"]["chatUpper"] for kind, data, _ in arrivals if kind == "next"]
    assert nexts == ["1 ", "2 ", "3 ", "4 ", "5 ", "6"]
    assert arrivals[-1][0] == "complete"
    assert arrivals[-2][2] - arrivals[0][2] > 0.05  # spread out: 20 ms a token


def test_a_subscription_needs_a_stream_and_bad_ones_are_refused(node):
    with node.client() as client:
        plain = client.post("/graphql", json={"query": 'subscription { chat(prompt: "x") }'})
        assert plain.status_code == 400 and "text/event-stream" in plain.json()["errors"][0]["message"]
        unknown = client.post(
            "/graphql", json={"query": "subscription { nope }"}, headers={"Accept": "text/event-stream"}
        )
        assert unknown.status_code == 400 and "nope" in unknown.json()["errors"][0]["message"]


def test_events_over_graphql_transport_ws(node):
    async def run() -> tuple[list[str], dict]:
        async with ws_client(node) as session:
            chunks = [
                result["chat"]
                async for result in session.subscribe(gql('subscription { chat(prompt: "hi there") }'))
            ]
            answer = await session.execute(gql('query { chat(prompt: "whole") }'))
        return chunks, answer

    chunks, answer = asyncio.run(run())
    assert chunks == ["echo: ", "hi ", "there"]
    assert answer == {"chat": "echo: whole"}


def test_leaving_a_subscription_stops_the_function_and_its_model(node, api_server):
    before = httpx.get(f"{api_server}/_streams").json()

    async def run() -> list[str]:
        got = []
        async with ws_client(node) as session:
            async for result in session.subscribe(gql('subscription { chat(prompt: "count:500") }')):
                got.append(result["chat"])
                if len(got) == 3:
                    break  # gql sends complete for it
            await asyncio.sleep(0.5)
        return got

    assert asyncio.run(run()) == ["1 ", "2 ", "3 "]
    wait_until(
        lambda: httpx.get(f"{api_server}/_streams").json()["closed_early"] > before["closed_early"],
        what="the model request closed",
    )
    assert httpx.get(f"{api_server}/_streams").json()["finished"] == before["finished"]
