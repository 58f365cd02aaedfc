"""A client on the official MCP Python SDK (`mcp` 2.3) for keygate's stdio-upstream tests.

    python stdio_client.py --url URL --mode legacy|auto SCENARIO [ARG...]
    python stdio_client.py --stdio 'COMMAND ARG...' --mode legacy SCENARIO [ARG...]

With `--url`, the key comes from `$KEYGATE_PEER_KEY` (sent as `Authorization: Bearer …`);
with `--stdio`, the server is spawned directly (the baseline). Prints one JSON object on
stdout; exits non-zero (the error on stderr) when the client itself fails. A tool call that
fails with a JSON-RPC error is reported as `{"error": {"code": …, "message": …}}`.

Scenarios (tool names are ARG's, so the same script drives one upstream or several):
- `list`: the tool, prompt and resource-template names (`tools`, `prompts`, `templates`).
- `call TOOL [JSON]`: one call with JSON arguments; `is_error` and `text`, or `error`.
- `progress TOOL`: call TOOL with `{"duration": 1, "steps": 3}` and a progress callback;
  `progress` holds each (progress, total) seen, `text` the result.
- `sample TOOL`: call TOOL with `{"prompt": "ping"}`; the sampling callback answers
  `pong from the client`; `text` is the result, `sampled` the prompts it saw.
- `elicit TOOL`: call TOOL with `{}`; the elicitation callback accepts with
  `{"name": "Ada"}`; `text` is the result, `elicited` the messages it saw.
- `repeat TOOL N`: N calls of TOOL with `{"message": "x"}` in one connection; prints
  `ms_per_call` (for the benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from report import run_and_print

warnings.simplefilter("ignore")  # the SDK warns about 2025-era features


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sampled: list[str] = []
    elicited: list[str] = []

    async def on_sample(context: Any, params: Any) -> Any:
        sampled.append("".join(getattr(m.content, "text", "") for m in params.messages))
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="pong from the client"), model="test"
        )

    async def on_elicit(context: Any, params: Any) -> Any:
        elicited.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    if args.stdio:
        words = shlex.split(args.stdio)
        target: Any = StdioServerParameters(command=words[0], args=words[1:], env={})
        http = None
    else:
        key = os.environ["KEYGATE_PEER_KEY"]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30.0, read=60.0))
        target = streamable_http_client(args.url, http_client=http)
    rest = args.args
    async with Client(
        target,
        mode=args.mode,
        cache=None,
        sampling_callback=on_sample,
        elicitation_callback=on_elicit,
    ) as client:
        out["protocol_version"] = client.protocol_version
        try:
            if args.scenario == "list":
                out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
                try:
                    out["prompts"] = sorted(p.name for p in (await client.list_prompts()).prompts)
                    templates = (await client.list_resource_templates()).resource_templates
                    out["templates"] = sorted(t.name for t in templates)
                except MCPError as e:
                    out["lists_error"] = {"code": e.code, "message": str(e)}
            elif args.scenario == "call":
                arguments = json.loads(rest[1]) if len(rest) > 1 else {}
                result = await client.call_tool(rest[0], arguments)
                out["is_error"] = bool(result.is_error)
                out["text"] = text_of(result)
            elif args.scenario == "progress":
                seen: list[list[float | None]] = []

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    seen.append([progress, total])

                result = await client.call_tool(rest[0], {"duration": 1, "steps": 3}, progress_callback=on_progress)
                out["progress"] = seen
                out["text"] = text_of(result)
            elif args.scenario == "sample":
                result = await client.call_tool(rest[0], {"prompt": "ping"})
                out["text"] = text_of(result)
                out["sampled"] = sampled
            elif args.scenario == "elicit":
                result = await client.call_tool(rest[0], {})
                out["text"] = text_of(result)
                out["elicited"] = elicited
            elif args.scenario == "repeat":
                n = int(rest[1])
                await client.call_tool(rest[0], {"message": "warm"})
                start = time.perf_counter()
                for _ in range(n):
                    result = await client.call_tool(rest[0], {"message": "x"})
                    assert not result.is_error, text_of(result)
                out["calls"] = n
                out["ms_per_call"] = (time.perf_counter() - start) * 1000 / n
        except MCPError as e:
            out["error"] = {"code": e.code, "message": str(e)}
    if http is not None:
        await http.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--stdio")
    parser.add_argument("--mode", choices=["legacy", "auto"], required=True)
    parser.add_argument("scenario", choices=["list", "call", "progress", "sample", "elicit", "repeat"])
    parser.add_argument("args", nargs="*")
    args = parser.parse_args()
    if not (args.url or args.stdio):
        parser.error("give --url or --stdio")
    run_and_print(run, args)


if __name__ == "__main__":
    main()
