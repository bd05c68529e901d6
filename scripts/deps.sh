#!/bin/sh
# SPDX-License-Identifier: ISC
# deps.sh - make sure what sockserverd needs to build and test is here.
# Installs missing Debian/Ubuntu packages with apt-get (through sudo when
# not root); elsewhere, or when that fails, names the exact packages.
#   scripts/deps.sh build   compiler, pkg-config, libconfig, libev, OpenSSL,
#                           python3-dev (the python plugin)
#   scripts/deps.sh check   the above, plus Check, python3 and socat
#   scripts/deps.sh bench   build, plus the openssl command, socat, and
#                           nginx with its stream module (the TLS
#                           handshake yardstick of `make bench`)
# nginx's package starts a service at install: a policy-rc.d that refuses
# it is put in place for the install (only when there is none already) and
# removed after, so nothing is left running on port 80.
set -u
what=${1:-build}

missing=""
need() {	# need PACKAGE TEST-COMMAND...
	pkg=$1; shift
	if ! "$@" >/dev/null 2>&1; then
		missing="$missing $pkg"
	fi
}
have_header() {
	printf '#include <%s>\n' "$1" | ${CC:-cc} -E -x c - >/dev/null 2>&1
}

need gcc command -v "${CC:-cc}"
need make command -v make
need libc6-dev have_header stdio.h
need pkg-config command -v pkg-config
need libconfig-dev pkg-config --exists libconfig
need libev-dev have_header ev.h
need libssl-dev pkg-config --exists openssl
# The python plugin (handlers/python): Debian's libpython3, as pkg-config
# python3-embed names it.
need python3-dev pkg-config --exists python3-embed
if [ "$what" = check ]; then
	need check pkg-config --exists check
	need python3 command -v python3
	need socat command -v socat
	need openssl command -v openssl
fi
if [ "$what" = bench ]; then
	need openssl command -v openssl
	need socat command -v socat
	need nginx test -x /usr/sbin/nginx
	need libnginx-mod-stream test -e \
	    /usr/lib/nginx/modules/ngx_stream_module.so
fi

[ -z "$missing" ] && exit 0

echo "sockserverd: missing packages:$missing" >&2
if command -v apt-get >/dev/null 2>&1; then
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo="sudo"
		else
			echo "sockserverd: run as root: apt-get install$missing" >&2
			exit 1
		fi
	fi
	echo "sockserverd: installing them: $sudo apt-get install -y$missing" >&2
	# No service started by a package's postinst (nginx would take :80).
	rcd=/usr/sbin/policy-rc.d
	if [ ! -e "$rcd" ] && $sudo sh -c "printf '#!/bin/sh\nexit 101\n' \
	    > $rcd && chmod 755 $rcd"; then
		trap '$sudo rm -f "$rcd"' EXIT
	fi
	# shellcheck disable=SC2086
	if $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    -o DPkg::Lock::Timeout=300 -q $missing >&2 ||
	    { $sudo apt-get update -q >&2 &&
	    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    -o DPkg::Lock::Timeout=300 -q $missing >&2; }; then
		exit 0
	fi
fi
echo "sockserverd: please install:$missing (Debian/Ubuntu package names)" >&2
exit 1
