#!/bin/sh
# libratod preinstall (deb preinst, rpm %pre): create the system user and
# group libratod before the files owned by them are unpacked.
#
# DPKG_ROOT is set by dpkg when it installs into another root without
# chroot (dpkg --root=DIR --force-script-chrootless); the user is then
# created in DIR's /etc/passwd, and the system's own is untouched.
set -e
root=${DPKG_ROOT:-}

exists() {
	if [ -z "$root" ]; then
		getent passwd libratod >/dev/null 2>&1
	else
		grep -q '^libratod:' "$root/etc/passwd" 2>/dev/null
	fi
}

if ! exists; then
	set -- --system --user-group --no-create-home --home-dir /var/lib/libratod \
		--shell /usr/sbin/nologin --comment "libratod StatsD daemon" libratod
	if [ -n "$root" ]; then
		useradd --prefix "$root" "$@"
	else
		useradd "$@"
	fi
fi
exit 0
