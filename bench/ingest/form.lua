-- wrk script for P3b: single django-health-monitor compatible form posts,
-- POST /health_test/heart/<uid>/ with heartrate=<n>, uids varying over UIDS (default 10,000)
-- and per thread, so every connection writes to many assets.
local uids = tonumber(os.getenv("UIDS") or "10000")
local thread_no = 0
local n = 0
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function setup(thread)
    thread_no = thread_no + 1
    thread:set("tid", thread_no)
end

function init(args)
    n = (tid or 1) * 7919
end

function request()
    n = n + 1
    local uid = n % uids + 1
    local hr = 55 + (n * 31) % 90
    return wrk.format("POST", "/health_test/heart/" .. uid .. "/", headers, "heartrate=" .. hr)
end

function done(summary, latency, requests_)
    io.write(string.format("WRK requests=%d duration_us=%d errors=%d non2xx=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
