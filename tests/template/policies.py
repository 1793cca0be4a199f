"""Checks what template.yaml grants each function, as SAM's own translator expands it (policy
templates included): the least-privilege rules of the README's Security section. Run by
scripts/test with the venv's Python; exits non-zero naming every rule that is broken.

This reads the expanded template; it does not run the functions under IAM. What each function
actually needs is shown by the deployed-shape rehearsal (issue 13), not here."""

import json
import sys

import yaml
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader  # noqa: F401
from samtranslator.translator.transform import transform


class Loader(yaml.SafeLoader):
    pass


def intrinsic(tag):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Ref" if tag == "Ref" else f"Fn::{tag}": value}

    return construct


for tag in ["Ref", "GetAtt", "Sub", "If", "Not", "Equals", "Join", "Select", "Split", "And", "Or"]:
    Loader.add_constructor(f"!{tag}", intrinsic(tag))


class NoManagedPolicies:
    def load(self):
        return {}


def expand(path):
    template = yaml.load(open(path), Loader=Loader)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # The translator wants an S3 location; the code itself is not looked at.
            resource["Properties"]["CodeUri"] = "s3://bucket/key"
    return template, transform(template, {}, NoManagedPolicies())


def statements(role):
    for policy in role["Properties"].get("Policies", []):
        document = policy["PolicyDocument"]
        found = document["Statement"]
        yield from found if isinstance(found, list) else [found]


def as_list(value):
    return value if isinstance(value, list) else [value]


def main(path):
    source, expanded = expand(path)
    resources = expanded["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    problems = []

    for name, function in functions.items():
        env = function["Properties"].get("Environment", {}).get("Variables", {})
        if "DATABASE_URL" in env:
            problems.append(f"{name}: DATABASE_URL is a plaintext environment variable")
        if "DATABASE_SECRET_ID" not in env:
            problems.append(f"{name}: no DATABASE_SECRET_ID")
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        readable = set()
        for statement in statements(role):
            actions = [a.lower() for a in as_list(statement.get("Action", []))]
            text = json.dumps(statement.get("Resource"))
            if "secretsmanager:getsecretvalue" in actions:
                for secret in ("AppSecret", "WebhookSecret", "DatabaseSecret"):
                    if f'"{secret}"' in text:
                        readable.add(secret)
            for action in actions:
                if action.startswith("s3:") and (
                    action in ("s3:*", "s3:deleteobject", "s3:putlifecycleconfiguration")
                    or "bucket" in action
                ):
                    problems.append(f"{name}: may {action}")
                if action.startswith("s3:") and not any(
                    f"/{prefix}*" in text for prefix in ("webhook-bodies/", "recordings/", "exports/")
                ):
                    problems.append(f"{name}: {action} not limited to a key prefix")
        if "DatabaseSecret" not in readable:
            problems.append(f"{name}: cannot read the database secret")
        if name.startswith("WebhookIngestFunction"):
            if "AppSecret" in readable:
                problems.append(f"{name}: the internet-facing ingest may read the app secret")
            if "APP_SECRET_ID" in env:
                problems.append(f"{name}: is told the app secret's id")
            if "ReservedConcurrentExecutions" not in function["Properties"]:
                problems.append(f"{name}: no reserved concurrency")
        elif "WebhookSecret" in readable and not name.startswith("ApiAdminFunction"):
            problems.append(f"{name}: may read the webhook secret")

    rules = (
        source["Resources"]["RecordingsBucket"]["Properties"]
        .get("LifecycleConfiguration", {})
        .get("Rules", [])
    )
    for prefix in ("webhook-bodies/", "exports/"):
        if not any(r.get("Prefix") == prefix and r.get("ExpirationInDays") for r in rules):
            problems.append(f"RecordingsBucket: {prefix} never expire")

    # A credentialed browser request is preceded by an OPTIONS preflight, which must reach the
    # function answering CORS: every browser route takes ANY (health and the document aside).
    for name, resource in source["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            route = event["Properties"]
            path, method = route["Path"], route["Method"].upper()
            browser = not path.startswith(("/webhooks", "/billing/webhook", "/api/contact-lookup", "/api/lookup"))
            if browser and method not in ("ANY",) and path not in ("/health", "/api/openapi.json"):
                problems.append(f"{name}: {method} {path} leaves its preflight unrouted")

    # A request waits on an outside service at most its attempts' timeouts and the backoffs
    # between them (shared/src/config.rs and clients/retry.rs; Stripe's one retry is on a network
    # error), after a database connect: all of it must end before the function is stopped, so
    # that the answer is our 502 in the design's format, with CORS, not Lambda's bare 500.
    http_functions = {
        name
        for name, resource in source["Resources"].items()
        if any(e["Type"] == "HttpApi" for e in resource.get("Properties", {}).get("Events", {}).values())
    }
    for name, function in functions.items():
        # Ingest answers from its own checks and AWS alone.
        if name not in http_functions or name.startswith("WebhookIngestFunction"):
            continue
        env = function["Properties"].get("Environment", {}).get("Variables", {})
        number = lambda key, default: int(env.get(key, default))  # noqa: E731

        def waited(prefix, timeout, retries, base, cap):
            attempts = number(f"{prefix}_MAX_RETRIES", retries) + 1
            backoff = sum(min(base * 2**i * 1.2, cap) for i in range(attempts - 1))
            return number(f"{prefix}_TIMEOUT_MS", timeout) * attempts + backoff

        budgets = {
            "ElevenLabs": waited("ELEVENLABS", 10_000, 3, 500, 8_000),
            "Stack Auth": waited("STACK", 10_000, 2, 200, 2_000),
            "Stripe": number("STRIPE_TIMEOUT_MS", 10_000) * 2,
        }
        limit = function["Properties"].get("Timeout", 3) * 1000
        connect = number("DATABASE_CONNECT_BUDGET_MS", 5_000)
        for service, ms in budgets.items():
            if connect + ms + 1_000 > limit:
                problems.append(
                    f"{name}: {service} may take {ms / 1000:.1f} s after a {connect / 1000:.0f} s "
                    f"connect, past its {limit / 1000:.0f} s timeout"
                )

    # A schedule's name is unique per account and region: named by CloudFormation, a second
    # stack of the template deploys beside the first.
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Scheduler::Schedule" and "Name" in resource["Properties"]:
            problems.append(f"{name}: a fixed schedule name")

    for problem in problems:
        print(f"template policy: {problem}", file=sys.stderr)
    print(f"{len(functions)} functions checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
