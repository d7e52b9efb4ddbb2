"""OAuth conformance client: the official MCP Python SDK's OAuthClientProvider against postgres-mcp.

The SDK does everything an MCP connector does: on the first 401 it reads WWW-Authenticate,
discovers the protected resource metadata (RFC 9728) and the authorization server metadata
(RFC 8414), registers itself (RFC 7591), sends the user to the authorization endpoint with PKCE,
exchanges the code, calls tools with the access token, and refreshes it when it expires. The only
part written here is the "user": a redirect handler that opens the sign-in page headlessly, posts
the form with its CSRF cookie, and hands the code from the redirect back to the SDK.

Usage: oauth_client.py URL USERNAME PASSWORD QUERY [ROUNDS]
Prints one JSON object: tool names, the sources found, and every HTTP exchange in order as
{step, method, path, status, instance}, so a caller behind a load balancer can see which instance
served which step. Exits non-zero, with the reason on stderr, when anything is not as it should be.
"""

import asyncio
import json
import re
import sys
import time
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:53682/callback"


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def step_of(method: str, path: str, status: int, body: bytes) -> str:
    if path.startswith("/.well-known/"):
        return "discovery"
    if path == "/oauth/register":
        return "registration"
    if path == "/oauth/authorize":
        return "authorize" if method == "GET" else "sign-in"
    if path == "/oauth/token":
        return "refresh" if b"grant_type=refresh_token" in body else "token"
    if status == 401:
        return "challenge"
    return "call"


async def run(url: str, username: str, password: str, query: str, rounds: int) -> dict:
    exchanges: list[dict] = []

    async def record(response):
        request = response.request
        path = urlparse(str(request.url)).path
        exchanges.append({
            "step": step_of(request.method, path, response.status_code, request.content or b""),
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "instance": response.headers.get("x-instance-id", ""),
        })

    captured: dict = {}
    # The "browser": its own cookie jar, no redirect following (the last redirect goes to the app).
    browser = httpx2.AsyncClient(follow_redirects=False, event_hooks={"response": [record]})

    async def redirect_handler(authorization_url: str) -> None:
        page = await browser.get(authorization_url)
        assert page.status_code == 200, f"sign-in page: HTTP {page.status_code}: {page.text[:300]}"
        assert "set-cookie" in page.headers, "the sign-in page sets its CSRF cookie"
        match = re.search(r'name="request" value="([^"]+)"', page.text)
        assert match, "the sign-in page carries the sealed request"
        action = urljoin(authorization_url, "/oauth/authorize")
        answer = await browser.post(action, data={"request": match.group(1), "username": username, "password": password})
        assert answer.status_code == 303, f"sign-in: HTTP {answer.status_code}: {answer.text[:300]}"
        location = answer.headers["location"]
        assert location.startswith(REDIRECT_URI), f"redirected to {location}"
        params = parse_qs(urlparse(location).query)
        assert "error" not in params, f"authorization error: {params}"
        captured.update(code=params["code"][0], state=params.get("state", [None])[0], iss=params.get("iss", [None])[0])

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=captured["code"], state=captured["state"], iss=captured["iss"])

    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="postgres-mcp OAuth conformance test",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    http = create_mcp_http_client(auth=provider)
    http.event_hooks = {"request": [], "response": [record]}
    sources = []
    async with browser, http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy", raise_exceptions=True) as client:
            tools = await client.list_tools()
            names = [tool.name for tool in tools.tools]
            for round_ in range(rounds):
                if round_ == rounds - 1:
                    # Let the access token expire (as an hour would): the SDK refreshes it.
                    provider.context.token_expiry_time = time.time() - 1
                result = await client.call_tool("search_knowledgebase", {"query": query, "limit": 3})
                assert not result.is_error, f"tool reported an error: {result.content}"
                structured = result.structured_content or {}
                sources.append([hit["source"] for hit in structured.get("results", [])])
    steps = [e["step"] for e in exchanges]
    for required in ["challenge", "discovery", "registration", "authorize", "sign-in", "token", "call", "refresh"]:
        assert required in steps, f"no {required} step in {steps}"
    return {"tools": names, "sources": sources, "exchanges": exchanges}


def main() -> int:
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    url, username, password, query = sys.argv[1:5]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    try:
        report = asyncio.run(run(url, username, password, query, rounds))
    except Exception as error:  # noqa: BLE001 - the reason goes to stderr for the Rust test
        import traceback

        traceback.print_exc()
        print(f"FAILED: {error!r}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
