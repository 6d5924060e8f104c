"""Errors a modrun user can catch.

    ModrunError
     +-- ConfigError            bad flag, duration, size or manifest value
     +-- PluginLoadError        a plugin file could not be read, compiled or linked
     |    +-- SchemaError       its typed schema is malformed
     +-- FunctionNotFound       no loaded plugin exports that function
     +-- InvalidInput           the input does not match the function's signature
     +-- CallFailed             the function ran and failed
          +-- GuestError        it returned non-zero / set an Extism error
          +-- Trap              it trapped (unreachable, out-of-bounds, stack overflow...)
          +-- CallTimeout       it ran past the per-call timeout
          +-- MemoryLimitExceeded  it needed more linear memory than allowed
          +-- HostFunctionError a host function it called refused or failed
               +-- RequestRefused  an HTTP request no manifest connection allows

Every ``CallFailed`` carries the plugin and function names and the log lines
the call produced before it failed.
"""

from __future__ import annotations


class ModrunError(Exception):
    """Base class of every error modrun raises on purpose."""


class ConfigError(ModrunError):
    pass


class PluginLoadError(ModrunError):
    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin
        self.reason = message


class SchemaError(PluginLoadError):
    pass


class FunctionNotFound(ModrunError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no function named {name!r}")
        self.function = name


class InvalidInput(ModrunError):
    def __init__(self, function: str, message: str) -> None:
        super().__init__(f"{function}: {message}")
        self.function = function
        self.reason = message


class CallFailed(ModrunError):
    """The function ran and did not succeed."""

    #: HTTP status the REST API answers with for this kind of failure.
    http_status = 500

    def __init__(
        self, message: str, *, plugin: str = "", function: str = "", logs: list | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.plugin = plugin
        self.function = function
        self.logs = logs or []

    @property
    def kind(self) -> str:
        """The failure category clients see (REST ``kind``, GraphQL
        ``extensions.kind``, the ``kind`` label of the error metric)."""
        return type(self).__name__


class GuestError(CallFailed):
    http_status = 422


class Trap(CallFailed):
    pass


class CallTimeout(CallFailed):
    http_status = 504


class ClientGone(CallFailed):
    """The caller of a streaming call went away; the guest is stopped at its
    next host call (nginx's 499: the client closed the request)."""

    http_status = 499


class MemoryLimitExceeded(CallFailed):
    http_status = 507


class HostFunctionError(CallFailed):
    http_status = 502


class RequestRefused(HostFunctionError):
    """The URL is not allowed by any manifest http connection (never retried).
    Clients see it as a ``HostFunctionError``, like every refusal."""

    @property
    def kind(self) -> str:
        return "HostFunctionError"
