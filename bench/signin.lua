-- Cookie sign-ins with the right password: bound by Argon2id.
local username = os.getenv("USERNAME")
local password = os.getenv("PASSWORD")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"' .. username .. '","password":"' .. password .. '"}'
