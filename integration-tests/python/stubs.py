"""Python stubs generated from the project's .proto files with grpcio-tools,
shared by the independent clients in this folder."""

import os
import sys

CANONICAL = [
    "lhcie/canonical/v1/common.proto",
    "lhcie/canonical/v1/patient.proto",
    "lhcie/canonical/v1/document.proto",
    "lhcie/canonical/v1/care_event.proto",
    "lhcie/canonical/v1/result.proto",
    "lhcie/canonical/v1/referral.proto",
    "lhcie/canonical/v1/acknowledgement.proto",
    "lhcie/canonical/v1/envelope.proto",
]


def generate_stubs(proto_root, out, service_proto):
    """Compiles the canonical model and `service_proto` into `out` and makes
    the generated modules importable."""
    from grpc_tools import protoc
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = CANONICAL + [service_proto]
    code = protoc.main(
        ["protoc", f"-I{proto_root}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"] + files
    )
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, out)
