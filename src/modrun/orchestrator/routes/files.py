"""The file store over HTTP (``/api/files/``): what nodes fetch modules from.

A node (its credential) lists and downloads only the files of modules placed
on it, as a kubelet reads only its own pods' secrets; admins see every file.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modrun.http.download import blob_response
from modrun.orchestrator.files import BadPath, clean_path
from modrun.orchestrator.routes.common import head_of, listing, problem
from modrun.storage.receive import TooLarge

if TYPE_CHECKING:
    from modrun.control.auth import Principal


def _own_files(request: Request) -> set[str] | None:
    """The files a node may fetch (of the modules placed on it); None: every file."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or principal.runtime is None:
        return None
    runtime = str(principal.runtime)
    modules = list(head_of(request).control.fleet.modules.copy().values())
    return {_cleaned(m.file) for m in modules if m.parent == runtime and m.file}


def _cleaned(path: str) -> str:
    """A module's file as the routes name it (the node asks for what its spec says)."""
    try:
        return clean_path(path)
    except BadPath:
        return path


async def list_files(request: Request) -> JSONResponse:
    files = await asyncio.to_thread(head_of(request).files.list, request.query_params.get("prefix", ""))
    own = _own_files(request)
    return listing([f.as_dict() for f in files if own is None or f.path in own], request)


def _path(request: Request) -> str:
    return clean_path(request.path_params["path"])


async def put_file(request: Request) -> JSONResponse:
    files = head_of(request).files
    try:
        path = _path(request)
    except BadPath as exc:
        return problem(400, str(exc))
    receiver = files.receiver()
    try:
        async for chunk in request.stream():
            receiver.write(chunk)
        receiver.finish()
        existed = await asyncio.to_thread(files.info, path)
        info = await asyncio.to_thread(files.commit, path, receiver)
    except TooLarge as exc:
        receiver.abort()
        return problem(413, str(exc))
    except BaseException:
        receiver.abort()
        raise
    return JSONResponse(info.as_dict(), status_code=200 if existed else 201)


async def get_file(request: Request) -> Response:
    files = head_of(request).files
    try:
        path = _path(request)
    except BadPath as exc:
        return problem(400, str(exc))
    own = _own_files(request)
    info = await asyncio.to_thread(files.info, path) if own is None or path in own else None
    if info is None:  # the same answer for a file that exists and one that does not
        return problem(404, f"no file {path!r}")
    headers = {"etag": f'"{info.sha256}"', "x-checksum-sha256": info.sha256}
    return await blob_response(headers, lambda: files.local_file(info), lambda: files.read(info))


async def delete_file(request: Request) -> Response:
    try:
        path = _path(request)
    except BadPath as exc:
        return problem(400, str(exc))
    if not await asyncio.to_thread(head_of(request).files.delete, path):
        return problem(404, f"no file {path!r}")
    return Response(status_code=204)
