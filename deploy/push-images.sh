#!/usr/bin/env bash
# Build every service image at the current git commit and push it to ECR, tagged with the commit.
#
#   deploy/push-images.sh          prints the tag on stdout (progress on stderr), so:
#   terraform -chdir=terraform apply -var "image_tag=$(deploy/push-images.sh)"
#
# The repositories come from `terraform output ecr_repository_urls` (create them first: see
# docs/deploy.md). Tags are immutable in ECR: a commit is pushed once, and pushing it again is a
# no-op. A dirty work tree is refused, because the tag would not say what the image contains.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf 'push-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in git docker aws terraform python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done
if [ -n "$(git status --porcelain -- shared services pyproject.toml uv.lock)" ]; then
  die "uncommitted changes under shared/, services/ or the workspace files: commit them first"
fi

TAG="$(git rev-parse --short=12 HEAD)"
REPOSITORIES="$(terraform -chdir=terraform output -json ecr_repository_urls)"
REGISTRY="$(python3 -c 'import json,sys; print(next(iter(json.load(sys.stdin).values())).split("/")[0])' <<<"$REPOSITORIES")"
REGION="$(cut -d. -f4 <<<"$REGISTRY")"

log "logging in to $REGISTRY"
aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$REGISTRY" >&2

python3 -c 'import json,sys; [print(k, v) for k, v in json.load(sys.stdin).items()]' <<<"$REPOSITORIES" |
while read -r service repository; do
  image="$repository:$TAG"
  if aws ecr describe-images --region "$REGION" --repository-name "${repository#*/}" \
       --image-ids imageTag="$TAG" >/dev/null 2>&1; then
    log "$image already pushed"
    continue
  fi
  log "building $image"
  # Fargate tasks run linux/amd64 (terraform/ecs.tf runtime_platform).
  docker build --platform linux/amd64 -f services/Dockerfile --build-arg "SERVICE=$service" \
    --target "$service" -t "$image" . >&2
  docker push "$image" >&2
done

echo "$TAG"
