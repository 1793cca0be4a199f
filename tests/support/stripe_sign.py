"""Signs Stripe webhook payloads with the official `stripe` library (an implementation
independent of ours), for the integration tests.

Reads a JSON list of {"payload": str, "secrets": [str], "timestamp": int} on stdin and prints
a JSON list of Stripe-Signature header values: one v1 per secret, as Stripe sends during an
endpoint secret roll. Each header is checked with stripe.Webhook.construct_event against its
first secret before it is printed, so a header this prints is one Stripe's library accepts.
"""
import json
import sys

import stripe

requests = json.load(sys.stdin)
headers = []
for request in requests:
    payload, secrets, t = request["payload"], request["secrets"], request["timestamp"]
    signatures = [
        stripe.WebhookSignature._compute_signature(f"{t}.{payload}", secret) for secret in secrets
    ]
    header = ",".join([f"t={t}"] + [f"v1={s}" for s in signatures])
    # The library's own check (its tolerance only refuses old timestamps).
    stripe.WebhookSignature.verify_header(payload, header, secrets[0], tolerance=None)
    headers.append(header)
json.dump(headers, sys.stdout)
