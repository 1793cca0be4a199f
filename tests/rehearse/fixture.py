"""The deployed shape, locally, from template.yaml as SAM expands it (scripts/rehearse).

Reads the expanded template (tests/template/policies.py's `expand`, SAM's own translator) and
  - creates its queues, table, bucket and secrets in moto (the secrets' keys then filled in
    with the local values, as an operator does after the first deploy), one IAM user per
    function holding exactly its role's inline policies (Refs, GetAtts and Subs resolved to the
    moto resources), and turns moto's IAM enforcement on (/moto-api/reset-auth);
  - runs every function's real binary as its own process under its own cargo-lambda Runtime
    API emulator, with exactly the template's environment (Globals and its own, resolved) plus
    the local endpoints (AWS_ENDPOINT_URL, the simulators, the SMTP sink) and its user's keys;
  - invokes the migrate function once, as the deploy does;
  - answers HTTP on GATEWAY_PORT as an HTTP API would (routes, payload format 2.0, limits,
    integration timeout), polls the queue of each SQS event source mapping into its function
    (batch size and window, partial batch failures; the queue's redrive policy is moto's), and
    fires each schedule with its Input (rates divided by REHEARSE_SCHEDULE_SPEEDUP);
  - serves a control API on CONTROL_PORT: POST /schedules/<name> fires a schedule now and
    answers the function's result; GET /receives/<message id> lists each time a poller
    received a message (when, in which batch, whether it was reported failed); GET
    /resources/<logical id> answers a resource's resolved properties;
  - on SIGTERM, prints per function: sizes (the release arm64 bootstrap when scripts/build-lambdas
    made it after the debug binary that ran, else a dash; the debug binary, stripped), init
    (exec -> first Runtime API `next`), first invocation's latency and peak RSS (VmHWM), as a
    Markdown table and results.json.

Not modelled: Lambda scaling out (one process per function, invocations take turns), the
bucket policy (its aws:SecureTransport deny would refuse moto's plain HTTP), the managed
policies SAM attaches (logs, X-Ray; the SQS execution role is used by the poller here, which
reads the queue with the fixture's own key as the Lambda service does with the role's).
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "template"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from bench_start import Proxy  # noqa: E402
from policies import Loader, expand  # noqa: E402
import yaml  # noqa: E402

env = os.environ.get
STATE = env("REHEARSE_STATE")
REGION = env("AWS_REGION", "us-east-1")
ACCOUNT = "123456789012"
ENDPOINT = env("AWS_ENDPOINT_URL")
BIN = env("REHEARSE_BIN")
CARGO_LAMBDA = env("CARGO_LAMBDA")
LAMBDA_DIR = env("REHEARSE_LAMBDA_DIR")  # scripts/build-lambdas' output: <function>/bootstrap
SPEEDUP = float(env("REHEARSE_SCHEDULE_SPEEDUP", "60"))

REQUEST_LIMIT = 10 * 1024 * 1024  # HTTP API's payload quota
LAMBDA_REQUEST_LIMIT = 6 * 1024 * 1024  # synchronous invocation payload
LAMBDA_RESPONSE_LIMIT = 6_291_556  # what Lambda's ResponseSizeTooLarge names
INTEGRATION_TIMEOUT = 30.0

# Deployed, these are the real services' defaults; locally the stack's stand-ins. Everything
# else a function sees comes from the template.
LOCAL_ENDPOINTS = [
    "AWS_ENDPOINT_URL", "STACK_API_URL", "JWKS_URL", "JWT_ISSUER", "ELEVENLABS_BASE_URL",
    "STRIPE_BASE_URL", "SMTP_PORT", "SMTP_TLS",
    # Short timings so rotations and retries show within a test's patience (as scripts/test).
    "SECRETS_TTL_SECONDS", "ELEVENLABS_TIMEOUT_MS", "ELEVENLABS_RETRY_BASE_MS", "STRIPE_TIMEOUT_MS",
    "SMTP_TIMEOUT_MS",
]


def log(message):
    print(f"[rehearse] {message}", file=sys.stderr, flush=True)


def aws(service, key=None):
    credentials = key or {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return boto3.client(service, region_name=REGION, endpoint_url=ENDPOINT, **credentials)


class Template:
    """The expanded template, with intrinsics resolved against the moto resources."""

    NO_VALUE = object()

    def __init__(self, path, parameters):
        with open(path) as f:
            original = yaml.load(f, Loader=Loader)["Resources"]
        # Which crate each function is (expand() replaces the CodeUri).
        self.code = {n: os.path.basename(r["Properties"]["CodeUri"].rstrip("/"))
                     for n, r in original.items() if r["Type"] == "AWS::Serverless::Function"}
        self.source, self.expanded = expand(path)
        self.resources = self.expanded["Resources"]
        self.parameters = {}
        for name, spec in self.source.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                raise SystemExit(f"no value for the template parameter {name}")
            self.parameters[name] = str(value)
        self.refs = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                     "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "rehearse"}
        self.refs.update(self.parameters)
        self.atts = {}

    def condition(self, name):
        return self.resolve(self.source["Conditions"][name])

    def resolve(self, value):
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not self.NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.NO_VALUE if arg == "AWS::NoValue" else self.refs[arg]
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.atts[(logical, attribute)]
            if key == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

                def substitute(match):
                    name = match.group(1)
                    if name in names:
                        return str(names[name])
                    if "." in name and name not in self.refs:
                        return str(self.atts[tuple(name.split(".", 1))])
                    return str(self.refs[name])

                return re.sub(r"\$\{([^}!]+)\}", substitute, text)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.resolve(arg[1]))
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not self.NO_VALUE}

    def of_type(self, kind):
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}


def create_resources(template, secret_values):
    """Creates the template's queues, table, bucket and secrets; fills its refs and atts."""
    sqs, dynamo, s3, sm = aws("sqs"), aws("dynamodb"), aws("s3"), aws("secretsmanager")
    queues = template.of_type("AWS::SQS::Queue")
    # Dead-letter queues first: a redrive policy names its target's ARN.
    for name in sorted(queues, key=lambda n: "RedrivePolicy" in queues[n]["Properties"]):
        properties = template.resolve(queues[name]["Properties"])
        attributes = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
            if key in properties:
                attributes[key] = str(properties[key])
        if "VisibilityTimeout" in attributes and env("REHEARSE_VISIBILITY_TIMEOUT"):
            attributes["VisibilityTimeout"] = env("REHEARSE_VISIBILITY_TIMEOUT")
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
        queue_name = f"rehearse-{name}"
        url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        template.refs[name] = url
        template.atts[(name, "QueueName")] = queue_name
        template.atts[(name, "QueueUrl")] = url
        template.atts[(name, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"
    for name, table in template.of_type("AWS::DynamoDB::Table").items():
        properties = template.resolve(table["Properties"])
        table_name = f"rehearse-{name}"
        dynamo.create_table(TableName=table_name, AttributeDefinitions=properties["AttributeDefinitions"],
                            KeySchema=properties["KeySchema"], BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"))
        if "TimeToLiveSpecification" in properties:
            dynamo.update_time_to_live(TableName=table_name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])
        template.refs[name] = table_name
        template.atts[(name, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"
    for name in template.of_type("AWS::S3::Bucket"):
        bucket = f"rehearse-{name.lower()}"
        s3.create_bucket(Bucket=bucket)
        template.refs[name] = bucket
        template.atts[(name, "Arn")] = f"arn:aws:s3:::{bucket}"
    for name, secret in template.of_type("AWS::SecretsManager::Secret").items():
        properties = template.resolve(secret["Properties"])
        if "SecretString" in properties:
            document = json.loads(properties["SecretString"])
        else:
            generate = properties["GenerateSecretString"]
            document = json.loads(generate["SecretStringTemplate"])
            document[generate["GenerateStringKey"]] = uuid.uuid4().hex + uuid.uuid4().hex
        arn = sm.create_secret(Name=f"rehearse/{name}", SecretString=json.dumps(document))["ARN"]
        # After the first deploy the operator puts the real keys into the keys the template made.
        filled = {k: secret_values.get(k, v) for k, v in document.items()}
        if filled != document:
            sm.put_secret_value(SecretId=arn, SecretString=json.dumps(filled))
        template.refs[name] = arn
    for name in template.of_type("AWS::Lambda::Function"):
        template.refs[name] = name
        template.atts[(name, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    for name in template.of_type("AWS::IAM::Role"):
        template.atts[(name, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{name}"


def create_principals(template):
    """One IAM user per function with its role's inline policies; a harness user with all."""
    iam = aws("iam")
    keys = {}

    def user(name, documents):
        iam.create_user(UserName=name)
        for index, document in enumerate(documents):
            document.setdefault("Version", "2012-10-17")
            iam.put_user_policy(UserName=name, PolicyName=f"p{index}", PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    for name, function in template.of_type("AWS::Lambda::Function").items():
        role = template.resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        documents = [template.resolve(p["PolicyDocument"]) for p in role["Properties"].get("Policies", [])]
        keys[name] = user(f"rehearse-{name}", documents)
    harness = user("rehearse-harness", [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}])
    request = urllib.request.Request(f"{ENDPOINT}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()
    return keys, harness


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    import socket
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


class InvocationError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Function:
    """One function: its emulator, its process, and what was measured of it."""

    def __init__(self, name, binary, environment, timeout):
        self.name, self.binary, self.environment, self.timeout = name, binary, environment, timeout
        self.lock = threading.Lock()
        self.emulator_port = free_port()
        self.log = open(os.path.join(STATE, "logs", f"fn-{name}.log"), "ab")
        self.emulator = subprocess.Popen(
            [CARGO_LAMBDA, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(self.emulator_port)],
            stdout=self.log, stderr=self.log, cwd=ROOT)
        self.proxy = None
        self.process = None
        self.init_ms = None
        self.first_ms = None
        self.invocations = 0

    def start(self):
        wait_port(self.emulator_port)
        if self.proxy is None:
            self.proxy = Proxy(self.emulator_port)
            self.environment["AWS_LAMBDA_RUNTIME_API"] = f"http://127.0.0.1:{self.proxy.port}/.rt"
        self.proxy.reset()
        started = time.monotonic()
        self.process = subprocess.Popen([self.binary], env=self.environment, stdout=self.log, stderr=self.log, cwd=STATE)
        if not self.proxy.seen.wait(60):
            raise SystemExit(f"{self.name} never asked for an invocation (exit {self.process.poll()})")
        if self.init_ms is None:
            self.init_ms = (self.proxy.first_next - started) * 1000

    def restart(self):
        """After a timeout Lambda throws the execution environment away."""
        self.process.kill()
        self.process.wait()
        # The emulator still holds the timed-out invocation: a fresh one for the new process.
        self.emulator.kill()
        self.emulator.wait()
        self.emulator_port = free_port()
        self.emulator = subprocess.Popen(
            [CARGO_LAMBDA, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(self.emulator_port)],
            stdout=self.log, stderr=self.log, cwd=ROOT)
        self.proxy = None
        self.start()

    def invoke(self, payload, timeout=None):
        """The function's answer (bytes); InvocationError when it failed or timed out."""
        limit = self.timeout if timeout is None else min(timeout, self.timeout)
        with self.lock:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.emulator_port}/2015-03-31/functions/_/invocations",
                data=payload, method="POST", headers={"Content-Type": "application/json"})
            sent = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=limit) as response:
                    body = response.read()
                    failed = response.headers.get("X-Amz-Function-Error")
            except urllib.error.HTTPError as error:
                body, failed = error.read(), "Unhandled"
            except (TimeoutError, OSError) as error:
                if time.monotonic() - sent < limit - 0.5:
                    raise InvocationError(500, f"{self.name}: {error}") from error
                log(f"{self.name} timed out after {limit:.0f} s: restarting it")
                self.restart()
                raise InvocationError(503 if limit >= INTEGRATION_TIMEOUT else 500, "timeout") from error
            elapsed = (time.monotonic() - sent) * 1000
            self.invocations += 1
            if self.first_ms is None:
                self.first_ms = elapsed
        if failed or b'"errorType"' in body[:200] and b'"errorMessage"' in body:
            raise InvocationError(500, f"{self.name} failed: {body[:500]!r}")
        if len(body) > LAMBDA_RESPONSE_LIMIT:
            raise InvocationError(500, f"{self.name}: response of {len(body)} bytes is over Lambda's limit")
        return body

    def peak_rss_kb(self):
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None

    def stop(self):
        for process in (self.process, self.emulator):
            if process is not None and process.poll() is None:
                process.terminate()
        for process in (self.process, self.emulator):
            if process is not None:
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()


def function_environment(template, name, key):
    properties = template.resources[name]["Properties"]
    variables = template.resolve(properties.get("Environment", {}).get("Variables", {}))
    environment = {k: str(v) for k, v in variables.items()}
    environment.update({k: os.environ[k] for k in LOCAL_ENDPOINTS if k in os.environ})
    environment.update(
        AWS_ACCESS_KEY_ID=key["aws_access_key_id"], AWS_SECRET_ACCESS_KEY=key["aws_secret_access_key"],
        AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
        AWS_LAMBDA_FUNCTION_NAME="_", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(properties.get("MemorySize", 128)),
        PATH="/usr/bin:/bin",
    )
    return environment


# ---- the HTTP API ----------------------------------------------------------------------------

class Route:
    def __init__(self, method, path, function):
        self.method, self.path, self.function = method, path, function
        self.segments = path.strip("/").split("/")
        self.greedy = self.segments[-1].endswith("+}")
        self.literals = sum(1 for s in self.segments if not s.startswith("{"))
        self.key = f"{method} {path}"

    def match(self, path):
        parts = path.strip("/").split("/")
        params = {}
        for index, segment in enumerate(self.segments):
            if segment.endswith("+}"):
                rest = parts[index:]
                if not rest or rest == [""]:
                    return None
                params[segment[1:-2]] = "/".join(rest)
                return params
            if index >= len(parts):
                return None
            if segment.startswith("{"):
                if parts[index] == "":
                    return None
                params[segment[1:-1]] = parts[index]
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(self.segments) else None


def routes_of(template):
    """Every route of every HttpApi, as SAM wrote them into the API's OpenAPI body."""
    routes, cors = [], False
    for api in template.of_type("AWS::ApiGatewayV2::Api").values():
        body = api["Properties"].get("Body", {})
        cors = cors or "x-amazon-apigateway-cors" in body or "CorsConfiguration" in api["Properties"]
        for path, operations in body.get("paths", {}).items():
            for method, operation in operations.items():
                uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
                function = re.search(r"\$\{(\w+)\.Arn\}", uri).group(1)
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                routes.append(Route(verb, path, function))
    return routes, cors


def select(routes, method, path):
    """HTTP API's choice: a full match over a greedy one, then the most literal segments, then a
    route of the method over ANY."""
    best = None
    for route in routes:
        if route.method not in (method, "ANY"):
            continue
        params = route.match(path)
        if params is None:
            continue
        rank = (not route.greedy, route.literals, route.method != "ANY")
        if best is None or rank > best[0]:
            best = (rank, route, params)
    return best


TEXT = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|.*\+(json|xml))", re.I)


class Gateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes = []
    functions = {}
    cors = False

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=(), cookies=()):
        self.send_response(status)
        sent = set()
        for name, value in headers:
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
            sent.add(name.lower())
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        if "content-type" not in sent and body:
            self.send_header("Content-Type", "application/json")
        self.send_header("apigw-requestid", self.request_id)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def message(self, status, text):
        self.answer(status, json.dumps({"message": text}).encode())

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, size = [], 0
            while True:
                length = int(self.rfile.readline().split(b";")[0], 16)
                if length == 0:
                    self.rfile.readline()
                    break
                size += length
                if size > REQUEST_LIMIT:
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > REQUEST_LIMIT:
            return None
        return self.rfile.read(length)

    def handle_any(self):
        self.request_id = base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode()
        raw_path, _, query = self.path.partition("?")
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return self.message(413, "Request Entity Too Large")
        chosen = select(self.routes, self.command, raw_path)
        if chosen is None:
            return self.message(404, "Not Found")
        _, route, params = chosen
        event = self.event(route, params, raw_path, query, body)
        payload = json.dumps(event).encode()
        if len(payload) > LAMBDA_REQUEST_LIMIT:
            return self.message(413, "Request Entity Too Large")
        try:
            answer = json.loads(self.functions[route.function].invoke(payload, INTEGRATION_TIMEOUT))
        except InvocationError as error:
            log(f"{self.command} {raw_path}: {error}")
            return self.message(error.status, "Service Unavailable" if error.status == 503 else "Internal Server Error")
        except ValueError:
            return self.message(500, "Internal Server Error")
        if not isinstance(answer, dict) or "statusCode" not in answer:
            # Format 2.0 reads any other valid JSON as a 200 with that JSON as its body.
            return self.answer(200, json.dumps(answer).encode())
        content = answer.get("body") or ""
        content = base64.b64decode(content) if answer.get("isBase64Encoded") else content.encode()
        headers = list((answer.get("headers") or {}).items())
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers += [(name, v) for v in values]
        self.answer(int(answer["statusCode"]), content, headers, answer.get("cookies") or [])

    def event(self, route, params, raw_path, query, body):
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            if name == "cookie":
                continue
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        headers.setdefault("x-forwarded-for", self.client_address[0])
        headers.setdefault("x-forwarded-proto", "https")
        cookies = [c.strip() for h in self.headers.get_all("Cookie") or [] for c in h.split(";") if c.strip()]
        query_parameters = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            query_parameters[name] = f"{query_parameters[name]},{value}" if name in query_parameters else value
        now = datetime.now(timezone.utc)
        text = TEXT.match(self.headers.get("Content-Type", "")) is not None
        event = {
            "version": "2.0",
            "routeKey": route.key,
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT, "apiId": "rehearse", "domainName": self.headers.get("Host", "localhost"),
                "domainPrefix": "rehearse",
                "http": {"method": self.command, "path": raw_path, "protocol": "HTTP/1.1",
                         "sourceIp": self.client_address[0], "userAgent": self.headers.get("User-Agent", "")},
                "requestId": self.request_id, "routeKey": route.key, "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": bool(body) and not text,
        }
        if cookies:
            event["cookies"] = cookies
        if query_parameters:
            event["queryStringParameters"] = query_parameters
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = body.decode("utf-8", "replace") if text else base64.b64encode(body).decode()
        return event


for _verb in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"):
    setattr(Gateway, f"do_{_verb}", Gateway.handle_any)


# ---- the queue and the schedules ---------------------------------------------------------------

def poll_queue(mapping, function, key, stopping):
    sqs = aws("sqs", key)
    queue_name = mapping["EventSourceArn"].rsplit(":", 1)[1]
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    batch_size = int(mapping.get("BatchSize", 10))
    window = float(mapping.get("MaximumBatchingWindowInSeconds", 0))
    partial = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
    while not stopping.is_set():
        messages, deadline = [], None
        while len(messages) < batch_size and not stopping.is_set():
            wait = 1 if deadline is None else max(0, deadline - time.monotonic())
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, batch_size - len(messages)),
                                      WaitTimeSeconds=int(round(wait)), AttributeNames=["All"],
                                      MessageAttributeNames=["All"]).get("Messages", [])
            for m in got:
                m["receivedAt"] = time.time()
            messages += got
            if messages and deadline is None:
                deadline = time.monotonic() + window
            if not messages or time.monotonic() >= deadline:
                break
        if not messages:
            continue
        batch = [m["MessageId"] for m in messages]
        records = [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": mapping["EventSourceArn"],
            "awsRegion": REGION,
        } for m in messages]
        try:
            answer = json.loads(function.invoke(json.dumps({"Records": records}).encode()) or b"{}")
        except (InvocationError, ValueError) as error:
            log(f"queue batch of {len(records)} failed, left for a retry: {error}")
            record_receives(messages, batch, set(batch))
            continue
        failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])} if partial else set()
        record_receives(messages, batch, failed)
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=done)


# Every receive of every message by a poller, for the journey's redrive checks (control API).
RECEIVES = {}
RECEIVES_LOCK = threading.Lock()


def record_receives(messages, batch, failed):
    answered = time.time()
    with RECEIVES_LOCK:
        for m in messages:
            RECEIVES.setdefault(m["MessageId"], []).append({
                "received_at": m["receivedAt"], "answered_at": answered,
                "receive_count": int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                "batch": batch, "failed": m["MessageId"] in failed,
            })


def rate_seconds(expression):
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not match:
        raise SystemExit(f"schedule expression {expression} is not modelled")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


def run_schedule(name, schedule, function, stopping):
    period = rate_seconds(schedule["ScheduleExpression"]) / SPEEDUP
    while not stopping.wait(period):
        try:
            function.invoke(schedule_input(schedule))
        except InvocationError as error:
            log(f"schedule {name}: {error}")


def schedule_input(schedule):
    # Scheduler sends the target's Input as is; without one, an empty object.
    return schedule["Target"].get("Input", "{}").encode()


class Control(BaseHTTPRequestHandler):
    schedules = {}
    functions = {}
    template = None

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        """/receives/<message id>: each time a poller received it (times, its batch, whether the
        function reported it failed); /resources/<logical id>: a resource's properties as the
        template gives them, resolved."""
        kind, _, name = self.path.strip("/").partition("/")
        if kind == "receives":
            with RECEIVES_LOCK:
                return self.reply(200, json.dumps(RECEIVES.get(name, [])).encode())
        if kind == "resources" and name in self.template.resources:
            properties = self.template.resolve(self.template.resources[name].get("Properties", {}))
            return self.reply(200, json.dumps(properties).encode())
        self.reply(404, b"{}")

    def do_POST(self):
        name = self.path.rsplit("/", 1)[-1]
        if not self.path.startswith("/schedules/") or name not in self.schedules:
            self.send_response(404)
            self.end_headers()
            return
        schedule, function = self.schedules[name]
        try:
            body, status = function.invoke(schedule_input(schedule)), 200
        except InvocationError as error:
            body, status = str(error).encode(), 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# ---- the report --------------------------------------------------------------------------------

def size_mb(path):
    return f"{os.path.getsize(path) / 1e6:.1f} MB" if path and os.path.exists(path) else "—"


def stripped_size(binary):
    target = os.path.join(STATE, "stripped", os.path.basename(binary))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if subprocess.run(["strip", "-o", target, binary], capture_output=True).returncode != 0:
        return None
    return target


def deployable(binary, name):
    """The release arm64 bootstrap scripts/build-lambdas made (stripped by the release
    profile), unless missing or older than the debug binary that ran: its size would be stale."""
    bootstrap = os.path.join(LAMBDA_DIR, name, "bootstrap") if LAMBDA_DIR else None
    if not bootstrap or not os.path.exists(bootstrap) or os.path.getmtime(bootstrap) < os.path.getmtime(binary):
        return None
    return bootstrap


def report(functions, names):
    rows = []
    print("\n| function | release arm64 bootstrap | debug binary, stripped | init (exec -> first next) "
          "| first invocation | invocations | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for name, function in functions.items():
        binary = names[name]
        rss = function.peak_rss_kb()
        row = {
            "function": binary, "bootstrap": size_mb(deployable(function.binary, binary)),
            "stripped": size_mb(stripped_size(function.binary)),
            "init_ms": round(function.init_ms or 0, 1), "first_ms": round(function.first_ms, 1) if function.first_ms else None,
            "invocations": function.invocations, "peak_rss_mb": round(rss / 1024, 1) if rss else None,
        }
        rows.append(row)
        first = f"{row['first_ms']} ms" if row["first_ms"] is not None else "—"
        peak = f"{row['peak_rss_mb']} MB" if row["peak_rss_mb"] is not None else "—"
        print(f"| {binary} | {row['bootstrap']} | {row['stripped']} | {row['init_ms']} ms | {first} | {row['invocations']} | {peak} |")
    with open(os.path.join(STATE, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    sys.stdout.flush()


def main():
    parameters = {
        "StackProjectId": env("STACK_PROJECT_ID"), "DatabaseUrl": env("DATABASE_URL"),
        "DatabaseDirectUrl": env("DATABASE_DIRECT_URL", ""), "FrontendUrl": env("FRONTEND_URL"),
        "AdminEmails": env("ADMIN_EMAILS", ""), "SmtpHost": env("SMTP_HOST"), "EmailFrom": env("EMAIL_FROM"),
    }
    template = Template(os.path.join(ROOT, "template.yaml"), {k: v for k, v in parameters.items() if v is not None})
    secret_values = {
        "elevenlabs_api_key": env("ELEVENLABS_API_KEY"), "stripe_secret_key": env("STRIPE_SECRET_KEY"),
        "smtp_password": "smtp_local_unused", "stack_secret_server_key": env("STACK_SECRET_SERVER_KEY"),
        "elevenlabs_webhook_secret": env("ELEVENLABS_WEBHOOK_SECRET"), "stripe_webhook_secret": env("STRIPE_WEBHOOK_SECRET"),
        "contact_lookup_secret": env("CONTACT_LOOKUP_SECRET"),
    }
    create_resources(template, {k: v for k, v in secret_values.items() if v})
    keys, harness = create_principals(template)
    log("moto: resources created, one IAM user per function, IAM enforced")

    names, functions = {}, {}
    for name, resource in template.of_type("AWS::Lambda::Function").items():
        binary = template.code[name]
        names[name] = binary
        environment = function_environment(template, name, keys[name])
        timeout = float(resource["Properties"].get("Timeout", 3))
        functions[name] = Function(name, os.path.join(BIN, binary), environment, timeout)
    for function in functions.values():
        function.start()
    log(f"{len(functions)} functions started, each under its own Runtime API emulator")

    migrate = next(f for n, f in functions.items() if names[n] == "migrate")
    log(f"migrate: {migrate.invoke(b'{}').decode()}")

    stopping = threading.Event()
    for mapping in template.of_type("AWS::Lambda::EventSourceMapping").values():
        properties = template.resolve(mapping["Properties"])
        threading.Thread(target=poll_queue, daemon=True,
                         args=(properties, functions[properties["FunctionName"]], harness, stopping)).start()
    schedules = {}
    for name, schedule in template.of_type("AWS::Scheduler::Schedule").items():
        properties = template.resolve(schedule["Properties"])
        function = functions[schedule["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]]
        schedules[name] = (properties, function)
        threading.Thread(target=run_schedule, daemon=True, args=(name, properties, function, stopping)).start()

    Gateway.routes, Gateway.cors = routes_of(template)
    Gateway.functions = functions
    Control.schedules = schedules
    Control.template = template
    gateway = ThreadingHTTPServer(("127.0.0.1", int(env("GATEWAY_PORT"))), Gateway)
    control = ThreadingHTTPServer(("127.0.0.1", int(env("CONTROL_PORT"))), Control)
    for server in (gateway, control):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(os.path.join(STATE, "rehearsal.env"), "w") as f:
        f.write(f"export REHEARSAL_HARNESS_KEY_ID='{harness['aws_access_key_id']}'\n")
        f.write(f"export REHEARSAL_HARNESS_SECRET='{harness['aws_secret_access_key']}'\n")
        f.write(f"export WEBHOOK_QUEUE_URL='{template.refs['WebhookQueue']}'\n")
        f.write(f"export WEBHOOK_DLQ_URL='{template.refs['WebhookDeadLetterQueue']}'\n")
        f.write(f"export RECORDINGS_BUCKET='{template.refs['RecordingsBucket']}'\n")
        f.write(f"export DYNAMODB_TABLE='{template.refs['KeyTable']}'\n")
    log(f"gateway on 127.0.0.1:{env('GATEWAY_PORT')} ({len(Gateway.routes)} routes), control on {env('CONTROL_PORT')}, "
        f"schedules: {', '.join(schedules)}")

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    stopping.set()
    report(functions, names)
    for function in functions.values():
        function.stop()


if __name__ == "__main__":
    main()
