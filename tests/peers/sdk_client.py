"""A client on the official MCP Python SDK (`mcp` 2.3) for keygate's end-to-end tests.

    python sdk_client.py --url URL --mode legacy|auto SCENARIO [ARG]

The key comes from `$KEYGATE_PEER_KEY` (sent as `Authorization: Bearer …`). Prints one
JSON object on stdout; exits non-zero (with the error on stderr) when the scenario fails.
Every object carries what the HTTP layer saw: `requests` (method + whether it carried
`Last-Event-ID`) and `session_id` (the last `Mcp-Session-Id` the server gave).

Scenarios:
- `negotiate`: connect; report the protocol version, then disconnect (legacy: DELETE).
- `silent SECONDS`: call `slow_answer` (silent for SECONDS) and report its text.
- `notify SECONDS`: call `notify_later` (answers at once; SECONDS later the server sends
  `notifications/resources/updated` on the GET stream) and wait for that notification.
- `big BYTES`: call `payload_size` with a string of BYTES characters; report the length.
- `approve SERVICE:ANSWER` (keygated --demo): call `service.delete {"service": SERVICE}`
  with an `elicitation_callback` that records each form's message and schema and answers
  `decline`, `cancel` or `accept` with ANSWER typed as the target (`accept=NAME`); report
  the messages, the call's result, and whether SERVICE is still listed after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

warnings.simplefilter("ignore")  # the SDK warns about 2025-era features


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    seen: dict[str, Any] = {"requests": [], "session_id": None}

    async def on_request(request: httpx2.Request) -> None:
        seen["requests"].append({"method": request.method, "last_event_id": "last-event-id" in request.headers})

    async def on_response(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            seen["session_id"] = response.headers["mcp-session-id"]

    notified = anyio.Event()
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            notified.set()

    key = os.environ["KEYGATE_PEER_KEY"]
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(30.0, read=60.0),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    asked: list[dict[str, Any]] = []
    service, _, answer = (args.arg or "").partition(":")

    async def on_elicit(context: Any, params: Any) -> Any:
        asked.append({"message": params.message, "schema": getattr(params, "requested_schema", None)})
        if answer.startswith("accept="):
            return types.ElicitResult(action="accept", content={"target": answer.removeprefix("accept=")})
        return types.ElicitResult(action=answer or "decline")

    callback = on_elicit if args.scenario == "approve" else None
    out: dict[str, Any] = {}
    async with http:
        transport = streamable_http_client(args.url, http_client=http)
        async with Client(
            transport, mode=args.mode, message_handler=on_message, cache=None, elicitation_callback=callback
        ) as client:
            out["protocol_version"] = client.protocol_version
            if args.scenario == "silent":
                result = await client.call_tool("slow_answer", {"seconds": float(args.arg)})
                out["is_error"] = bool(result.is_error)
                out["text"] = text_of(result)
            elif args.scenario == "notify":
                uri = "test://watched-resource"
                result = await client.call_tool("notify_later", {"seconds": float(args.arg), "uri": uri})
                out["is_error"] = bool(result.is_error)
                with anyio.move_on_after(float(args.arg) + 15):
                    await notified.wait()
                out["updates"] = updates
            elif args.scenario == "approve":
                result = await client.call_tool("service.delete", {"service": service})
                out["is_error"] = bool(result.is_error)
                out["text"] = text_of(result)
                out["structured"] = result.structured_content
                out["asked"] = asked
                listed = await client.call_tool("service.list", {})
                out["still_listed"] = f'"name":"{service}"' in text_of(listed).replace(" ", "")
            elif args.scenario == "big":
                result = await client.call_tool("payload_size", {"data": "x" * int(args.arg)})
                out["is_error"] = bool(result.is_error)
                out["text"] = text_of(result)
    out.update(seen)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["legacy", "auto"], required=True)
    parser.add_argument("scenario", choices=["negotiate", "silent", "notify", "big", "approve"])
    parser.add_argument("arg", nargs="?", default="0")
    args = parser.parse_args()
    try:
        out = anyio.run(run, args)
    except BaseException as exc:  # report the whole chain (task groups wrap errors)
        print(f"{args.scenario} failed: {exc!r}", file=sys.stderr)
        for sub in getattr(exc, "exceptions", []):
            print(f"  {sub!r}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
