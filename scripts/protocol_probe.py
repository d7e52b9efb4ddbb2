#!/usr/bin/env python3
"""Issue #13 §A.1/2/5/6/7 probe: python3 scripts/protocol_probe.py BINARY. Starts BINARY (a postgres-mcp
build) on a loopback port with a token, a kb.db of demo/docs and an unreachable database URL, sends each
case and prints `name status JSON-RPC-code / isError / HTTP error code [Allow]` — the before/after table."""
import http.client, json, os, subprocess, sys, tempfile, time
binary = sys.argv[1]
d = tempfile.mkdtemp()
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tok = subprocess.run([binary, "token", "create", "--file", f"{d}/tokens.yaml", "--name", "probe"],
                     capture_output=True, text=True, check=True).stdout.strip().split()[-1]
subprocess.run([binary, "kb", "build", "--from", f"{repo}/demo/docs", "--out", f"{d}/kb.db"], check=True, capture_output=True)
port = 18000 + os.getpid() % 1000
open(f"{d}/c.yaml", "w").write(f"listen: 127.0.0.1:{port}\nauth:\n  tokens_file: {d}/tokens.yaml\nkb:\n  path: {d}/kb.db\n"
                               "database:\n  url: postgres://mcp@127.0.0.1:1/db?sslmode=disable\n")
server = subprocess.Popen([binary, "serve", "--config", f"{d}/c.yaml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
import atexit
atexit.register(server.terminate)
for _ in range(100):
    try:
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health"); break
    except OSError:
        time.sleep(0.1)
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
def call(args, rev=None):
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_knowledgebase", "arguments": args}}
cases = [
    ("A1 id null tools/list", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":null,"method":"tools/list"}'),
    ("A1 id true tools/list", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":true,"method":"tools/list"}'),
    ("A1 id 1.5 ping", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":1.5,"method":"ping"}'),
    ("A1 id [1] ping", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":[1],"method":"ping"}'),
    ("A1 id {} tools/call", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":{},"method":"tools/call"}'),
    ("A1 id 2^64 ping", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":18446744073709551616,"method":"ping"}'),
    ("A1 id dup 1,null", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":1,"id":null,"method":"ping"}'),
    ("A1 result id null", "POST", "/mcp", {}, '{"jsonrpc":"2.0","id":null,"result":{}}'),
    ("A2 notification v1999", "POST", "/mcp", {"MCP-Protocol-Version": "1999-01-01"}, '{"jsonrpc":"2.0","method":"notifications/initialized"}'),
    ("A2 response v1999", "POST", "/mcp", {"MCP-Protocol-Version": "1999-01-01"}, '{"jsonrpc":"2.0","id":1,"result":{}}'),
    ("A5 initialize 2026", "POST", "/mcp", {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "initialize"},
     json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2026-07-28", "capabilities": {}, "clientInfo": {"name": "p", "version": "1"}, "_meta": META}})),
    ("A5 ping 2026", "POST", "/mcp", {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "ping"}, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": META}})),
    ("A5 ping 2025-11-25", "POST", "/mcp", {"MCP-Protocol-Version": "2025-11-25"}, '{"jsonrpc":"2.0","id":1,"method":"ping"}'),
]
for rev in ["2025-06-18", "2025-11-25"]:
    for label, args in [("{}", {}), ('query:42', {"query": 42}), ("limit:-1", {"query": "x", "limit": -1}),
                        ('limit:"five"', {"query": "x", "limit": "five"}), ("unknown arg", {"query": "x", "z": 1}),
                        ("limit:0", {"query": "x", "limit": 0}), ("limit:51", {"query": "x", "limit": 51})]:
        cases.append((f"A6 {rev} search {label}", "POST", "/mcp", {"MCP-Protocol-Version": rev}, json.dumps(call(args))))
for method, path in [("PUT", "/mcp"), ("PATCH", "/mcp"), ("GET", "/mcp"), ("POST", "/health"), ("DELETE", "/metrics"),
                     ("GET", "/api/login"), ("GET", "/nope")]:
    cases.append((f"A7 {method} {path}", method, path, {}, None))
for name, method, path, headers, body in cases:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Authorization": f"Bearer {tok}", **headers}
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse(); raw = r.read()
    try:
        j = json.loads(raw)
        kind = (f"rpc {j['error']['code']}" if isinstance(j.get("error"), dict) else
                f"isError={j['result'].get('isError')}" if isinstance(j.get("result"), dict) else f"json error={j.get('error')}")
    except Exception:
        kind = f"non-JSON body {raw[:30]!r}"
    allow = r.getheader("Allow")
    print(f"{name:34} {r.status} {kind}" + (f" Allow: {allow}" if allow else ""))
