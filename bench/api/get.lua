-- wrk script for bench/api/run.sh: GET /api/rooms/<room> (authenticated, keep-alive, no
-- publish): the reference the publish rate is compared with in the same run.
local key = os.getenv("WS_API_KEY")
local room = os.getenv("WS_ROOM") or "bench"
wrk.path = "/api/rooms/" .. room
wrk.headers["Authorization"] = "Bearer " .. key

function done(summary, latency, requests)
    io.write(string.format("non-200 answers: %d\n", summary.errors.status))
end
