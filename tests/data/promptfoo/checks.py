"""Custom checks the promptfoo fixture names with ``file://checks.py:FUNCTION`` (no side effects)."""


def get_assert(output, context):
    """promptfoo's default entry point: the customer is named in the reply."""
    named = context["vars"]["customer"] in output
    return {"pass": named, "score": 1.0 if named else 0.0, "reason": "customer named"}


def mentions_product(output, context):
    """The reply names the product it supports."""
    return context["vars"]["product"] in output
