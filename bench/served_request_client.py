"""Drives bench/served_request_callgrind.sh: signs up and in (cookie or
password-grant token; `peer`: the axum + tower-sessions peer's POST /login),
then N GETs on one keep-alive connection, turning callgrind's
instrumentation on around the measured part."""
import http.client, json, subprocess, sys, time

port, path, n, warm, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
auth = sys.argv[6] if len(sys.argv) > 6 else "cookie"
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
host = {"Host": f"127.0.0.1:{port}"}
def req(method, p, body=None, headers=None):
    h = dict(host); h.update(headers or {})
    c.request(method, p, body=body, headers=h)
    r = c.getresponse(); data = r.read(); return r, data
headers = {}
if auth == "peer" and path != "/plain":
    cred = json.dumps({"username": "alice", "password": "correct horse battery staple"})
    r, d = req("POST", "/login", cred, {"Content-Type": "application/json"})
    assert r.status == 200, (r.status, d)
    headers = {"Cookie": r.getheader("Set-Cookie").split(";")[0]}
elif path != "/healthz" and path != "/plain":
    cred = json.dumps({"username": "bench", "password": "correct horse battery staple"})
    r, d = req("POST", "/v1/users", cred, {"Content-Type": "application/json"})
    assert r.status in (201, 409), (r.status, d)
    if auth == "cookie":
        r, d = req("POST", "/v1/session", cred, {"Content-Type": "application/json"})
        assert r.status == 200, (r.status, d)
        cookie = r.getheader("Set-Cookie").split(";")[0]
        headers = {"Cookie": cookie}
    else:
        form = "grant_type=password&username=bench&password=correct+horse+battery+staple"
        r, d = req("POST", "/v1/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 200, (r.status, d)
        headers = {"Authorization": "Bearer " + json.loads(d)["access_token"]}
for _ in range(warm):
    r, d = req("GET", path, None, headers); assert r.status == 200, (r.status, d)
subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
for _ in range(n):
    r, d = req("GET", path, None, headers); assert r.status == 200, (r.status, d)
subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
print("ok", n)
