"""moto's server with resource-level IAM for the services the functions use (scripts/rehearse).

moto enforces IAM once `/moto-api/reset-auth` is posted, but it checks Secrets Manager and
DynamoDB requests against the resource "*" only: a policy naming one secret or the table (as
every statement of template.yaml does) would never match. This names the resource of those
requests as AWS does (the secret's ARN, the table's ARN) before moto's own check runs. It also
checks presigned S3 URLs (moto would fail on their missing Authorization header): the signer's
access key must hold the action on the object, as on AWS. The signature of a presigned URL is
not verified.

usage: moto_iam.py HOST PORT"""

import sys
from urllib.parse import parse_qs, urlparse

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.iam.access_control import IAMPolicy, PermissionResult, create_access_key
from moto.s3.exceptions import S3AccessDeniedError
from moto.secretsmanager.models import secretsmanager_backends
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import main


def secret_arn(self):
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    if secret_id.startswith("arn:"):
        return secret_id
    backend = secretsmanager_backends[self.current_account][self.region]
    secret = backend.secrets.get(secret_id)
    return secret.arn if secret is not None else "*"


def table_arn(self):
    name = self._get_param("TableName")
    if not name:
        return "*"
    return f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{name}"


SecretsManagerResponse._determine_resource = secret_arn
DynamoHandler._determine_resource = table_arn

s3_check = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action


def presigned_or_signed(self, bucket_name=None, key_name=None):
    enforced = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
    if not enforced or "Authorization" in self.headers:
        return s3_check(self, bucket_name, key_name)
    credential = parse_qs(urlparse(self.uri).query).get("X-Amz-Credential")
    if not credential or not key_name:
        raise S3AccessDeniedError()
    access_key = create_access_key(
        account_id=self.current_account,
        partition="aws",
        access_key_id=credential[0].split("/")[0],
        headers=self.headers,
    )
    action = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject"}.get(self.method)
    resource = f"arn:aws:s3:::{bucket_name}/{key_name}"
    results = [IAMPolicy(p).is_action_permitted(action, resource) for p in access_key.collect_policies()]
    if action is None or PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
        raise S3AccessDeniedError()


ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = presigned_or_signed

if __name__ == "__main__":
    main(["-H", sys.argv[1], "-p", sys.argv[2]])
