"""An independent MLLP receiver (hl7apy's MLLPServer) playing the receiving
trust's system in the HL7 v2 adapter tests: answers every message AA (with
MSA-2 = its MSH-10) and appends what it received to a file, one message per
line, hex-encoded (byte-exact, no content in logs). Prints READY once
listening.
"""

import argparse
import sys
import threading

from hl7apy.mllp import AbstractHandler, MLLPServer

LOCK = threading.Lock()


def make_handler(out):
    class Record(AbstractHandler):
        def reply(self):
            message = self.incoming_message
            with LOCK:
                with open(out, "a") as f:
                    f.write(message.encode("utf-8").hex() + "\n")
            msh = message.split("\r", 1)[0]
            sep = msh[3]
            fields = msh.split(sep)
            control_id = fields[9] if len(fields) > 9 else ""
            ack = (
                f"MSH{sep}^~\\&{sep}RECV{sep}RAL{sep}{fields[2]}{sep}{fields[3]}{sep}"
                f"20260101000000{sep}{sep}ACK^A01^ACK{sep}R{control_id}{sep}P{sep}2.4\r"
                f"MSA{sep}AA{sep}{control_id}\r"
            )
            return "\x0b" + ack + "\x1c\r"

    return Record


class AnyType(dict):
    def __init__(self, handler):
        super().__init__()
        self.handler = handler

    def __missing__(self, key):
        return (self.handler,)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    server = MLLPServer("127.0.0.1", args.port, AnyType(make_handler(args.out)))
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
