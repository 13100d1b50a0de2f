#!/bin/sh
# libratod preremove (deb prerm, rpm %preun): stop and disable the service
# when the package is removed, not when it is upgraded.
#
# Arguments: deb "remove" or "upgrade"...; rpm 0 (removal) or 1 (upgrade).
set -e
case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now libratod.service >/dev/null 2>&1 || true
fi
exit 0
