#!/bin/sh
# libratod postinstall (deb postinst, rpm %post): make sure the user exists
# and owns its state directory, give a fresh configuration file to its group,
# and tell systemd about the unit (restarting a running libratod on upgrade).
#
# Arguments: deb "configure" [previous version]; rpm 1 (install) or 2 (upgrade).
# DPKG_ROOT: see preinstall.
set -e
root=${DPKG_ROOT:-}

case "$1" in
configure) [ -z "$2" ] && fresh=1 || fresh= ;;
1) fresh=1 ;;
2) fresh= ;;
*) exit 0 ;; # abort-upgrade, abort-remove...: nothing to do
esac

# The user: made by preinstall; on a deb configured again after a failed
# install it may be missing.
if [ -z "$root" ]; then
	getent passwd libratod >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
		--home-dir /var/lib/libratod --shell /usr/sbin/nologin --comment "libratod StatsD daemon" libratod
	uid=$(id -u libratod)
	gid=$(id -g libratod)
else
	uid=$(awk -F: '$1 == "libratod" { print $3 }' "$root/etc/passwd")
	gid=$(awk -F: '$1 == "libratod" { print $4 }' "$root/etc/passwd")
fi

# Numeric ids, so that this works in another root too. The state directory
# is always the user's; the configuration file only on a fresh install, so
# that an admin's choice survives upgrades.
mkdir -p "$root/var/lib/libratod"
chown "$uid:$gid" "$root/var/lib/libratod"
chmod 0750 "$root/var/lib/libratod"
if [ -n "$fresh" ] && [ -f "$root/etc/libratod.toml" ]; then
	chown "0:$gid" "$root/etc/libratod.toml"
	chmod 0640 "$root/etc/libratod.toml"
fi

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ -z "$fresh" ]; then
		systemctl try-restart libratod.service >/dev/null 2>&1 || true
	fi
fi
if [ -n "$fresh" ]; then
	cat <<'MSG'
libratod is installed but not started. Set the token, check, then start it:
  install -m 0600 /usr/share/libratod/libratod.env.example /etc/libratod/env   # set LIBRATO_TOKEN in it
  $EDITOR /etc/libratod.toml
  set -a; . /etc/libratod/env; set +a; libratod -check -online
  systemctl enable --now libratod
MSG
fi
exit 0
