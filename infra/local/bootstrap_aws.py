"""Creates the AWS resources the functions use, in the emulator at AWS_ENDPOINT_URL:
the webhook queue and its dead-letter queue, the DynamoDB key table (with TTL), the
recordings bucket and the application secret. Idempotent. Prints shell `export` lines.

Secret values come from the environment when set (ELEVENLABS_API_KEY, ...); otherwise
random local values are generated here, at run time. Nothing real is ever committed."""

import json
import os
import secrets

import boto3

env = os.environ.get
region = env("AWS_REGION", "us-east-1")
endpoint = env("AWS_ENDPOINT_URL")
kw = {"region_name": region, "endpoint_url": endpoint}

queue_name = env("WEBHOOK_QUEUE_NAME", "webhook-events")
table = env("DYNAMODB_TABLE", "ai-calling-kv")
bucket = env("RECORDINGS_BUCKET", "ai-calling-recordings")
secret_id = env("APP_SECRET_ID", "ai-calling/app")
webhook_secret_id = env("WEBHOOK_SECRET_ID", "ai-calling/webhooks")

sqs = boto3.client("sqs", **kw)
dlq_url = sqs.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue_url = sqs.create_queue(
    QueueName=queue_name,
    Attributes={
        "VisibilityTimeout": env("WEBHOOK_QUEUE_VISIBILITY_SECONDS", "30"),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    },
)["QueueUrl"]

dynamo = boto3.client("dynamodb", **kw)
if table not in dynamo.list_tables()["TableNames"]:
    dynamo.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamo.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )

s3 = boto3.client("s3", **kw)
if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def value(name, prefix):
    return env(name) or f"{prefix}{secrets.token_hex(24)}"


# Two secrets as in template.yaml: the platform's API keys, and the webhook signing keys
# (all the internet-facing ingest function may read).
app_secret = {
    "elevenlabs_api_key": value("ELEVENLABS_API_KEY", "local_el_"),
    "stripe_secret_key": value("STRIPE_SECRET_KEY", "sk_test_local_"),
    "smtp_password": value("GMAIL_APP_PASSWORD", "smtp_local_"),
    "stack_secret_server_key": value("STACK_SECRET_SERVER_KEY", "ssk_local_"),
}
webhook_secret = {
    "elevenlabs_webhook_secret": value("ELEVENLABS_WEBHOOK_SECRET", "wsec_local_"),
    "stripe_webhook_secret": value("STRIPE_WEBHOOK_SECRET", "whsec_local_"),
    "contact_lookup_secret": value("CONTACT_LOOKUP_SECRET", "cl_local_"),
}
sm = boto3.client("secretsmanager", **kw)
for name, document in ((secret_id, app_secret), (webhook_secret_id, webhook_secret)):
    try:
        sm.create_secret(Name=name, SecretString=json.dumps(document))
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=name, SecretString=json.dumps(document))

for name, val in {
    "WEBHOOK_QUEUE_URL": queue_url,
    "WEBHOOK_DLQ_URL": dlq_url,
    "DYNAMODB_TABLE": table,
    "RECORDINGS_BUCKET": bucket,
    "APP_SECRET_ID": secret_id,
    "WEBHOOK_SECRET_ID": webhook_secret_id,
}.items():
    print(f"export {name}='{val}'")
