-- wrk script for P3a: POST /api/v1/results with batches of BATCH results (default 500).
-- Each thread pre-builds BODIES distinct bodies (assets b-<n>, heart rates varying) once in
-- init, then cycles through them, so the client spends no CPU building JSON while measuring.
-- No "id" (no idempotency) and no "time" (the server stamps it): every result is stored.
local batch = tonumber(os.getenv("BATCH") or "500")
local bodies_n = tonumber(os.getenv("BODIES") or "20")
local requests = {}
local next_i = 1
local thread_no = 0
local counter = 0

function setup(thread)
    thread_no = thread_no + 1
    thread:set("tid", thread_no)
end

function init(args)
    local t = tid or 1
    for b = 1, bodies_n do
        local parts = {}
        for j = 1, batch do
            local n = ((t - 1) * bodies_n + (b - 1)) * batch + j
            local hr = 55 + (n * 7919) % 90
            parts[j] = string.format(
                '{"asset":"b-%d","check":"heart","values":{"heartrate":%d}}', n, hr)
        end
        requests[b] = wrk.format("POST", "/api/v1/results",
            { ["Content-Type"] = "application/json" },
            '{"results":[' .. table.concat(parts, ",") .. ']}')
    end
end

function request()
    local r = requests[next_i]
    next_i = next_i % bodies_n + 1
    return r
end

-- Non-2xx answers are counted by wrk itself ("Non-2xx or 3xx responses"); the script prints a
-- machine-readable summary line for run.sh.
function done(summary, latency, requests_)
    io.write(string.format("WRK requests=%d duration_us=%d errors=%d non2xx=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
