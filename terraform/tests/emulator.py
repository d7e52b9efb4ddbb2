"""moto's server, plus the AWS calls `terraform apply` of the kit needs that moto 5.2.5 lacks or answers unlike AWS.

TEST CODE ONLY: this is the AWS emulator of terraform/tests/test_apply.py; nothing here is, or ever
goes, into the module. It serves moto's own WSGI application (every service on one loopback port,
the service picked from the request's SigV4 credential scope) behind a small WSGI middleware that
answers the calls moto does not implement, on moto's own in-memory models so that a read through
moto afterwards sees what was written:

| Service | Call | moto 5.2.5 | Here |
|---|---|---|---|
| EFS | PutBackupPolicy | not implemented (the apply never finishes) | stores the status on moto's file system |
| EFS | DescribeBackupPolicy | PolicyNotFound for a disabled policy (AWS: Status DISABLED), so a destroy, which disables it, waits forever | the stored status |
| EFS | DeleteFileSystemPolicy | not implemented | clears the policy moto's PutFileSystemPolicy stored |
| Application Auto Scaling | TagResource, UntagResource, ListTagsForResource | not implemented (the apply never finishes) | a tag store keyed by ARN |
| Application Auto Scaling | RegisterScalableTarget | ignores `Tags` | moto registers; the tags go to the store under the ARN it returns |

Everything else (EFS DescribeFileSystemPolicy included) is moto's own. Why a wrapper and not moto's
decorators: Terraform talks HTTP to one endpoint, and the stubs must share moto's state.

Run: `python emulator.py [--port N]`; it prints `ready http://127.0.0.1:PORT` once it listens
(port 0, the default, lets the OS pick a free one) and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import signal
import sys
import threading
from urllib.parse import unquote

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

# SigV4: "Credential=AKID/20250101/eu-west-1/elasticfilesystem/aws4_request"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_EFS_BACKUP = re.compile(r"^/2015-02-01/file-systems/([^/]+)/backup-policy$")
_EFS_POLICY = re.compile(r"^/2015-02-01/file-systems/([^/]+)/policy$")
_AAS_TARGET = "AnyScaleFrontendService."


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/x-amz-json-1.1")


def _efs_error(status: int, code: str, message: str) -> Response:
    # EFS (REST-JSON) errors: the code in x-amzn-ErrorType and the body, as AWS sends them.
    response = Response(json.dumps({"ErrorCode": code, "Message": message}), status=status, content_type="application/json")
    response.headers["x-amzn-ErrorType"] = code
    return response


class MissingCalls:
    """WSGI middleware: answers the calls listed in the module docstring, passes the rest to moto."""

    def __init__(self, moto_app) -> None:
        self.moto_app = moto_app
        self.aas_tags: dict[str, dict[str, str]] = {}  # scalable target ARN -> tags
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        # Read the body once and put it back, so that moto can read it again when a call passes on.
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        request = Request(environ)
        scope = _SCOPE.search(request.headers.get("Authorization", ""))
        region, service = scope.groups() if scope else (None, None)
        response = None
        if service == "elasticfilesystem":
            response = self.efs(request, region)
        elif service == "application-autoscaling":
            response = self.application_autoscaling(request, environ, body)
        if response is None:
            environ["wsgi.input"] = io.BytesIO(body)  # the Request above may have read it
            return self.moto_app(environ, start_response)
        return response(environ, start_response)

    # EFS (REST-JSON) ---------------------------------------------------------------------------

    def efs(self, request: Request, region: str) -> Response | None:
        from moto.efs.models import efs_backends

        backup = _EFS_BACKUP.match(request.path)
        policy = _EFS_POLICY.match(request.path)
        if not ((backup and request.method in ("PUT", "GET")) or (policy and request.method == "DELETE")):
            return None
        file_system_id = unquote((backup or policy).group(1))
        backend = efs_backends[DEFAULT_ACCOUNT_ID][region]
        file_system = backend.file_systems_by_id.get(file_system_id)
        if file_system is None:
            return _efs_error(404, "FileSystemNotFound", f"File system '{file_system_id}' does not exist.")
        if backup:
            # moto keeps a bool (`_backup`, set by CreateFileSystem's Backup); AWS answers a status.
            if request.method == "PUT":
                status = (request.get_json(force=True, silent=True) or {}).get("BackupPolicy", {}).get("Status")
                if status not in ("ENABLED", "DISABLED"):
                    return _efs_error(400, "ValidationException", "BackupPolicy.Status must be ENABLED or DISABLED")
                file_system._backup = status == "ENABLED"
            status = "ENABLED" if file_system._backup else "DISABLED"
            return Response(json.dumps({"BackupPolicy": {"Status": status}}), status=200, content_type="application/json")
        file_system.file_system_policy = None
        return Response(status=200)

    # Application Auto Scaling (JSON 1.1, X-Amz-Target) ----------------------------------------

    def application_autoscaling(self, request: Request, environ, raw: bytes) -> Response | None:
        target = request.headers.get("X-Amz-Target", "")
        action = target[len(_AAS_TARGET):] if target.startswith(_AAS_TARGET) else ""
        body = request.get_json(force=True, silent=True) or {}
        if action == "RegisterScalableTarget" and body.get("Tags"):
            return self.register_with_tags(environ, raw, body["Tags"])
        if action not in ("TagResource", "UntagResource", "ListTagsForResource"):
            return None
        arn = body.get("ResourceARN")
        if not arn:
            return _json(400, {"__type": "ValidationException", "message": "ResourceARN is required"})
        with self.lock:
            tags = self.aas_tags.setdefault(arn, {})
            if action == "TagResource":
                tags.update(body.get("Tags", {}))
                return _json(200, {})
            if action == "UntagResource":
                for key in body.get("TagKeys", []):
                    tags.pop(key, None)
                return _json(200, {})
            return _json(200, {"Tags": dict(tags)})

    def register_with_tags(self, environ, raw: bytes, tags: dict[str, str]) -> Response:
        """moto registers the target (and drops `Tags`); the tags go under the ARN it answers."""
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        environ["wsgi.input"] = io.BytesIO(raw)
        body = b"".join(self.moto_app(environ, start_response))
        status = int(captured["status"].split()[0])
        if status == 200:
            arn = json.loads(body).get("ScalableTargetARN")
            if arn:
                with self.lock:
                    self.aas_tags.setdefault(arn, {}).update(tags)
        return Response(body, status=status, headers=captured["headers"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()

    app = MissingCalls(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"ready http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
