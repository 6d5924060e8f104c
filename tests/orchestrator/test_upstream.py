"""The gateway's HTTP/1.1 client against a real socket server that misbehaves
on purpose: reuse, chunked answers, stale connections, refusals, lost calls."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from modrun.http.upstream import Lost, Refused, TooLarge, UpstreamPool
from support import free_port


class Server:
    """Answers each request by ``mode``; counts connections."""

    def __init__(self, mode: str = "length") -> None:
        self.mode = mode
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = int(next(h for h in lines if h.startswith(b"content-length")).split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(body)
                if self.mode == "drop":  # read the request, then die without answering
                    writer.close()
                    return
                if self.mode == "eof":  # no length: the body runs to the end of the connection
                    writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + body)
                    await writer.drain()
                    writer.close()
                    return
                if self.mode == "chunked":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"
                        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
                    )
                elif self.mode == "close":
                    writer.write(b"HTTP/1.1 201 Created\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nx-echo: 1\r\n\r\n%s" % (len(body), body)
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def __aenter__(self) -> str:
        self.port = free_port()
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port)
        return f"http://127.0.0.1:{self.port}/functions/x"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def run(coro):
    return asyncio.run(coro)


def test_keeps_connections_alive_and_sends_headers():
    async def main():
        server = Server()
        async with server as url:
            pool = UpstreamPool(timeout=5)
            for i in range(5):
                answer = await pool.post(url, f"body{i}".encode(), [(b"content-type", b"text/plain")])
                assert answer.status == 200 and answer.body == f"body{i}".encode()
                assert answer.headers[b"x-echo"] == b"1"
            assert server.connections == 1
            await pool.close()

    run(main())


def test_chunked_and_connection_close_answers():
    async def main():
        chunked, closing = Server("chunked"), Server("close")
        async with chunked as url1, closing as url2:
            pool = UpstreamPool(timeout=5)
            assert (await pool.post(url1, b"x", [])).body == b"abcdefg"
            assert (await pool.post(url1, b"x", [])).body == b"abcdefg"
            assert chunked.connections == 1
            for _ in range(2):
                answer = await pool.post(url2, b"x", [])
                assert (answer.status, answer.body) == (201, b"ok")
            assert closing.connections == 2  # never reuses a connection the node closes
            await pool.close()

    run(main())


def test_a_connection_the_node_closed_while_idle_is_replaced():
    async def main():
        server = Server()
        async with server as url:
            pool = UpstreamPool(timeout=5)
            await pool.post(url, b"one", [])
            for conn in next(iter(pool._idle.values())):  # the node drops the idle connection
                conn.writer.transport.abort()
            assert (await pool.post(url, b"two", [])).body == b"two"
            assert server.requests == [b"one", b"two"]  # delivered once each
            await pool.close()

    run(main())


def test_refused_and_lost_are_told_apart():
    async def main():
        pool = UpstreamPool(timeout=2)
        with pytest.raises(Refused):
            await pool.post(f"http://127.0.0.1:{free_port()}/f", b"x", [])
        server = Server("drop")
        async with server as url:
            with pytest.raises(Lost):
                await pool.post(url, b"may have run", [])
            assert server.requests == [b"may have run"]

    run(main())


def test_a_node_that_never_answers_times_out_as_lost():
    async def main():
        async def silent(reader, writer):
            await reader.read(1 << 16)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

        port = free_port()
        server = await asyncio.start_server(silent, "127.0.0.1", port)
        pool = UpstreamPool(timeout=0.3)
        with pytest.raises(Lost, match="no answer within"):
            await pool.post(f"http://127.0.0.1:{port}/f", b"x", [])
        server.close()

    run(main())


def test_an_answer_over_the_cap_is_refused_however_it_is_framed():
    async def main():
        for mode in ("length", "chunked", "eof"):
            server = Server(mode)
            async with server as url:
                pool = UpstreamPool(timeout=5, max_body=6)
                small = b"abc" if mode != "chunked" else b"x"  # the chunked server always sends 7 bytes
                if mode != "chunked":
                    assert (await pool.post(url, small, [])).body == small
                with pytest.raises(TooLarge, match="larger than 6 bytes"):
                    await pool.post(url, b"0123456789", [])
                assert (await UpstreamPool(timeout=5).post(url, b"0123456789", [])).status == 200
                await pool.close()

    run(main())
