"""Validates every *.json file in a directory as a FHIR R4 resource with
fhir.resources (its R4B models, which accept the R4 content we write).

Usage: validate_fhir.py <dir>. Prints one line per file; exits 1 if any
file fails, 2 on bad usage. Used by lhcie-fhir-r4's tests to check the
Bundles it renders against an independent implementation.
"""

import json
import pathlib
import sys

from fhir.resources.R4B import get_fhir_model_class


def validate(path: pathlib.Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = get_fhir_model_class(data["resourceType"])
        resource = model.model_validate(data)
        # Entries are validated as their own resource types too.
        for i, entry in enumerate(data.get("entry", [])):
            inner = entry.get("resource")
            if inner is not None:
                get_fhir_model_class(inner["resourceType"]).model_validate(inner)
        del resource
    except Exception as e:  # report every failure, keep going
        return f"{type(e).__name__}: {e}"
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: validate_fhir.py <dir>", file=sys.stderr)
        return 2
    files = sorted(pathlib.Path(sys.argv[1]).glob("*.json"))
    if not files:
        print("no *.json files to validate", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        error = validate(path)
        if error is None:
            print(f"ok {path.name}")
        else:
            failed += 1
            print(f"FAIL {path.name}: {error}")
    print(f"{len(files) - failed} valid, {failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
