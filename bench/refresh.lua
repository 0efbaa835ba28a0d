-- Refresh grants on independent chains, any number of connections per thread.
--
--   REFRESH_TOKENS=file WRK_THREADS=t wrk -t t -c c -s refresh.lua URL/v1/token
--
-- A chain is a refresh token and its successors. A wrk thread's connections
-- share one Lua state and wrk says nothing of which connection a response
-- came on, so the thread keeps the heads of its idle chains in a list: a
-- request takes one out, the answer puts its successor back. A chain is
-- therefore never in flight twice, and no token is ever sent twice (which
-- the server would answer as a retry, or as reuse and end the session).
--
-- REFRESH_TOKENS names a file of first tokens, one a line (password grants
-- made beforehand, e.g. by bench/wrk.sh): line i goes to thread
-- (i mod WRK_THREADS) + 1. A thread without an idle chain (too few lines,
-- or a chain broken by an error answer) starts one with a password grant
-- for USERNAME / PASSWORD (form-encoded); those are counted apart.

local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("thread_index", #threads)
end

-- Per thread (globals, so done() can read them through thread:get).
idle = {}         -- heads of the chains not in flight
sent_before = {}  -- every token sent, to catch one sent twice
renewed, started, failed, sent_twice = 0, 0, 0, 0
local verifying = true
local sign_in

function init(args)
    local user, password = os.getenv("USERNAME"), os.getenv("PASSWORD")
    if user and password then
        sign_in = wrk.format("POST", "/v1/token", form,
            "grant_type=password&username=" .. user .. "&password=" .. password)
    end
    local file = os.getenv("REFRESH_TOKENS")
    if file then
        local stride = tonumber(os.getenv("WRK_THREADS") or "1")
        local i = 0
        for line in io.lines(file) do
            if line ~= "" then
                if i % stride == thread_index - 1 then
                    table.insert(idle, line)
                end
                i = i + 1
            end
        end
    end
end

function request()
    -- wrk builds one request on the first thread before any is sent, to
    -- check the script; it is never sent, so it must not take a chain.
    if verifying then
        verifying = false
        if thread_index == 1 then
            return wrk.format("POST", "/v1/token", form, "grant_type=refresh_token&refresh_token=check")
        end
    end
    local head = table.remove(idle)
    if head == nil then
        if sign_in == nil then
            error("refresh.lua: no idle chain, and no USERNAME/PASSWORD to start one")
        end
        started = started + 1
        return sign_in
    end
    if sent_before[head] then
        sent_twice = sent_twice + 1
    end
    sent_before[head] = true
    return wrk.format("POST", "/v1/token", form, "grant_type=refresh_token&refresh_token=" .. head)
end

function response(status, headers, body)
    local successor = status == 200 and string.match(body, '"refresh_token":"([^"]+)"')
    if successor then
        table.insert(idle, successor)
        renewed = renewed + 1
    else
        -- The chain is broken; a password grant starts a new one when needed.
        failed = failed + 1
    end
end

function done(summary, latency, requests)
    local total = { renewed = 0, started = 0, failed = 0, sent_twice = 0 }
    for _, thread in ipairs(threads) do
        for name in pairs(total) do
            total[name] = total[name] + (thread:get(name) or 0)
        end
    end
    -- "renewed" counts the password grants' answers too: both carry a token.
    io.write(string.format(
        "refresh.lua: %d answers with a new token, %d chains started by password grant, " ..
        "%d error answers, %d tokens sent twice\n",
        total.renewed, total.started, total.failed, total.sent_twice))
end
