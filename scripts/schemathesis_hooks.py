"""Schemathesis hooks of `tests/e2e/openapi.rs` (loaded through `SCHEMATHESIS_HOOKS`).

CPython 3.11 (Debian 12's 3.11.2 among others) sometimes raises `SystemError: AST
constructor recursion depth mismatch` from `ast.parse` called deep in a stack. Hypothesis
parses source there only to *describe* a lambda filter for its reports, so that failure
aborted a fuzzing run for no fault of the API. A description that cannot be made is answered
with Hypothesis' own text for an unknown lambda instead.
"""

from hypothesis.internal import lambda_sources

_describe = lambda_sources._lambda_description


def _lambda_description(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _lambda_description
