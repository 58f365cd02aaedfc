"""A small stdio MCP server (plain JSON-RPC, no SDK) for keygate's stdio-upstream tests:
the misbehaviours a real server may show, on demand.

    python stdio_faulty.py

Speaks newline-delimited JSON-RPC on stdin/stdout (2025-11-25: `initialize`, `tools/list`,
`tools/call`, `ping`); exits at the end of stdin. Tools:
- `echo {"message": S}`: answers S.
- `env`: answers its whole environment as a JSON object.
- `crash`: exits with status 3 in the middle of the call (no answer).
- `flood {"mb": N}`: writes N MiB of non-JSON text to stdout (lines of 1 KiB, then one
  line of N MiB without a break until its end), then answers `flooded`.
- `pid`: answers its process id.
"""

from __future__ import annotations

import json
import os
import sys

TOOLS = [
    {"name": n, "description": d, "inputSchema": {"type": "object"}}
    for n, d in [
        ("echo", "Answers its message"),
        ("env", "Answers the environment"),
        ("crash", "Exits mid-call"),
        ("flood", "Floods stdout with non-JSON"),
        ("pid", "Answers its process id"),
    ]
]

out = sys.stdout.buffer


def send(message: dict) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def text(value: str) -> dict:
    return {"content": [{"type": "text", "text": value}]}


def call(name: str, arguments: dict) -> dict:
    if name == "echo":
        return text(str(arguments.get("message", "")))
    if name == "env":
        return text(json.dumps(dict(os.environ)))
    if name == "pid":
        return text(str(os.getpid()))
    if name == "crash":
        sys.stderr.write("crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)
    if name == "flood":
        mb = int(arguments.get("mb", 1))
        line = b"this is not JSON " * 60 + b"\n"
        for _ in range(mb * 1024):
            out.write(line)
        chunk = b"x" * (1024 * 1024)
        for _ in range(mb):
            out.write(chunk)
        out.write(b"\n")
        out.flush()
        return text("flooded")
    raise KeyError(name)


def main() -> None:
    for raw in sys.stdin.buffer:
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        method, id_ = message.get("method"), message.get("id")
        if id_ is None:
            continue  # a notification or an answer
        params = message.get("params") or {}
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "stdio-faulty", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "ping":
            result = {}
        elif method == "tools/call":
            try:
                result = call(params.get("name"), params.get("arguments") or {})
            except KeyError:
                send({"jsonrpc": "2.0", "id": id_, "error": {"code": -32602, "message": "unknown tool"}})
                continue
        else:
            send({"jsonrpc": "2.0", "id": id_, "error": {"code": -32601, "message": "Method not found"}})
            continue
        send({"jsonrpc": "2.0", "id": id_, "result": result})


if __name__ == "__main__":
    main()
