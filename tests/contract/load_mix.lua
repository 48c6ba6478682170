-- wrk script of the contract suite's load test (tests/contract/test_load.py).
--
--   wrk -t2 -c64 -d30s --timeout 10s -s load_mix.lua http://127.0.0.1:PORT -- PREFIX [close|keep] [TOKEN]
--
-- With "close", every request says "Connection: close" and gets a connection of its own
-- (test_instances.py: a load balancer may close a kept-alive client connection when an
-- instance dies, and wrk would count the request it sends next on it as a read error).
--
-- Each request is one of four kinds, in a fixed mix:
--   create  POST  /api/items            name PREFIX-t<thread>-<n>, unique per thread and counter
--   list    GET   /api/items?limit=20&offset=<random within what this thread created>
--   read    GET   /api/items/<id>       an id this thread saw created (its 201 arrived)
--   patch   PATCH /api/items/<id>       same ids: quantity and description change
-- Reads and patches only use ids whose 201 this thread has received, so the item is
-- committed and every request of the mix should succeed: create 201, the others 200.
-- A 404 there is a lost (or not yet visible) write, not a race of the script.
--
-- wrk gives response() no handle on the request it answers, and a thread runs many
-- connections at once. So every request carries X-Request-ID "<kind>-<thread>-<seq>",
-- which the contract says the server echoes, and response() reads the kind back
-- from it. Creates still unanswered when wrk stops are listed (by name) in the
-- report: the server may or may not have committed them, and the test finds out.
-- wrk also calls request() once on the first thread's state to check the script, and
-- never sends that request: when it is a create (thread 1's first, "PREFIX-t1-1"), it
-- is listed as unanswered too, and the test's re-post settles it like the others.
--
-- done() prints one line, "LOAD_JSON {...}", that the test parses:
--   summary   wrk's own counts (requests, duration_us, errors: connect read write timeout status)
--   latency   p50_us p99_us max_us
--   sent      {kind: n}                 requests written, per kind
--   statuses  {kind: {status: n}}       responses, per kind and status ("unknown" kind:
--                                       the response had no X-Request-ID of this thread)
--   pending   [name, ...]               creates not answered (see above)
--   created   [name, ...]               creates answered 201
--   refused   [name, ...]               creates answered with another status
--   samples   {kind-status: "..."}      the first body of every unexpected kind/status

local KINDS = { "create", "list", "read", "patch" }
local EXPECTED = { create = 201, list = 200, read = 200, patch = 200 }

local prefix = "load"
local close = false -- "Connection: close" on every request
local token = nil -- with needs_auth: "Authorization: Bearer TOKEN" on every request
local me = 0 -- this thread's number, 1..threads
local seq = 0
local created = 0 -- creates sent by this thread (the name counter)
local ids = {} -- ids this thread saw created
-- Globals, so that done() can read them from each thread with thread:get(). Flat
-- tables only: wrk's copy of a table between Lua states breaks on nested tables.
sent = {} -- kind -> n
statuses = {} -- "kind status" -> n
pending = {} -- request id -> name, for creates not answered yet
samples = {} -- "kind-status" -> the first body
created_names = {} -- names whose create was answered 201
refused_names = {} -- names whose create was answered with another status

-- setup() runs in wrk's main Lua state, once per thread, before the threads start.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prefix = args[1] or prefix
  close = args[2] == "close"
  if args[3] and args[3] ~= "" then
    token = args[3]
  end
  me = tonumber(tid) or 0 -- the global thread:set() gave this thread
  math.randomseed(me * 7919 + os.time())
  for _, kind in ipairs(KINDS) do
    sent[kind] = 0
  end
end

local function headers_for(rid)
  local headers = { ["X-Request-ID"] = rid }
  if close then
    headers["Connection"] = "close"
  end
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end

local function json_headers(rid)
  local headers = headers_for(rid)
  headers["Content-Type"] = "application/json"
  return headers
end

function request()
  seq = seq + 1
  local kind
  local r = math.random()
  if #ids == 0 then
    kind = (r < 0.5) and "create" or "list"
  elseif r < 0.35 then
    kind = "create"
  elseif r < 0.6 then
    kind = "list"
  elseif r < 0.85 then
    kind = "read"
  else
    kind = "patch"
  end
  local rid = string.format("%s-%d-%d", kind, me, seq)
  sent[kind] = (sent[kind] or 0) + 1
  if kind == "create" then
    created = created + 1
    local name = string.format("%s-t%d-%d", prefix, me, created)
    pending[rid] = name
    local body = string.format('{"name": "%s", "quantity": %d, "description": "load test"}',
      name, created % 1000)
    return wrk.format("POST", "/api/items", json_headers(rid), body)
  elseif kind == "list" then
    -- Pages anywhere in the table: every thread creates at about the same rate.
    local offset = math.random(0, created * #KINDS)
    local path = string.format("/api/items?limit=20&offset=%d", offset)
    return wrk.format("GET", path, headers_for(rid))
  end
  local id = ids[math.random(#ids)]
  local path = string.format("/api/items/%d", id)
  if kind == "read" then
    return wrk.format("GET", path, headers_for(rid))
  end
  local body = string.format('{"quantity": %d, "description": "patched %d"}', seq % 1000, seq)
  return wrk.format("PATCH", path, json_headers(rid), body)
end

local function header(headers, name)
  for key, value in pairs(headers) do
    if string.lower(key) == name then
      return value
    end
  end
  return nil
end

function response(status, headers, body)
  local rid = header(headers, "x-request-id") or ""
  local kind = string.match(rid, "^(%a+)%-" .. me .. "%-%d+$")
  if kind == nil or EXPECTED[kind] == nil then
    kind = "unknown"
  end
  local key = tostring(status)
  statuses[kind .. " " .. key] = (statuses[kind .. " " .. key] or 0) + 1
  if kind == "create" then
    local name = pending[rid]
    pending[rid] = nil
    if status == 201 then
      table.insert(created_names, name)
      local id = tonumber(string.match(header(headers, "location") or "", "/api/items/(%d+)$"))
      if id ~= nil then
        table.insert(ids, id)
      else
        -- A 201 without a usable Location: report it like an unexpected status.
        samples["create-201-location"] = samples["create-201-location"]
          or ("Location: " .. tostring(header(headers, "location")))
      end
    else
      table.insert(refused_names, name)
    end
  end
  if status ~= EXPECTED[kind] then
    local sample = kind .. "-" .. key
    if samples[sample] == nil then
      samples[sample] = string.format("X-Request-ID %s: %s", rid, string.sub(body or "", 1, 500))
    end
  end
end

-- JSON encoding of the report: numbers, strings, tables with string keys, and arrays
-- (tables marked by array()).
local ARRAY = {}
local function array(list)
  return setmetatable(list, ARRAY)
end

local function encode(value)
  local t = type(value)
  if t == "number" then
    return string.format("%d", value)
  elseif t == "string" then
    local escaped = string.gsub(value, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
    end)
    return '"' .. escaped .. '"'
  elseif t == "table" and getmetatable(value) == ARRAY then
    local parts = {}
    for _, v in ipairs(value) do
      table.insert(parts, encode(v))
    end
    return "[" .. table.concat(parts, ", ") .. "]"
  elseif t == "table" then
    local keys = {}
    for k in pairs(value) do
      table.insert(keys, tostring(k))
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      table.insert(parts, encode(k) .. ": " .. encode(value[k]))
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return "null"
end

function done(summary, latency, requests)
  local report = {
    summary = {
      requests = summary.requests,
      duration_us = summary.duration,
      errors = {
        connect = summary.errors.connect,
        read = summary.errors.read,
        write = summary.errors.write,
        timeout = summary.errors.timeout,
        status = summary.errors.status,
      },
    },
    latency = {
      p50_us = latency:percentile(50),
      p99_us = latency:percentile(99),
      max_us = latency.max,
    },
    threads = #threads,
    sent = {},
    statuses = {},
    pending = array({}),
    created = array({}),
    refused = array({}),
    samples = {},
  }
  for _, thread in ipairs(threads) do
    for kind, n in pairs(thread:get("sent") or {}) do
      report.sent[kind] = (report.sent[kind] or 0) + n
    end
    for key, n in pairs(thread:get("statuses") or {}) do
      local kind, status = string.match(key, "^(%a+) (%d+)$")
      report.statuses[kind] = report.statuses[kind] or {}
      report.statuses[kind][status] = (report.statuses[kind][status] or 0) + n
    end
    for _, name in pairs(thread:get("pending") or {}) do
      table.insert(report.pending, name)
    end
    for _, name in ipairs(thread:get("created_names") or {}) do
      table.insert(report.created, name)
    end
    for _, name in ipairs(thread:get("refused_names") or {}) do
      table.insert(report.refused, name)
    end
    for key, text in pairs(thread:get("samples") or {}) do
      report.samples[key] = report.samples[key] or text
    end
  end
  table.sort(report.pending)
  table.sort(report.created)
  table.sort(report.refused)
  io.write("LOAD_JSON " .. encode(report) .. "\n")
end
