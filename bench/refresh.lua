-- Refresh grants: each connection follows its own refresh-token chain,
-- starting from a password grant made in setup.
local username = os.getenv("USERNAME")
local password = os.getenv("PASSWORD")
local counter = 0
local threads = {}

function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
    table.insert(threads, thread)
end

local refresh = nil

function init(args)
    refresh = nil
end

local function form(body)
    return wrk.format("POST", "/v1/token", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function request()
    if refresh == nil then
        return form("grant_type=password&username=" .. username .. "&password=" .. password)
    end
    return form("grant_type=refresh_token&refresh_token=" .. refresh)
end

function response(status, headers, body)
    if status == 200 then
        refresh = string.match(body, '"refresh_token":"([^"]+)"')
    else
        refresh = nil
    end
end
