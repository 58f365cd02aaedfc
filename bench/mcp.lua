-- wrk script for bench/load.sh: POST one JSON-RPC tools/call of a cheap read tool
-- (service.list) to an MCP endpoint, with the Authorization header when KG_KEY is set.
--
-- Environment:
--   KG_KEY       the key to send as "Authorization: Bearer KG_KEY" (unset: no header)
--   KG_BODY      the request body (default: a tools/call of service.list)
--   KG_DELAY_MS  when set, each connection waits this many milliseconds between
--                requests: connections * 1000 / KG_DELAY_MS approximates a fixed rate
--                (the fallback when oha is not installed)
--
-- At the end it prints one machine-readable line:
--   RESULT requests=N rps=R p50_us=A p99_us=B max_us=M errors=E non2xx=S

wrk.method = "POST"
wrk.body = os.getenv("KG_BODY")
  or '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
local key = os.getenv("KG_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

local delay_ms = tonumber(os.getenv("KG_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50),
    latency:percentile(99),
    latency.max,
    e.connect + e.read + e.write + e.timeout,
    e.status))
end
