"""Conformance client: the official MCP Python SDK against a postgres-mcp endpoint.

Nobody on this project wrote this SDK, which is the point: if it can discover or initialize, list
tools and call `search_knowledgebase` over streamable HTTP with a bearer token, our transport speaks
MCP as the spec's own reference client understands it.

Usage: sdk_client.py URL TOKEN MODE QUERY [ROUNDS]
  MODE: legacy (initialize handshake, 2025-11-25) or auto (server/discover, 2026-07-28)
Prints one JSON object: protocol version, tool names, results, and the X-Instance-Id of every
HTTP response (so a caller behind a load balancer can see which instances answered).
Exits non-zero, with the reason on stderr, when anything is not as MCP requires.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def run(url: str, token: str, mode: str, query: str, rounds: int) -> dict:
    instances: list[str] = []
    statuses: list[int] = []

    async def record(response):
        statuses.append(response.status_code)
        instances.append(response.headers.get("x-instance-id", ""))

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    http.event_hooks = {"request": [], "response": [record]}
    calls = []
    async with http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, raise_exceptions=True) as client:
            version = client.session.protocol_version if hasattr(client.session, "protocol_version") else None
            tools = await client.list_tools()
            names = [tool.name for tool in tools.tools]
            assert "search_knowledgebase" in names, f"search_knowledgebase not listed: {names}"
            schema = next(t.input_schema for t in tools.tools if t.name == "search_knowledgebase")
            assert schema.get("type") == "object" and "query" in schema.get("properties", {}), schema
            for _ in range(rounds):
                result = await client.call_tool("search_knowledgebase", {"query": query, "limit": 3})
                assert not result.is_error, f"tool reported an error: {result.content}"
                assert result.content and result.content[0].type == "text", result.content
                structured = result.structured_content or {}
                calls.append([hit["source"] for hit in structured.get("results", [])])
    return {
        "mode": mode,
        "protocol_version": str(version) if version is not None else None,
        "tools": names,
        "sources": calls,
        "statuses": statuses,
        "instances": instances,
    }


def main() -> int:
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    url, token, mode, query = sys.argv[1:5]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    try:
        report = asyncio.run(run(url, token, mode, query, rounds))
    except Exception as error:  # report any SDK failure as a test failure with its reason
        print(f"MCP Python SDK failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
