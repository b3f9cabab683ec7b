"""An independent FHIR client for tests: POSTs a file and reports.

Usage: fhir_post.py --url URL --file FILE [--content-type CT]
Prints "STATUS <code>", then "VERDICT valid" or "VERDICT invalid: ..." for
the answer body (validated with fhir.resources R4B), then the body on one
line. Standard library HTTP client (http.client) only.
"""

import argparse
import http.client
import json
import sys
import urllib.parse

from fhir_server import verdict


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--content-type", default="application/fhir+json")
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        data = f.read()
    url = urllib.parse.urlsplit(args.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    path = url.path + (f"?{url.query}" if url.query else "")
    try:
        connection.request("POST", path, body=data, headers={"content-type": args.content_type})
    except (BrokenPipeError, ConnectionResetError):
        # A server may answer (e.g. 413) and close before the whole body
        # was sent; its answer is still there to read.
        pass
    response = connection.getresponse()
    status, body = response.status, response.read()
    print(f"STATUS {status}")
    print(f"VERDICT {verdict(body)}")
    print(json.dumps(json.loads(body)) if body else "{}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
