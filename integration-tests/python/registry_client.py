"""An independent client of the consent and ISA registry, written against the
.proto files only.

Run by the Rust integration test `third_party_clients`: it generates Python
stubs from proto/ with grpcio-tools, then, against a registry seeded with the
test agreement, over mutual TLS with the `registry-admin` client certificate,
  1. asks for the node's status and expects it to lead;
  2. records a patient's refusal of the Royal Free (RAL), naming someone
     else in the lhcie-actor metadata, and expects the change recorded as
     made by its certificate's identity, and gets the revision;
  3. asks for a decision and expects it denied, with the reason and the
     directive that decided it;
  4. watches the change feed from the start until a heartbeat confirms the
     leader's state at or past that revision, and expects the directive
     among the changes;
  5. tries a change without a client certificate and expects it refused.
Prints one line per step as `STEP <name> <detail>` and exits non-zero on any
surprise.
"""

import argparse
import sys

from stubs import generate_stubs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--nhs-number", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()

    generate_stubs(args.proto, "lhcie/registry/v1/registry.proto")
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp
    from lhcie.canonical.v1 import envelope_pb2
    from lhcie.registry.v1 import registry_pb2, registry_pb2_grpc

    options = [("grpc.ssl_target_name_override", "localhost")]
    with open(args.ca, "rb") as ca, open(args.cert, "rb") as cert, open(args.key, "rb") as key:
        ca, cert, key = ca.read(), cert.read(), key.read()
    channel = grpc.secure_channel(args.endpoint, grpc.ssl_channel_credentials(ca, key, cert), options=options)
    registry = registry_pb2_grpc.ConsentRegistryStub(channel)
    actor = (("lhcie-actor", "python-patient-portal"),)

    status = registry.Status(registry_pb2.StatusRequest(), timeout=10)
    if not status.is_leader:
        sys.exit(f"node {status.node_id} does not lead")
    print(f"STEP status node={status.node_id} leader=true revision={status.revision}", flush=True)

    since = Timestamp()
    since.FromSeconds(1_700_000_000)
    directive = registry_pb2.Directive(
        directive_id="PY-DIR-1",
        nhs_number=args.nhs_number,
        deny_organisation="RAL",
        valid_from=since,
        source=registry_pb2.DIRECTIVE_SOURCE_PATIENT_ACCOUNT,
    )
    reply = registry.SetDirective(registry_pb2.SetDirectiveRequest(directive=directive), metadata=actor, timeout=10)
    if reply.directive.recorded_by != "urn:lhcie:service:registry-admin":
        sys.exit(f"recorded by {reply.directive.recorded_by!r}")
    revision = reply.revision
    print(f"STEP set-directive revision={revision}", flush=True)

    decision = registry.Decide(
        registry_pb2.DecideRequest(
            nhs_number=args.nhs_number,
            sender_ods="RYJ",
            recipient_ods="RAL",
            category=envelope_pb2.CATEGORY_DISCHARGE_SUMMARY,
            purpose=envelope_pb2.PURPOSE_OF_USE_DIRECT_CARE,
        ),
        timeout=10,
    )
    if decision.permitted or decision.reason != "patient-denied-organisation" or list(decision.directive_ids) != ["PY-DIR-1"]:
        sys.exit(f"unexpected decision: {decision}")
    print(f"STEP decide permitted=false reason={decision.reason} isa={decision.isa_id}", flush=True)

    seen = False
    for event in registry.Watch(registry_pb2.WatchRequest(from_revision=0), timeout=20):
        kind = event.WhichOneof("event")
        if kind == "directive" and event.directive.directive_id == "PY-DIR-1":
            seen = True
        if kind == "heartbeat" and event.heartbeat.leader_confirmed and event.heartbeat.revision >= revision:
            if not seen:
                sys.exit("a confirmed heartbeat came before the directive")
            print(f"STEP watch confirmed-revision={event.heartbeat.revision} directive-seen=true", flush=True)
            break

    anonymous = grpc.secure_channel(args.endpoint, grpc.ssl_channel_credentials(ca), options=options)
    try:
        registry_pb2_grpc.ConsentRegistryStub(anonymous).SetDirective(
            registry_pb2.SetDirectiveRequest(directive=directive), metadata=actor, timeout=10
        )
        sys.exit("a change without a client certificate was accepted")
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.OK:
            sys.exit("a change without a client certificate was accepted")
        print(f"STEP anonymous-change refused={error.code().name}", flush=True)


if __name__ == "__main__":
    main()
