-- wrk script for bench/api/run.sh: POST /api/publish/<room> with a 128-byte text body and the
-- API key from the environment (WS_API_KEY), on keep-alive connections.
local key = os.getenv("WS_API_KEY")
local room = os.getenv("WS_ROOM") or "bench"
wrk.method = "POST"
wrk.path = "/api/publish/" .. room
wrk.body = string.rep("x", 128)
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "text/plain"

local bad = 0
function response(status, headers, body)
    if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
    io.write(string.format("non-200 answers: %d\n", summary.errors.status))
end
