-- keygate rate limits: both budgets of one request, checked atomically.
-- KEYS[1] = the key's bucket, KEYS[2] = the tenant's bucket.
-- ARGV = key interval (us), key burst, tenant interval (us), tenant burst.
-- Each bucket stores its theoretical arrival time (TAT, microseconds of Redis TIME).
-- Reply: { allowed (1/0), scope (0 key, 1 tenant), remaining, wait_us }
--   allowed: scope = the budget with fewer units left, wait_us = time until it is full;
--   rejected: scope = the budget with the longer wait, wait_us = that wait.
-- Nothing is written unless both budgets pass, so a rejection consumes nothing.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function measure(key, interval, burst)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local over = (new_tat - now) - burst * interval
  return new_tat, over
end

local ki, kb = tonumber(ARGV[1]), tonumber(ARGV[2])
local ti, tb = tonumber(ARGV[3]), tonumber(ARGV[4])
local k_tat, k_over = measure(KEYS[1], ki, kb)
local t_tat, t_over = measure(KEYS[2], ti, tb)

if k_over > 0 or t_over > 0 then
  if t_over > k_over then
    return { 0, 1, 0, t_over }
  end
  return { 0, 0, 0, k_over }
end

local function store(key, new_tat)
  local ttl_ms = math.ceil((new_tat - now) / 1000)
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', ttl_ms)
end
store(KEYS[1], k_tat)
store(KEYS[2], t_tat)

local k_left = math.floor(-k_over / ki)
local t_left = math.floor(-t_over / ti)
if t_left < k_left then
  return { 1, 1, t_left, t_tat - now }
end
return { 1, 0, k_left, k_tat - now }
