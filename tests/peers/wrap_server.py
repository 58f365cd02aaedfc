"""A tiny stdio MCP server (plain JSON-RPC, no SDK) with a ZCP-like service set, for the
`keygate wrap` tests (tests/e2e/wrap.rs, with tests/peers/wrap-policy.toml).

    python wrap_server.py

Speaks newline-delimited JSON-RPC on stdin/stdout (2025-11-25: `initialize`, `ping`,
`tools/list`, `tools/call`); exits 0 at the end of stdin. Services start as `api`, `web`
and `keygate`. Tools:
- `service.list`: the service names, comma-separated.
- `service.delete {"service": S}`: deletes S (gated by the policy).
- `service.restart {"service": S}`: answers `restarted S` (never gated).
- `service.status {"service": S}`: `structuredContent` `{"state", "has_failure_history"}`;
  only `web` has failed deploys. `service.events {"service": S}`: its events.
- `service.replace {"service": S}`: answers `replaced S` (gated with evidence).
- `debug.shell`: answers `shell!` (not in the policy: hidden and refused).
- `pid`: its process id. `env`: its environment variable names, comma-separated.
- `exit {"code": N}`: exits with status N in the middle of the call.
- `changed`: answers `changed`, then sends `notifications/tools/list_changed`.
"""

from __future__ import annotations

import json
import os
import sys

SERVICES = ["api", "web", "keygate"]
TOOLS = [
    {"name": n, "description": d, "inputSchema": {"type": "object", "properties": p}}
    for n, d, p in [
        ("service.list", "List services", {}),
        ("service.delete", "Delete a service", {"service": {"type": "string"}}),
        ("service.restart", "Restart a service", {"service": {"type": "string"}}),
        ("service.status", "Show a service's state", {"service": {"type": "string"}}),
        ("service.events", "Read a service's events", {"service": {"type": "string"}}),
        ("service.replace", "Replace a service", {"service": {"type": "string"}}),
        ("debug.shell", "Open a shell", {}),
        ("pid", "Answers its process id", {}),
        ("env", "Answers its environment variable names", {}),
        ("exit", "Exits mid-call", {"code": {"type": "integer"}}),
        ("changed", "Says its tool list changed", {}),
    ]
]


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def text(value: str, error: bool = False) -> dict:
    return {"content": [{"type": "text", "text": value}], "isError": error}


def call(name: str, args: dict) -> dict:
    service = str(args.get("service", ""))
    if name == "service.list":
        return text(",".join(SERVICES))
    if name == "service.delete":
        if service not in SERVICES:
            return text(f"no service {service}", True)
        SERVICES.remove(service)
        return text(f"deleted {service}")
    if name == "service.restart":
        return text(f"restarted {service}")
    if name == "service.status":
        failed = service == "web"
        status = {"state": "FAILED" if failed else "ACTIVE", "has_failure_history": failed}
        return {**text(json.dumps(status)), "structuredContent": status}
    if name == "service.events":
        return text(f"events of {service}: deploy failed" if service == "web" else f"events of {service}")
    if name == "service.replace":
        return text(f"replaced {service}")
    if name == "debug.shell":
        return text("shell!")
    if name == "pid":
        return text(str(os.getpid()))
    if name == "env":
        return text(",".join(sorted(os.environ)))
    if name == "changed":
        return text("changed")
    if name == "exit":
        sys.stderr.write("exiting on request\n")
        sys.stderr.flush()
        os._exit(int(args.get("code", 0)))
    return text(f"unknown tool {name}", True)


def answer(message: dict) -> dict | None:
    method, mid = message.get("method"), message.get("id")
    if mid is None:
        return None
    params = message.get("params") or {}
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "wrap-server", "version": "1.0.0"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        result = call(params.get("name", ""), params.get("arguments") or {})
    else:
        return {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": f"Method not found: {method}"}}
    return {"jsonrpc": "2.0", "id": mid, "result": result}


for line in sys.stdin:
    if not line.strip():
        continue
    message = json.loads(line)
    reply = answer(message)
    if reply is not None:
        send(reply)
    if message.get("method") == "tools/call" and (message.get("params") or {}).get("name") == "changed":
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
