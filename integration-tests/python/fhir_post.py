"""An independent FHIR client for tests: POSTs a file and reports.

Usage: fhir_post.py --url URL --file FILE [--content-type CT]
                    [--token TOKEN] [--ca CA --cert CERT --key KEY]
Prints "STATUS <code>", then "VERDICT valid" or "VERDICT invalid: ..." for
the answer body (validated with fhir.resources R4B), then the body on one
line. With --token it sends `Authorization: Bearer TOKEN`; an https:// URL
is checked against --ca, presenting --cert/--key if given. A refused TLS
handshake prints "TLSERROR <reason>" only. Standard library HTTP client
(http.client, ssl) only.
"""

import argparse
import http.client
import json
import ssl
import sys
import urllib.parse

from fhir_server import verdict


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--content-type", default="application/fhir+json")
    parser.add_argument("--token")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        data = f.read()
    url = urllib.parse.urlsplit(args.url)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=args.ca)
        if args.cert:
            context.load_cert_chain(args.cert, args.key)
        connection = http.client.HTTPSConnection(
            url.hostname, url.port, timeout=30, context=context
        )
    else:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = {"content-type": args.content_type}
    if args.token:
        headers["authorization"] = f"Bearer {args.token}"
    try:
        connection.request("POST", path, body=data, headers=headers)
    except ssl.SSLError as error:
        print(f"TLSERROR {error.reason}")
        return 0
    except (BrokenPipeError, ConnectionResetError):
        # A server may answer (e.g. 413) and close before the whole body
        # was sent; its answer is still there to read. (With TLS 1.3 a
        # refused client certificate shows here or at the first read.)
        pass
    try:
        response = connection.getresponse()
    except (ssl.SSLError, ConnectionResetError) as error:
        print(f"TLSERROR {getattr(error, 'reason', None) or error}")
        return 0
    status, body = response.status, response.read()
    print(f"STATUS {status}")
    print(f"VERDICT {verdict(body)}")
    print(json.dumps(json.loads(body)) if body else "{}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
