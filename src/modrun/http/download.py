"""One way to send a stored blob: the local file when there is one (sendfile),
else the stored chunks streamed (S3, or sealed at rest)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

BINARY = "application/octet-stream"


async def blob_response(
    headers: dict[str, str],
    local_file: Callable[[], Path | None],
    read: Callable[[], Iterable[bytes]],
) -> Response:
    local = await run_in_threadpool(local_file)
    if local is not None:
        return FileResponse(local, headers=headers, media_type=BINARY)
    chunks = await run_in_threadpool(read)
    return StreamingResponse(chunks, headers=headers, media_type=BINARY)
