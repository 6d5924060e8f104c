"""What every fleet route shares: the running orchestrator's parts and SilverLine's answer shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.control.permissions import allowed
from modrun.fleet import protocol as P
from modrun.fleet.groups import artifact_of_group
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.state import Module, Runtime

if TYPE_CHECKING:
    from modrun.control.auth import Principal
    from modrun.control.plane import ControlPlane
    from modrun.orchestrator.head import Head


STATUS_FILTERS = {"all", *P.STATES}


def head_of(request: Request) -> Head:
    return request.app.state.orchestrator


def protocol_error(exc: P.ProtocolError) -> JSONResponse:
    return JSONResponse({"error": exc.desc, "kind": exc.kind, "data": exc.data}, status_code=exc.status)


def problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


MAX_PAGE = 1000
"""The most entries one list answer holds (``?count=`` is capped to it)."""


class BadPage(ValueError):
    pass


def page_of(request: Request) -> tuple[int, int]:
    """``?start=&count=`` (defaults 0 and MAX_PAGE; count capped to MAX_PAGE)."""
    try:
        start = int(request.query_params.get("start", "0"))
        count = int(request.query_params.get("count", str(MAX_PAGE)))
    except ValueError:
        raise BadPage("start and count are whole numbers") from None
    if start < 0 or count < 0:
        raise BadPage("start and count are 0 or more")
    return start, min(count, MAX_PAGE)


def listing(results: list[dict], request: Request | None = None) -> JSONResponse:
    """SilverLine's ``{count, start, results}``: one page of ``results`` (the
    first MAX_PAGE without a request), how many there are in ``X-Total-Count``."""
    try:
        start, count = page_of(request) if request is not None else (0, MAX_PAGE)
    except BadPage as exc:
        return problem(400, str(exc))
    return _page(start, len(results), results[start : start + count])


def fleet_page(
    request: Request, select: Callable[[Fleet], list[Any]], render: Callable[[Fleet, Any], dict]
) -> JSONResponse:
    """A page of what ``select`` picks from the fleet, only that page rendered,
    both in one snapshot of the fleet."""
    try:
        start, count = page_of(request)
    except BadPage as exc:
        return problem(400, str(exc))

    def collect(fleet: Fleet) -> tuple[int, list[dict]]:
        items = select(fleet)
        return len(items), [render(fleet, item) for item in items[start : start + count]]

    total, page = head_of(request).control.snapshot(collect)
    return _page(start, total, page)


TOTAL_HEADER = "x-total-count"
"""How many entries there are in all: a header, so the body keeps SilverLine's shape exactly."""


def _page(start: int, total: int, page: list[dict]) -> JSONResponse:
    return JSONResponse(
        {"count": len(page), "start": start, "results": page}, headers={TOTAL_HEADER: str(total)}
    )


def status_filter(request: Request, default: str) -> str | None:
    wanted = request.query_params.get("status", default)
    if wanted not in STATUS_FILTERS:
        raise P.InvalidArgument("status", wanted)
    return None if wanted == "all" else wanted


def lookup(items: list, query: str) -> Any:
    """SilverLine's lookup: full uuid (any state), then name, then uuid suffix (alive ones)."""
    for item in items:
        if item.uuid == query:
            return item
    alive = [i for i in items if i.status == P.ALIVE]
    for item in alive:
        if item.name == query:
            return item
    for item in alive:
        if item.uuid.endswith(query):
            return item
    return None


class Visibility:
    """What the caller of a fleet route may see: everything for an admin (and in
    an open fleet), else the modules of artifacts they may Read, with the values
    of a module's environment left out (``K=***``), and of a runtime only what
    is not the operator's (no address, platform or metadata)."""

    def __init__(self, principal: Principal | None, plane: ControlPlane, action: str = "read") -> None:
        self.readable: frozenset[str] = frozenset()
        self.everything = principal is None or (principal.user.admin and principal.key is None)
        if principal is not None and not self.everything:
            self.readable = frozenset(
                str(access.id)
                for access, _summary in plane.artifacts.all()
                if allowed(principal.user, principal.key, access, action)
            )

    @classmethod
    def of(cls, request: Request, action: str = "read") -> Visibility:
        """``action``: what the caller must be allowed on an artifact to see it
        (``invoke`` for the models a chat client may use)."""
        return cls(getattr(request.state, "principal", None), head_of(request).control_plane, action)

    def module(self, module: Module) -> bool:
        return self.everything or artifact_of_group(module.group) in self.readable

    def function(self, fn: dict, fleet: Fleet) -> bool:
        module = fleet.modules.get(fn.get("module") or "")
        return self.everything or (module is not None and self.module(module))

    def detail(self, module: Module) -> dict:
        shown = module.detail()
        if not self.everything:
            shown["args"] = _without_values(shown.get("args"))
        return shown

    def placed(self, fleet: Fleet) -> dict[str, list[Module]]:
        """The modules the caller may see, by the runtime they are on (one pass
        over the fleet, however many runtimes are shown)."""
        found: dict[str, list[Module]] = {}
        for m in fleet.modules.values():
            if m.parent and self.module(m):
                found.setdefault(m.parent, []).append(m)
        return found

    def runtime(self, fleet: Fleet, runtime: Runtime, placed: dict[str, list[Module]], full: bool) -> dict:
        """A runtime with the modules on it (``children``, ``queued``) the caller may see."""
        entry = runtime.detail() if full else runtime.short()
        modules = placed.get(runtime.uuid, [])
        entry["children"] = [m.short() for m in modules if m.status == P.ALIVE]
        entry["queued"] = [m.short() for m in modules if m.status == P.QUEUED]
        if full and not self.everything:
            entry["functions"] = [f for f in runtime.functions if self.function(f, fleet)]
            for private in OPERATORS_ONLY:
                entry.pop(private, None)
        return entry

    def calls(self) -> frozenset[str] | None:
        """Whose calls the caller may count (CallStats' ``only``): None for all."""
        return None if self.everything else self.readable


OPERATORS_ONLY = ("metadata", "platform")
"""Runtime fields only admins see: where the node is and what it runs on."""


def _without_values(args: Any) -> Any:
    if not isinstance(args, dict) or not isinstance(args.get("env"), list):
        return args
    return {**args, "env": [f"{str(item).partition('=')[0]}=***" for item in args["env"]]}
