#!/usr/bin/env bash
# Deploys the CDK stack to a running LocalStack with the project's own CDK CLI, pointed at LocalStack through
# the AWS_ENDPOINT_URL variables (what cdklocal does for CDK >= 2.177, without installing it):
#   bash scripts/localstack-deploy.sh [--stage S] [--dry-run] [extra cdk deploy arguments]
# Environment: LOCALSTACK_ENDPOINT (default http://localhost:4566), LOCALSTACK_S3_ENDPOINT (default
# http://s3.localhost.localstack.cloud:4566: asset uploads address buckets as subdomains), AWS_REGION
# (default us-east-1). --dry-run prints the environment and the commands instead of running them.
# LocalStack itself needs Docker (and, for current images, LOCALSTACK_AUTH_TOKEN); CI has neither.
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE="dev"
DRY_RUN=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) STAGE="${2:?--stage needs a value}"; shift 2 ;;
    --stage=*) STAGE="${1#--stage=}"; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
if ! [[ "$STAGE" =~ ^[a-z][a-z0-9]{0,11}$ ]]; then
  echo "error: --stage \"$STAGE\": lower-case letters and digits, starting with a letter, at most 12" >&2
  exit 2
fi

ENDPOINT="${LOCALSTACK_ENDPOINT:-http://localhost:4566}"
S3_ENDPOINT="${LOCALSTACK_S3_ENDPOINT:-http://s3.localhost.localstack.cloud:4566}"
REGION="${AWS_REGION:-us-east-1}"
ACCOUNT="000000000000"

# Only LocalStack's fake identity: a profile, SSO or session token from the shell must not reach it.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_ENDPOINT_URL="$ENDPOINT"
export AWS_ENDPOINT_URL_S3="$S3_ENDPOINT"
export AWS_ACCESS_KEY_ID="test"
export AWS_SECRET_ACCESS_KEY="test"
export AWS_REGION="$REGION"
export AWS_DEFAULT_REGION="$REGION"
export CDK_DEFAULT_ACCOUNT="$ACCOUNT"
export CDK_DEFAULT_REGION="$REGION"

CDK="node_modules/.bin/cdk"
BOOTSTRAP=("$CDK" bootstrap "aws://$ACCOUNT/$REGION")
DEPLOY=("$CDK" deploy "Backstop-$STAGE" -c "backstop:stage=$STAGE" --require-approval never ${EXTRA[@]+"${EXTRA[@]}"})

if [ "$DRY_RUN" = 1 ]; then
  for name in AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION \
    AWS_DEFAULT_REGION CDK_DEFAULT_ACCOUNT CDK_DEFAULT_REGION; do
    echo "$name=${!name}"
  done
  echo "${BOOTSTRAP[*]}"
  echo "${DEPLOY[*]}"
  exit 0
fi

if ! node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(3000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
  "$ENDPOINT/_localstack/health"; then
  echo "error: LocalStack does not answer on $ENDPOINT (start it: docker run -p 4566:4566 localstack/localstack)" >&2
  exit 1
fi
"${BOOTSTRAP[@]}"
"${DEPLOY[@]}"
echo "deployed Backstop-$STAGE to LocalStack: try  npx backstop status --target localstack --stage $STAGE" >&2
