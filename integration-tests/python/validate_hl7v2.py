"""Reads HL7 v2 messages rendered by lhcie-hl7v2 with two independent
parsers, hl7apy and python-hl7, and checks them against expectations.

Usage: validate_hl7v2.py FILE.hl7 [FILE.hl7 ...]

Each FILE.hl7 (segments ended by CR) has a sidecar FILE.json with the
expected values, written from the canonical envelope:

  message_type        MSH-9 as written, e.g. "MDM^T02^MDM_T02"
  control_id          MSH-10 (optional)
  sending_facility    MSH-4
  nhs_number          PID-3, the repetition with assigning authority NHS (optional)
  family_name         PID-5.1, unescaped (optional)
  document_id         TXA-12 (optional)
  referral_id         RF1-6 (optional)
  obx_count           number of OBX segments (optional)
  attachments_base64  the data of every ED value, in order; each must
                      decode to the same bytes
  msa                 [MSA-1, MSA-2] (optional)
  err_code, err_text  ERR-1.4.1 and ERR-1.4.2, unescaped (optional)

Prints "OK <file>" per message and exits 0, or prints every failure and
exits 1. Run by adapters/hl7v2/tests/from_canonical_golden.rs.
"""

import base64
import json
import re
import sys

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message


def decode(raw: bytes) -> str:
    """The message text, as MSH-18 says (UTF-8 when declared, else ASCII
    or ISO-8859-1)."""
    first = raw.split(b"\r", 1)[0]
    fields = first.split(b"|")
    charset = fields[17].decode("ascii", "replace") if len(fields) > 17 else ""
    if charset.strip().upper() == "UNICODE UTF-8":
        return raw.decode("utf-8")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


def unescape(value: str) -> str:
    """HL7 escape sequences with the default delimiters (for hl7apy, which
    keeps values escaped). Written here, not shared with the renderer."""

    def one(match: re.Match) -> str:
        body = match.group(1)
        simple = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}
        if body in simple:
            return simple[body]
        if body.startswith("X") and len(body) % 2 == 1:
            return bytes.fromhex(body[1:]).decode("utf-8")
        return match.group(0)

    return re.sub(r"\\([^\\]*)\\", one, value)


def expected_bytes(x: dict) -> list:
    """The attachments' bytes, from the sidecar's base64."""
    return [base64.b64decode(d, validate=True) for d in x["attachments_base64"]]


class Checker:
    def __init__(self, name: str):
        self.name = name
        self.failures = []

    def equal(self, what: str, got, expected):
        if got != expected:
            self.failures.append(f"{self.name}: {what}: got {got!r}, expected {expected!r}")


def check_hl7apy(c: Checker, text: str, x: dict):
    m = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    c.equal("hl7apy MSH-9", m.msh.msh_9.value, x["message_type"])
    c.equal("hl7apy structure", m.name, x["message_type"].split("^")[2])
    c.equal("hl7apy MSH-4", m.msh.msh_4.value, x["sending_facility"])
    c.equal("hl7apy MSH-12", m.msh.msh_12.value, "2.4")
    if "control_id" in x:
        c.equal("hl7apy MSH-10", m.msh.msh_10.value, x["control_id"])
    if "nhs_number" in x:
        nhs = [
            r.cx_1.value
            for r in m.pid.pid_3
            if r.cx_4.value == "NHS" and r.cx_5.value == "NH"
        ]
        c.equal("hl7apy PID-3 NHS number", nhs, [x["nhs_number"]])
    if "family_name" in x:
        c.equal("hl7apy PID-5.1", unescape(m.pid.pid_5[0].xpn_1.value), x["family_name"])
    if "document_id" in x:
        c.equal("hl7apy TXA-12", unescape(m.txa.txa_12.value), x["document_id"])
    if "referral_id" in x:
        c.equal("hl7apy RF1-6", unescape(m.rf1.rf1_6.value), x["referral_id"])
    obx = [s for s in m.children if s.name == "OBX"]
    if "obx_count" in x:
        c.equal("hl7apy OBX count", len(obx), x["obx_count"])
    ed = []
    for s in obx:
        if s.obx_2.value == "ED":
            for rep in s.obx_5:
                parts = rep.value.split("^")
                c.equal("hl7apy ED encoding", parts[3], "Base64")
                ed.append(base64.b64decode(parts[4], validate=True))
    c.equal("hl7apy ED bytes", ed, expected_bytes(x))
    if "msa" in x:
        c.equal("hl7apy MSA", [m.msa.msa_1.value, m.msa.msa_2.value], x["msa"])
    if "err_code" in x:
        eld = m.err.err_1[0].value.split("^")[3].split("&")
        c.equal("hl7apy ERR-1.4.1", eld[0], x["err_code"])
        c.equal("hl7apy ERR-1.4.2", unescape(eld[1]), x["err_text"])


def check_python_hl7(c: Checker, text: str, x: dict):
    m = hl7.parse(text)
    c.equal("python-hl7 MSH-9", str(m.segment("MSH")[9]), x["message_type"])
    c.equal("python-hl7 MSH-4", str(m["MSH.F4"]), x["sending_facility"])
    if "control_id" in x:
        c.equal("python-hl7 MSH-10", str(m["MSH.F10"]), x["control_id"])
    if "nhs_number" in x:
        pid3 = m.segment("PID")[3]
        nhs = [str(r[0]) for r in pid3 if len(r) >= 5 and str(r[3]) == "NHS" and str(r[4]) == "NH"]
        c.equal("python-hl7 PID-3 NHS number", nhs, [x["nhs_number"]])
    if "family_name" in x:
        c.equal("python-hl7 PID-5.1", m["PID.F5.R1.C1"], x["family_name"])
    if "document_id" in x:
        c.equal("python-hl7 TXA-12", m["TXA.F12"], x["document_id"])
    if "referral_id" in x:
        c.equal("python-hl7 RF1-6", m["RF1.F6"], x["referral_id"])
    obx = m.segments("OBX") if any(str(s[0]) == "OBX" for s in m) else []
    if "obx_count" in x:
        c.equal("python-hl7 OBX count", len(obx), x["obx_count"])
    ed = []
    for s in obx:
        if str(s[2]) == "ED":
            for rep in s[5]:
                c.equal("python-hl7 ED encoding", str(rep[3]), "Base64")
                ed.append(base64.b64decode(str(rep[4]), validate=True))
    c.equal("python-hl7 ED bytes", ed, expected_bytes(x))
    if "msa" in x:
        c.equal("python-hl7 MSA", [str(m["MSA.F1"]), str(m["MSA.F2"])], x["msa"])
    if "err_code" in x:
        c.equal("python-hl7 ERR-1.4.1", m["ERR.F1.R1.C4.S1"], x["err_code"])
        c.equal("python-hl7 ERR-1.4.2", m["ERR.F1.R1.C4.S2"], x["err_text"])


def main(paths) -> int:
    failures = []
    if not paths:
        print("usage: validate_hl7v2.py FILE.hl7 [FILE.hl7 ...]", file=sys.stderr)
        return 2
    for path in paths:
        c = Checker(path)
        with open(path, "rb") as f:
            raw = f.read()
        with open(re.sub(r"\.hl7$", ".json", path), encoding="utf-8") as f:
            expected = json.load(f)
        text = decode(raw)
        for check in (check_hl7apy, check_python_hl7):
            try:
                check(c, text, expected)
            except Exception as e:  # a parser refusing the message is a failure
                c.failures.append(f"{path}: {check.__name__} raised {type(e).__name__}: {e}")
        if c.failures:
            failures.extend(c.failures)
        else:
            print(f"OK {path}")
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
