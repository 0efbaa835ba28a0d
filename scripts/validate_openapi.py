"""Validates the OpenAPI document a server serves with openapi-spec-validator,
an implementation independent of the one that wrote it (utoipa).

Usage: validate_openapi.py URL (of /openapi.json). Prints the validator's
errors and exits 1 when the document is invalid; prints "valid <version>
<paths>" otherwise.
"""

import json
import sys
import urllib.request

from openapi_spec_validator import OpenAPIV31SpecValidator


def main() -> int:
    with urllib.request.urlopen(sys.argv[1], timeout=30) as answer:
        document = json.load(answer)
    errors = list(OpenAPIV31SpecValidator(document).iter_errors())
    for error in errors:
        path = "/".join(str(p) for p in error.absolute_path)
        print(f"{path}: {error.message}", file=sys.stderr)
    if errors:
        return 1
    print(f"valid {document.get('openapi')} {len(document.get('paths', {}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
