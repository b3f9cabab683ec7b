"""An independent client of the hub, written against the .proto files only.

Run by the Rust integration test `third_party_clients`: it generates Python
stubs from proto/ with grpcio-tools, then
  1. submits a discharge summary over gRPC with mutual TLS (grpcio) and
     expects it forwarded;
  2. submits one with an NHS number that fails the modulus 11 check and
     expects the precise rejection;
  3. publishes a discharge summary to the ingress exchange over AMQP (pika)
     as the exchange's own broker user, with the user-id property.
Prints one line per step as `STEP <name> <detail>` and exits non-zero on any
surprise.
"""

import argparse
import sys
import time
import uuid

from stubs import generate_stubs


def discharge_summary(nhs_number):
    from google.protobuf.timestamp_pb2 import Timestamp
    from lhcie.canonical.v1 import common_pb2, document_pb2, envelope_pb2, patient_pb2

    now = Timestamp()
    now.GetCurrentTime()
    document = document_pb2.ClinicalDocument(
        document_id="PY-DS-" + uuid.uuid4().hex[:8],
        version=1,
        document_type=common_pb2.Coding(system="http://snomed.info/sct", code="373942005", display="Discharge summary"),
        title="Discharge summary (from a Python client)",
        status=document_pb2.DOCUMENT_STATUS_FINAL,
        sections=[document_pb2.DocumentSection(title="Diagnoses", text="Synthetic test.", media_type="text/plain")],
    )
    return envelope_pb2.Envelope(
        message_id=str(uuid.uuid4()),
        created_at=now,
        sender=envelope_pb2.Party(ods_code="RYJ", exchange_id="nwl-imperial", sending_system="python-test"),
        addressing=envelope_pb2.Addressing(recipients=[envelope_pb2.Recipient(ods_code="RAL")]),
        purpose=envelope_pb2.PURPOSE_OF_USE_DIRECT_CARE,
        category=envelope_pb2.CATEGORY_DISCHARGE_SUMMARY,
        patient=patient_pb2.PatientIdentity(nhs_number=nhs_number),
        document=document,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--amqp-user", required=True)
    parser.add_argument("--ingress-exchange", required=True)
    args = parser.parse_args()

    generate_stubs(args.proto, "lhcie/hub/v1/exchange.proto")
    import grpc
    from lhcie.hub.v1 import exchange_pb2, exchange_pb2_grpc

    with open(args.ca, "rb") as ca, open(args.cert, "rb") as cert, open(args.key, "rb") as key:
        credentials = grpc.ssl_channel_credentials(ca.read(), key.read(), cert.read())
    channel = grpc.secure_channel(args.endpoint, credentials, options=[("grpc.ssl_target_name_override", "localhost")])
    stub = exchange_pb2_grpc.ExchangeStub(channel)

    good = discharge_summary("9434765919")
    bad = discharge_summary("9434765918")
    answers = {a.message_id: a for a in stub.Submit(iter([exchange_pb2.SubmitRequest(envelope=e) for e in (good, bad)]), timeout=30)}

    answer = answers[good.message_id]
    if answer.WhichOneof("outcome") != "accepted" or answer.accepted.recipients[0].disposition != exchange_pb2.DISPOSITION_FORWARDED:
        sys.exit(f"the good envelope was not forwarded: {answer}")
    print(f"STEP grpc-forwarded {good.message_id}", flush=True)

    answer = answers[bad.message_id]
    if answer.WhichOneof("outcome") != "rejected" or answer.rejected.reason != exchange_pb2.REJECT_REASON_INVALID_NHS_NUMBER:
        sys.exit(f"the bad envelope was not rejected as an invalid NHS number: {answer}")
    if "9434765918" in answer.rejected.detail:
        sys.exit("the rejection repeated the NHS number")
    print(f"STEP grpc-rejected {answer.rejected.detail}", flush=True)

    import pika

    connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    amqp = connection.channel()
    amqp.confirm_delivery()
    published = discharge_summary("9434765919")
    amqp.basic_publish(
        exchange=args.ingress_exchange,
        routing_key="",
        body=published.SerializeToString(),
        properties=pika.BasicProperties(
            delivery_mode=2,
            content_type="application/x-protobuf",
            message_id=published.message_id,
            user_id=args.amqp_user,
        ),
        mandatory=True,
    )
    connection.close()
    print(f"STEP amqp-published {published.message_id}", flush=True)


if __name__ == "__main__":
    main()
