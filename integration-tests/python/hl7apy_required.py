"""hl7apy's verdict on required segments and fields (issue 16 item 2).

Reads a JSON list of ER7 messages (segments separated by CR) on stdin and
prints a JSON list, one entry per message: the required segments and fields
hl7apy (STRICT validation, HL7 v2.4 structures) finds missing, as
"SEG" (a missing segment) or "SEG-N" (a missing field). hl7apy reports a
missing segment as "Missing required child <MESSAGE or GROUP>.<SEG>" and a
missing field as "Missing required child <SEG>.<SEG>_<N>"; every other
validation problem (data types, lengths, table values) is ignored here,
since only required presence is compared. A message hl7apy cannot parse
at all is reported as ["UNPARSEABLE: ..."].
"""

import json
import re
import sys

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

CHILD = re.compile(r"Missing required child ([A-Z0-9_]+)\.([A-Z0-9_]+)")


def verdict(text):
    try:
        msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        return ["UNPARSEABLE: %s" % e]
    errors = []
    try:
        msg.validate(report_file=None)
    except Exception as e:  # noqa: BLE001
        errors.append(str(e))
    missing = []
    for err in errors:
        for parent, child in CHILD.findall(err):
            field = re.fullmatch(r"([A-Z0-9]{3})_(\d+)", child)
            if field and field.group(1) == parent:
                missing.append("%s-%d" % (parent, int(field.group(2))))
            elif re.fullmatch(r"[A-Z0-9]{3}", child):
                missing.append(child)
            # a missing group: its first required segment is reported by us
            else:
                missing.append("GROUP " + child)
    return missing


def main():
    messages = json.load(sys.stdin)
    json.dump([verdict(m) for m in messages], sys.stdout)


if __name__ == "__main__":
    main()
