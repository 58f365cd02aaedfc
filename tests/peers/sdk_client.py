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
- `page SERVICE` (keygated --demo, no elicitation callback): call `service.delete
  {"service": SERVICE}` (APPROVAL_REQUIRED), then the same with every `confirm` the
  agent could make up, then try to approve it with the calling key and with
  `$KEYGATE_UNSCOPED_KEY` (no `gates:approve`); the person approves with their own key
  (`$KEYGATE_PERSON_KEY`, `POST /api/v1/approvals/{id}/approve`); then a retry with
  other arguments, the identical retry and a second identical retry. Reports each.
- `url SERVICE` (keygated --demo, a page gate, `--public-url`): an `elicitation_callback`
  that records URL elicitations, and, as the person opening the page, approves the
  approval its URL names with `$KEYGATE_PERSON_KEY` (the API of the gateway at
  `--url`), then accepts. `mode="legacy"` gets the page as the error -32042
  (`UrlElicitationRequiredError`), handled the same way before the identical retry;
  `mode="auto"` gets it as a URL elicitation the SDK hands the callback. Reports the
  elicitations, the approvals' statuses and the call's result.
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
from mcp import MCPError, UrlElicitationRequiredError
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from report import run_and_print

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
    base = args.url.removesuffix("/api/mcp")
    api = httpx2.AsyncClient(base_url=base, timeout=httpx2.Timeout(30.0))

    async def approve_with(key: str, approval_id: str) -> int:
        r = await api.post(
            f"/api/v1/approvals/{approval_id}/approve",
            headers={"Authorization": f"Bearer {key}"},
            json={"target": service},
        )
        return r.status_code

    async def open_page(url: str, elicitation_id: Any, message: str, via: str) -> None:
        # The person opens the page: the approval is the one the URL names.
        approval_id = url.rstrip("/").rsplit("/", 1)[-1]
        status = await approve_with(os.environ["KEYGATE_PERSON_KEY"], approval_id)
        asked.append(
            {"via": via, "url": url, "elicitation_id": elicitation_id, "message": message, "approved": status}
        )

    async def on_elicit(context: Any, params: Any) -> Any:
        if getattr(params, "mode", "form") == "url":
            await open_page(params.url, getattr(params, "elicitation_id", None), params.message, "callback")
            return types.ElicitResult(action="accept")
        asked.append({"message": params.message, "schema": getattr(params, "requested_schema", None)})
        if answer.startswith("accept="):
            return types.ElicitResult(action="accept", content={"target": answer.removeprefix("accept=")})
        return types.ElicitResult(action=answer or "decline")

    def gate(result: Any) -> dict[str, Any]:
        structured = result.structured_content or {}
        return {
            "is_error": bool(result.is_error),
            "code": structured.get("code"),
            "approval_id": structured.get("approval_id"),
            "approval_url": structured.get("approval_url"),
            "text": text_of(result),
        }

    callback = on_elicit if args.scenario in ("approve", "url") else None
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
            elif args.scenario == "page":
                target = {"service": service}
                first = gate(await client.call_tool("service.delete", target))
                out["first"] = first
                approval_id = first["approval_id"] or ""
                made_up = [
                    {"challenge": approval_id, "target": service},
                    {"challenge": "0" * 32, "target": service},
                    {"challenge": first["approval_url"] or "", "target": service},
                    {"approval_id": approval_id, "approved": True},
                ]
                out["made_up"] = [
                    gate(await client.call_tool("service.delete", {**target, "confirm": c})) for c in made_up
                ]
                out["approve_by_caller"] = await approve_with(key, approval_id)
                out["approve_unscoped"] = await approve_with(os.environ["KEYGATE_UNSCOPED_KEY"], approval_id)
                out["listed_before"] = f'"name":"{service}"' in text_of(
                    await client.call_tool("service.list", {})
                ).replace(" ", "")
                out["approve_by_person"] = await approve_with(os.environ["KEYGATE_PERSON_KEY"], approval_id)
                out["other_arguments"] = gate(
                    await client.call_tool("service.delete", {**target, "project": "shop"})
                )
                out["retry"] = gate(await client.call_tool("service.delete", target))
                out["second_retry"] = gate(await client.call_tool("service.delete", target))
                listed = await client.call_tool("service.list", {})
                out["still_listed"] = f'"name":"{service}"' in text_of(listed).replace(" ", "")
            elif args.scenario == "url":
                target = {"service": service}
                try:
                    result = await client.call_tool("service.delete", target)
                except MCPError as e:
                    if e.code != types.URL_ELICITATION_REQUIRED:
                        raise
                    out["error"] = {"code": e.code, "message": e.message}
                    for el in UrlElicitationRequiredError.from_error(e.error).elicitations:
                        await open_page(el.url, el.elicitation_id, el.message, "error")
                    result = await client.call_tool("service.delete", target)
                out["result"] = gate(result)
                out["asked"] = asked
                listed = await client.call_tool("service.list", {})
                out["still_listed"] = f'"name":"{service}"' in text_of(listed).replace(" ", "")
            elif args.scenario == "big":
                result = await client.call_tool("payload_size", {"data": "x" * int(args.arg)})
                out["is_error"] = bool(result.is_error)
                out["text"] = text_of(result)
    await api.aclose()
    out.update(seen)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["legacy", "auto"], required=True)
    parser.add_argument("scenario", choices=["negotiate", "silent", "notify", "big", "approve", "page", "url"])
    parser.add_argument("arg", nargs="?", default="0")
    args = parser.parse_args()
    run_and_print(run, args)


if __name__ == "__main__":
    main()
