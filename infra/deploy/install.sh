#!/usr/bin/env bash
# Installs, or updates, the marketplace on this Ubuntu VM from the checkout it sits in
# (/opt/marketplace): Debian packages, the `marketplace` service user, the virtual environment,
# the settings and secrets (/etc/marketplace), the systemd units, the firewall. Then it
# (re)starts the site and waits until http://127.0.0.1/ answers through HAProxy.
#
# cloud-init runs it once at first boot (infra/deploy/cloud-init.yaml). Run it again after
# `git pull`, or to change the number of instances: it is idempotent and keeps the secrets.
#
#   sudo /opt/marketplace/infra/deploy/install.sh
#   sudo WEB=3 /opt/marketplace/infra/deploy/install.sh        # one more web instance
#
# Settings (environment variables, else /etc/marketplace/deploy.conf, else these defaults):
#   WEB, EXPERIENCE, ENTITY   instances per tier, 1..8     (2, 2, 2)
#   WORKERS, THREADS          gunicorn workers per instance, threads per worker   (2, 4)
#   CACHE                     off | ttl | invalidate | django   (invalidate)
#   DOMAIN                    a domain name the site should also answer to   (none)
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root (sudo $0)" >&2
  exit 1
fi

PREFIX="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$PREFIX/.venv"
UNIT_DIR=/etc/systemd/system
MAX_INSTANCES=8  # the slots of infra/haproxy/haproxy.cfg

# Values given in the environment win over deploy.conf (which cloud-init writes).
declare -A given=()
for name in WEB EXPERIENCE ENTITY WORKERS THREADS CACHE DOMAIN; do
  if [ -n "${!name:-}" ]; then given[$name]="${!name}"; fi
done
if [ -r /etc/marketplace/deploy.conf ]; then
  # shellcheck source=/dev/null
  . /etc/marketplace/deploy.conf
fi
for name in "${!given[@]}"; do printf -v "$name" '%s' "${given[$name]}"; done
WEB="${WEB:-2}" EXPERIENCE="${EXPERIENCE:-2}" ENTITY="${ENTITY:-2}"
WORKERS="${WORKERS:-2}" THREADS="${THREADS:-4}" CACHE="${CACHE:-invalidate}" DOMAIN="${DOMAIN:-}"

step() { printf '\n==> %s\n' "$*"; }

step "Debian packages"
# Python 3 with venv, Redis and HAProxy (their binaries; this script runs them as its own
# services), git for updates, sqlite3 to look into the database, ufw for the firewall.
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  git python3 python3-venv redis-server haproxy sqlite3 ufw curl ca-certificates >/dev/null
# The packages start their own redis-server and haproxy services; the marketplace runs its own
# (marketplace-redis on :6390 with a password, marketplace-haproxy on :80), so the distro's stay
# off.
systemctl disable --now redis-server.service haproxy.service 2>/dev/null || true

step "service user"
# A system account that owns only the database directory; it cannot log in.
if ! id marketplace >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/marketplace --no-create-home \
    --shell /usr/sbin/nologin marketplace
fi

step "virtual environment ($VENV)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PREFIX/requirements.txt"
# The services may not write into the code (ProtectSystem=strict): compile it now, once.
"$VENV/bin/python" -m compileall -q "$PREFIX/app" "$PREFIX/infra" >/dev/null

step "settings and secrets (/etc/marketplace)"
# The site answers to the VM's own addresses (IPv6 ones in brackets, as they appear in a Host
# header) and to the domain, when given.
hosts="$(hostname -I | tr ' ' '\n' | sed -e '/^$/d' -e '/:/s/.*/[&]/' | paste -sd, -)"
if [ -n "$DOMAIN" ]; then hosts="$DOMAIN,$hosts"; fi
(cd "$PREFIX" && "$VENV/bin/python" -m infra.deploy.configure \
  --web "$WEB" --experience "$EXPERIENCE" --entity "$ENTITY" \
  --workers "$WORKERS" --threads "$THREADS" --cache "$CACHE" --allowed-hosts "$hosts")
units="$(cd "$PREFIX" && "$VENV/bin/python" -m infra.deploy.configure --print-units \
  --web "$WEB" --experience "$EXPERIENCE" --entity "$ENTITY")"

step "systemd units"
install -m 0644 "$PREFIX"/infra/deploy/systemd/marketplace* "$UNIT_DIR/"
systemctl daemon-reload
# Instances beyond the configured counts are stopped and no longer started at boot.
for tier in web experience entity; do
  for number in $(seq 1 "$MAX_INSTANCES"); do
    unit="marketplace-$tier@$number.service"
    case " $units " in *" $unit "*) ;; *) systemctl disable --now "$unit" 2>/dev/null || true ;; esac
  done
done
# shellcheck disable=SC2086  # $units is a list of unit names
systemctl enable marketplace.target marketplace-redis.service marketplace-prepare.service \
  marketplace-haproxy.service $units
# A restart of the target restarts every unit that is PartOf it: new code, new settings.
systemctl restart marketplace.target

step "firewall"
# Only SSH and the site; the tiers, Redis and the stats page listen on 127.0.0.1 anyway.
ufw allow OpenSSH >/dev/null
ufw allow 80/tcp >/dev/null
ufw --force enable >/dev/null

step "waiting for the site"
for _ in $(seq 1 600); do  # up to 10 minutes: the first boot migrates and seeds
  if curl -fsS -o /dev/null --max-time 2 http://127.0.0.1/healthz; then
    echo "the marketplace is up: http://${hosts%%,*}/"
    systemctl --no-pager --plain list-units 'marketplace*'
    exit 0
  fi
  sleep 1
done
echo "the site did not answer within 10 minutes; see: systemctl status 'marketplace*'" >&2
systemctl --no-pager --plain list-units --all 'marketplace*' >&2 || true
exit 1
