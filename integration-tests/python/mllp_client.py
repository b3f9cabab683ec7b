"""An independent MLLP sender (python-hl7's MLLPClient) for the HL7 v2
adapter tests: sends each file given, byte for byte, on one connection, and
prints one line per ACK, parsed with python-hl7:

    ACK <file> <MSA-1> <MSA-2> <ERR-2 or -> <ERR-3.1 or ->

Never prints message content beyond those ACK fields.
"""

import argparse
import sys

import hl7
import hl7.client


def field(segment, n):
    try:
        value = str(segment[n])
    except (IndexError, KeyError):
        return "-"
    return value if value else "-"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    with hl7.client.MLLPClient(args.host, args.port) as client:
        for name in args.files:
            with open(name, "rb") as f:
                message = f.read()
            raw = client.send_message(message)
            text = raw.decode("utf-8").strip("\x0b\x1c\r\n")
            ack = hl7.parse(text)
            msa = ack.segment("MSA")
            try:
                err = ack.segment("ERR")
                err2 = field(err, 2)
                err3 = field(err, 3).split("^")[0]
            except KeyError:
                err2, err3 = "-", "-"
            print(f"ACK {name} {field(msa, 1)} {field(msa, 2)} {err2} {err3}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
