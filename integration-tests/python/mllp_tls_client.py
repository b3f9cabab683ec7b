"""An independent MLLP-over-TLS sender (Python's ssl module, MLLP framing by
hand, ACKs parsed with python-hl7) for the HL7 v2 adapter's TLS listener:
sends each file given, byte for byte, on one TLS connection, and prints one
line per ACK:

    ACK <file> <MSA-1> <MSA-2>

With --cert and --key it presents a client certificate. Never prints
message content beyond those ACK fields.
"""

import argparse
import socket
import ssl
import sys

import hl7

START, END = b"\x0b", b"\x1c\r"


def read_frame(stream):
    data = b""
    while not data.endswith(END):
        chunk = stream.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the ACK")
        data += chunk
    return data[data.index(START) + 1 : -len(END)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--server-name", default="localhost")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    with socket.create_connection((args.host, args.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=args.server_name) as stream:
            for name in args.files:
                with open(name, "rb") as f:
                    stream.sendall(START + f.read() + END)
                ack = hl7.parse(read_frame(stream).decode("utf-8"))
                msa = ack.segment("MSA")
                print(f"ACK {name} {msa[1]} {msa[2]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
