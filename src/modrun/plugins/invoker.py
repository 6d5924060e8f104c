"""Running functions: instance checkout, limits, logs, vars, metrics, dispatch.

Dispatch policy for async callers (the HTTP API): a call normally runs on a
worker thread, so a slow or runaway function never blocks the event loop. A
function whose recent calls each took under ``INLINE_MAX`` seconds of CPU and
that never touched an effectful host function runs *speculatively inline* on
the event loop, saving the thread hand-off (tens of microseconds), with a
deadline of ``INLINE_BUDGET``. If it runs past that budget, or reaches a host
function that may block, the attempt is abandoned - its instance dropped, its
logs and var writes discarded, nothing outside it changed - and the call is
re-run from scratch on a thread with the full timeout.

The decision counts the calling thread's CPU time, not wall time: under many
concurrent calls, threads wait for the GIL, and wall time would keep a fast
function off the inline path exactly when the thread hand-off hurts most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from modrun.errors import CallFailed, HostFunctionError
from modrun.metrics.node import NodeMetrics
from modrun.plugins.plugin import Function, Plugin
from modrun.plugins.streaming import StreamingCall, iterate
from modrun.wasm.engine import TICK, WasmEngine
from modrun.wasm.host import CallState, LogLine, MustRunOnThread, OutputSink
from modrun.wasm.instance import InlineBudgetExceeded

log = logging.getLogger(__name__)

INLINE_MAX = 0.0005
INLINE_STREAK = 4
INLINE_BUDGET = 2 * TICK
_STREAM_LEVELS = {"stdout": "info", "stderr": "error"}


@dataclass(slots=True)
class CallResult:
    output: bytes
    logs: list[LogLine]
    duration: float
    function: Function
    cpu: float = 0.0  # the calling thread's CPU seconds (the inline decision's evidence)


class _Dispatch:
    """Per-function evidence for the inline decision: ``INLINE_STREAK`` fast
    calls in a row make a function inline; it stays inline until two calls in
    a row are slow (one alone is usually a garbage-collection pause)."""

    __slots__ = ("effects", "inline", "slow", "streak")

    def __init__(self) -> None:
        self.streak = 0
        self.slow = 0
        self.inline = False
        self.effects = False

    def observe(self, seconds: float) -> None:
        if self.effects:
            return
        if seconds < INLINE_MAX:
            self.streak, self.slow = self.streak + 1, 0
            self.inline = self.inline or self.streak >= INLINE_STREAK
        else:
            self.streak, self.slow = 0, self.slow + 1
            self.inline = self.inline and self.slow < 2


def _logs(state: CallState) -> list[LogLine]:
    return state.all_logs(_STREAM_LEVELS)


class Invoker:
    def __init__(
        self,
        engine: WasmEngine,
        metrics: NodeMetrics | None = None,
        max_workers: int = 32,
        inline: bool = True,
        max_streams: int = 1024,
    ) -> None:
        self.engine = engine
        self.metrics = metrics or NodeMetrics()
        self.inline = inline
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="modrun-call")
        # a streaming call holds its thread while it waits on a model: a pool of its own
        self.max_streams = max_streams
        self._stream_executor: ThreadPoolExecutor | None = None
        self._dispatch: dict[tuple[int, str], _Dispatch] = {}
        self._on_threads = 0  # calls running on worker threads now (counted on the event loop)
        self._inline_ticks = engine.ticks(INLINE_BUDGET)
        # called after every call that logged or failed: (plugin, function, logs, error or None)
        self.observers: list[Callable[[str, str, list[LogLine], str | None], None]] = []

    def call(self, plugin: Plugin, function: Function, data: bytes) -> CallResult:
        """Run the function on the calling thread with the full timeout."""
        return self._run(plugin, function, data, False)

    async def acall(
        self, plugin: Plugin, function: Function, data: bytes, timeout: float | None = None
    ) -> CallResult:
        """Run the function; ``timeout`` (seconds) shortens the plugin's own limit,
        for calls that share one deadline (a GraphQL request's)."""
        key = (id(plugin), function.name)
        dispatch = self._dispatch.get(key)
        if dispatch is None:
            dispatch = self._dispatch[key] = _Dispatch()
        if self.inline and dispatch.inline:
            cpu_started = time.thread_time()
            try:
                result = self._run(plugin, function, data, True)
                dispatch.observe(result.cpu)
                return result
            except InlineBudgetExceeded:
                # past the budget in wall time; only if it was busy (not waiting
                # for the GIL in a host function) is it no longer fast
                spent = time.thread_time() - cpu_started
                dispatch.observe(spent)
                if spent >= INLINE_MAX:
                    dispatch.inline = False
            except MustRunOnThread:
                dispatch.effects, dispatch.inline = True, False
        loop = asyncio.get_running_loop()
        self._on_threads += 1
        try:
            result = await loop.run_in_executor(
                self._executor, self._run, plugin, function, data, False, timeout
            )
        finally:
            self._on_threads -= 1
        if result.cpu < INLINE_MAX or not self._on_threads:
            # threads fighting over the GIL spend CPU on it: a slow call among
            # others on threads is no evidence that the function is slow
            dispatch.observe(result.cpu)
        return result

    def stream(self, plugin: Plugin, function: Function, data: bytes) -> StreamingCall:
        """Start the function on a thread of its own, its output chunks read
        as they come (``StreamingCall``); call from the event loop."""
        call = StreamingCall(asyncio.get_running_loop())
        future = self._streams().submit(self._run, plugin, function, data, False, None, call.sink)
        call.watch(future)
        return call

    def stream_iter(self, plugin: Plugin, function: Function, data: bytes) -> Iterator[bytes]:
        """The function's output chunks as it emits them, for a caller on a plain
        thread (the Python API, ``modrun call --stream``)."""
        return iterate(self._streams(), lambda sink: self._run(plugin, function, data, False, None, sink))

    def _streams(self) -> ThreadPoolExecutor:
        if self._stream_executor is None:
            self._stream_executor = ThreadPoolExecutor(
                max_workers=self.max_streams, thread_name_prefix="modrun-stream"
            )
        return self._stream_executor

    def _run(
        self,
        plugin: Plugin,
        function: Function,
        data: bytes,
        speculative: bool,
        timeout: float | None = None,
        sink: OutputSink | None = None,
    ) -> CallResult:
        state = CallState(function.name, speculative)
        state.sink = sink
        ticks = self._inline_ticks if speculative else plugin.timeout_ticks
        seconds = plugin.timeout
        if timeout is not None and not speculative:
            ticks = max(1, min(ticks, self.engine.ticks(timeout)))
            seconds = min(seconds, timeout)
        state.deadline = time.monotonic() + seconds
        recorder = self.metrics.recorder(plugin.name, function.name)
        instance = plugin.pool.acquire()
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            output = instance.call(function.name, data, state, ticks)
            if state.var_writes is not None:
                try:
                    plugin.vars.commit(state.var_writes)
                except ValueError as exc:
                    raise HostFunctionError(str(exc)) from None
        except (InlineBudgetExceeded, MustRunOnThread):
            raise
        except CallFailed as exc:
            elapsed = time.perf_counter() - started
            exc.plugin, exc.function, exc.logs = plugin.name, function.name, _logs(state)
            recorder.record(elapsed, exc.kind)
            self._observe(plugin.name, function.name, exc.logs, str(exc))
            raise
        except Exception as exc:  # a bug on our side: report it, keep serving
            log.exception("internal error calling %s.%s", plugin.name, function.name)
            instance.broken = True
            err = CallFailed(
                f"internal error: {exc}", plugin=plugin.name, function=function.name, logs=_logs(state)
            )
            recorder.record(time.perf_counter() - started, "internal")
            raise err from exc
        finally:
            plugin.pool.release(instance)
            if state.model_streams:
                state.close_model_streams()
        if state.chunks is not None:  # chunks nobody streamed lead the output
            output = bytes(state.chunks) + output
        elapsed = time.perf_counter() - started
        recorder.record(elapsed)
        logs = _logs(state) if state.logs is not None or state.streams is not None else []
        if logs:
            self._observe(plugin.name, function.name, logs, None)
        return CallResult(output, logs, elapsed, function, time.thread_time() - cpu_started)

    def _observe(self, plugin: str, function: str, logs: list[LogLine], error: str | None) -> None:
        for observer in self.observers:
            try:
                observer(plugin, function, logs, error)
            except Exception:  # an observer must never fail a call
                log.exception("call observer failed")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._stream_executor is not None:
            self._stream_executor.shutdown(wait=True, cancel_futures=True)
