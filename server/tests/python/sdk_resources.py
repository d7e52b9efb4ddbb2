"""Conformance client for MCP resources: the official MCP Python SDK against postgres-mcp.

Lists the resources and resource templates, reads the server resource and one table through the
template, and reads a table that does not exist (which must be a JSON-RPC error, not empty contents).

Usage: sdk_resources.py URL TOKEN MODE
  MODE: legacy (initialize handshake, 2025-11-25) or auto (server/discover, 2026-07-28)
Prints one JSON object; exits non-zero, with the reason on stderr, when anything is not as MCP requires.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


def json_content(result, uri: str) -> dict:
    assert len(result.contents) == 1, result.contents
    content = result.contents[0]
    assert str(content.uri) == uri, content.uri
    assert content.mime_type == "application/json", content.mime_type
    return json.loads(content.text)


async def run(url: str, token: str, mode: str) -> dict:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, raise_exceptions=True) as client:
            version = client.session.protocol_version if hasattr(client.session, "protocol_version") else None
            resources = await client.list_resources()
            templates = await client.list_resource_templates()
            server_uri = "postgres-mcp://database/server"
            server = json_content(await client.read_resource(server_uri), server_uri)
            table_uri = templates.resource_templates[0].uri_template.replace("{schema}", "public").replace(
                "{table}", "orders"
            )
            orders = json_content(await client.read_resource(table_uri), table_uri)
            missing_code = None
            try:
                await client.read_resource("postgres-mcp://database/tables/public/nope")
            except MCPError as error:
                missing_code = error.code
    return {
        "mode": mode,
        "protocol_version": str(version) if version is not None else None,
        "resources": [str(r.uri) for r in resources.resources],
        "templates": [t.uri_template for t in templates.resource_templates],
        "server_version": server["version"],
        "orders_rows_estimate": orders["rows_estimate"],
        "missing_error_code": missing_code,
    }


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, token, mode = sys.argv[1:4]
    try:
        report = asyncio.run(run(url, token, mode))
    except Exception as error:  # report any SDK failure as a test failure with its reason
        print(f"MCP Python SDK failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
