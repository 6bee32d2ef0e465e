"""The sandbox provider: a small HTTP server that sells commitments without spending money, with a ledger of its
own in PostgreSQL (schema `sandbox_provider`), idempotency by client token, and failures tests can inject.

    python -m finops_purchase.sandbox        # FINOPS_HTTP_PORT (default 8066), DATABASE_URL
"""
