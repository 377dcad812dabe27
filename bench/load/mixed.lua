-- wrk script for bench/load.sh: authorized requests against Coffer.
-- Environment: COFFER_TOKEN (bearer token), LOAD_MODE ("read": metadata
-- reads only; "mixed": 80% metadata reads, 10% downloads, 10% uploads of
-- 4 KiB to per-connection artifacts), LOAD_PATH (artifact to read).
local token = os.getenv("COFFER_TOKEN")
local mode = os.getenv("LOAD_MODE") or "read"
local path = os.getenv("LOAD_PATH") or "bench/dev/small"
local body = string.rep("c", 4096)
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
    thread:set("id", thread_id)
    thread_id = thread_id + 1
    table.insert(threads, thread)
end

function init(args)
    wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
    counter = counter + 1
    if mode == "read" then
        return wrk.format("GET", "/v1/artifacts/" .. path)
    end
    local r = counter % 10
    if r == 0 then
        return wrk.format("PUT", "/v1/objects/bench/dev/load-" .. id .. "-" .. (counter % 50),
            {["Content-Type"] = "application/octet-stream",
             ["Authorization"] = "Bearer " .. token}, body)
    elseif r == 5 then
        return wrk.format("GET", "/v1/objects/" .. path)
    end
    return wrk.format("GET", "/v1/artifacts/" .. path)
end

local statuses = {}
function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("LOAD requests=%d connect_errors=%d read_errors=%d write_errors=%d " ..
        "status_errors=%d timeouts=%d p99_ms=%.1f\n", summary.requests, e.connect, e.read,
        e.write, e.status, e.timeout, latency:percentile(99) / 1000))
end
