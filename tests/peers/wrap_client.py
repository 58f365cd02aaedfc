"""A client on the official MCP Python SDK (`mcp` 2.3) for the `keygate wrap` tests: it
spawns `keygate wrap … -- python wrap_server.py` with the SDK's stdio client, as an agent
does from an `.mcp.json` entry.

    python wrap_client.py [--answers A,A,...] [--no-elicitation] SCENARIO -- COMMAND ARG...

The child gets this process's PATH and HOME, plus `WRAP_E2E_PASSED=1` and
`KEYGATE_E2E_SECRET=1` (keygate wrap must pass on the first and keep the second).
`--answers`: what the elicitation callback answers, one per request it sees: `decline`,
`cancel` or `accept:NAME` (the target name typed); without `--no-elicitation` the client
declares elicitation. Prints one JSON object on stdout; exits non-zero (the error on
stderr) when the client itself fails. A call refused with a JSON-RPC error is reported as
`{"error": {"code": …, "message": …}}`.

Scenarios:
- `conversation`: in one session: `tools` (the names listed), `refused` (`debug.shell`),
  `protected` (delete `keygate`), `deletes` (delete `api` once per answer, each with its
  outcome and the services left after it), `restart` (`service.restart web`), `env`
  (the child's variable names), `elicited` (the messages the callback saw).
- `call TOOL [JSON]`: one call; `is_error`, `text`, `code` (structuredContent's), or `error`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

warnings.simplefilter("ignore")  # the SDK warns about 2025-era features


def outcome(result: Any) -> dict[str, Any]:
    structured = result.structured_content or {}
    return {
        "is_error": bool(result.is_error),
        "text": "".join(getattr(c, "text", "") for c in result.content),
        "code": structured.get("code"),
    }


async def call(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        return outcome(await client.call_tool(name, arguments))
    except MCPError as e:
        return {"error": {"code": e.code, "message": str(e)}}


async def services(client: Client) -> str:
    return (await call(client, "service.list", {}))["text"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    answers = [a for a in args.answers.split(",") if a]
    elicited: list[str] = []

    async def on_elicit(context: Any, params: Any) -> Any:
        elicited.append(params.message)
        answer = answers.pop(0) if answers else "cancel"
        if answer.startswith("accept:"):
            return types.ElicitResult(action="accept", content={"target": answer[len("accept:"):]})
        return types.ElicitResult(action=answer)

    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    env.update({"WRAP_E2E_PASSED": "1", "KEYGATE_E2E_SECRET": "1"})
    target = StdioServerParameters(command=args.command[0], args=args.command[1:], env=env)
    callbacks: dict[str, Any] = {} if args.no_elicitation else {"elicitation_callback": on_elicit}
    out: dict[str, Any] = {}
    async with Client(target, mode="legacy", cache=None, **callbacks) as client:
        if args.scenario == "conversation":
            out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
            out["refused"] = await call(client, "debug.shell", {})
            out["protected"] = await call(client, "service.delete", {"service": "keygate"})
            deletes = []
            for _ in range(len(answers)):
                done = await call(client, "service.delete", {"service": "api"})
                done["services"] = await services(client)
                deletes.append(done)
            out["deletes"] = deletes
            out["restart"] = await call(client, "service.restart", {"service": "web"})
            out["env"] = (await call(client, "env", {}))["text"].split(",")
            out["elicited"] = elicited
        elif args.scenario == "call":
            arguments = json.loads(args.rest[1]) if len(args.rest) > 1 else {}
            out = await call(client, args.rest[0], arguments)
            out["services"] = await services(client)
            out["elicited"] = elicited
        else:
            raise SystemExit(f"unknown scenario {args.scenario}")
    return out


def main() -> None:
    argv = sys.argv[1:]
    if "--" not in argv:
        raise SystemExit("usage: wrap_client.py [options] SCENARIO [ARG...] -- COMMAND ARG...")
    at = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", default="")
    parser.add_argument("--no-elicitation", action="store_true")
    parser.add_argument("scenario")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args(argv[:at])
    args.command = argv[at + 1:]
    print(json.dumps(anyio.run(bounded, args)))


async def bounded(args: argparse.Namespace) -> dict[str, Any]:
    with anyio.fail_after(60):
        return await run(args)


if __name__ == "__main__":
    main()
