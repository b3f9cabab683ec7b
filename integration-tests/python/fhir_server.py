"""An independent FHIR endpoint playing a trust's FHIR system in tests.

Accepts POSTs on any path, stores each body as <out>/<n>.json, validates it
with fhir.resources (R4B models) and records the verdict in <out>/<n>.verdict
("valid" or "invalid: <error>"), then answers as --answer says:

  ok             200, an informational OperationOutcome
  business:CODE  200, an informational OperationOutcome carrying ITK3 CODE
  fatal          422, an error OperationOutcome
  unavailable    503 (a transient failure)

Prints "READY <port>" once listening. Standard library HTTP server only.
"""

import argparse
import json
import pathlib
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fhir.resources.R4B import get_fhir_model_class

ITK = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1"


def verdict(data: bytes) -> str:
    try:
        value = json.loads(data)
        get_fhir_model_class(value["resourceType"]).model_validate(value)
        for entry in value.get("entry", []):
            inner = entry.get("resource")
            if inner is not None:
                get_fhir_model_class(inner["resourceType"]).model_validate(inner)
    except Exception as e:  # every failure is a verdict
        return f"invalid: {type(e).__name__}: {e}"
    return "valid"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--answer", default="ok")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    counter = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            with lock:
                counter[0] += 1
                n = counter[0]
            (out / f"{n:04}.json").write_bytes(body)
            (out / f"{n:04}.verdict").write_text(verdict(body))
            (out / f"{n:04}.meta").write_text(
                json.dumps({"path": self.path, "content_type": self.headers.get("content-type"),
                            "authorization": self.headers.get("authorization")}))
            status, issue = 200, {"severity": "information", "code": "informational"}
            if args.answer == "fatal":
                status, issue = 422, {"severity": "error", "code": "invalid"}
            elif args.answer == "unavailable":
                status = 503
            elif args.answer.startswith("business:"):
                issue["details"] = {"coding": [{"system": ITK, "code": args.answer.split(":", 1)[1]}]}
            answer = json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/fhir+json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"READY {args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
