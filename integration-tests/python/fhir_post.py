"""An independent FHIR client for tests: POSTs a file and reports.

Usage: fhir_post.py --url URL --file FILE [--content-type CT]
Prints "STATUS <code>", then "VERDICT valid" or "VERDICT invalid: ..." for
the answer body (validated with fhir.resources R4B), then the body on one
line. Standard library HTTP client only.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

from fhir_server import verdict


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--content-type", default="application/fhir+json")
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        data = f.read()
    request = urllib.request.Request(args.url, data=data, method="POST",
                                     headers={"content-type": args.content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    print(f"STATUS {status}")
    print(f"VERDICT {verdict(body)}")
    print(json.dumps(json.loads(body)) if body else "{}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
