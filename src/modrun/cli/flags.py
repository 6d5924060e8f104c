"""Go-style flags on top of click: ``-flag``, ``--flag``, ``--flag=value`` and
``--flag value`` are all accepted (the seeds promise this), as are
``--boolflag=true|false``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def normalize(argv: Sequence[str], long_options: Iterable[str], bool_options: Iterable[str]) -> list[str]:
    longs = set(long_options)
    bools = set(bool_options)
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            name = "-" + arg.split("=", 1)[0]
            if name in longs:
                arg = "-" + arg
        if arg.startswith("--") and "=" in arg:
            name, _, value = arg.partition("=")
            if name in bools:
                if value.lower() in TRUE:
                    arg = name
                elif value.lower() in FALSE:
                    continue
        out.append(arg)
    return out
