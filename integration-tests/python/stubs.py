"""Python stubs generated from the project's .proto files with grpcio-tools,
shared by the independent clients in this folder."""

import atexit
import os
import shutil
import sys
import tempfile

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


def generate_stubs(proto_root, service_proto):
    """Compiles the canonical model and `service_proto` into a temporary
    folder (removed when the program ends) and makes the generated modules
    importable."""
    out = tempfile.mkdtemp(prefix="lhcie-py-stubs-")
    atexit.register(shutil.rmtree, out, True)
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
