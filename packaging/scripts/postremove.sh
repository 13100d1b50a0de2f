#!/bin/sh
# libratod postremove (deb postrm, rpm %postun): let systemd forget the unit;
# on a deb purge, delete the state directory (the spool). The user and group
# stay, as is usual for system users: files may still belong to them.
#
# Arguments: deb "remove", "purge", "upgrade"...; rpm 0 (removal) or 1 (upgrade).
set -e
root=${DPKG_ROOT:-}
case "$1" in
purge)
	rm -rf "$root/var/lib/libratod"
	;;
esac
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
