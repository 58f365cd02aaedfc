"""What the SDK client scripts share: run a scenario and print its result as one JSON
line, or its whole error chain (task groups wrap errors) on stderr with exit code 1."""

import json
import sys
from typing import Any, Awaitable, Callable

import anyio


def run_and_print(run: Callable[[Any], Awaitable[Any]], args: Any) -> None:
    try:
        out = anyio.run(run, args)
    except BaseException as exc:
        print(f"{args.scenario} failed: {exc!r}", file=sys.stderr)
        for sub in getattr(exc, "exceptions", []):
            print(f"  {sub!r}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out), flush=True)
