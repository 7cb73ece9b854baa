#!/usr/bin/env bash
# Installs, or updates, the marketplace on this Ubuntu VM as containers: the stack of
# infra/docker-compose.yml plus infra/deploy/docker-compose.vm.yml (port 80, the droplet's host
# names, a persistent database). The secrets are generated here, once, into infra/.env
# (root-only, git-ignored); the containers restart on failure and at boot (restart:
# unless-stopped, and Docker's service is enabled at boot).
#
# cloud-init runs it once at first boot (infra/deploy/cloud-init-docker.yaml). Run it again
# after `git pull`: it rebuilds the images and recreates what changed, keeping the secrets.
#
#   sudo /opt/marketplace/infra/deploy/install-docker.sh
#
# DOMAIN (environment, else /etc/marketplace/deploy.conf): a domain the site also answers to.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-docker.sh: run it as root (sudo $0)" >&2
  exit 1
fi

PREFIX="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENV_FILE="$PREFIX/infra/.env"  # compose reads .env beside the first compose file
COMPOSE=(docker compose -f "$PREFIX/infra/docker-compose.yml"
         -f "$PREFIX/infra/deploy/docker-compose.vm.yml")

given_domain="${DOMAIN:-}"
if [ -r /etc/marketplace/deploy.conf ]; then
  # shellcheck source=/dev/null
  . /etc/marketplace/deploy.conf
fi
DOMAIN="${given_domain:-${DOMAIN:-}}"

step() { printf '\n==> %s\n' "$*"; }

step "Docker"
export DEBIAN_FRONTEND=noninteractive
if ! docker compose version >/dev/null 2>&1; then
  apt-get update -qq
  # Ubuntu's own packages of the engine and the compose plugin (Docker's apt repository works
  # too: https://docs.docker.com/engine/install/ubuntu/).
  apt-get install -y -qq docker.io docker-compose-v2 git ufw curl python3 >/dev/null
fi
systemctl enable --now docker.service

step "secrets ($ENV_FILE)"
# The variables infra/docker-compose.yml requires (its ${NAME:?...} references), each a fresh
# random token, generated on this VM and kept: a second run leaves them as they are.
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }
umask 077
touch "$ENV_FILE"
chmod 0600 "$ENV_FILE"
for name in LAB_SECRET_KEY LAB_SERVICE_TOKEN LAB_WEB_TIER_TOKEN LAB_REDIS_PASSWORD \
            LAB_PG_PASSWORD LAB_HAPROXY_STATS_PASSWORD; do
  grep -q "^$name=" "$ENV_FILE" || echo "$name=$(secret)" >> "$ENV_FILE"
done
# The host names the site answers to: this VM's addresses (IPv6 in brackets) and the domain.
hosts="$(hostname -I | tr ' ' '\n' | sed -e '/^$/d' -e '/:/s/.*/[&]/' | paste -sd, -)"
if [ -n "$DOMAIN" ]; then hosts="$DOMAIN,$hosts"; fi
sed -i '/^LAB_PUBLIC_HOSTS=/d' "$ENV_FILE"
echo "LAB_PUBLIC_HOSTS=$hosts" >> "$ENV_FILE"

step "containers"
"${COMPOSE[@]}" up -d --build --remove-orphans

step "firewall"
ufw allow OpenSSH >/dev/null
ufw allow 80/tcp >/dev/null
ufw --force enable >/dev/null

step "waiting for the site"
for _ in $(seq 1 600); do  # up to 10 minutes: the first start builds images and seeds
  if curl -fsS -o /dev/null --max-time 2 http://127.0.0.1/healthz; then
    echo "the marketplace is up: http://${hosts%%,*}/"
    "${COMPOSE[@]}" ps
    exit 0
  fi
  sleep 1
done
echo "the site did not answer within 10 minutes; see: ${COMPOSE[*]} ps / logs" >&2
exit 1
