#!/usr/bin/env bash
# The system packages `make test` needs on Debian/Ubuntu. Installs the missing ones with apt when run
# as root; otherwise stops at once with one line naming them.
#   python3-venv     the virtualenv of `make`
#   portaudio19-dev  PyAudio (the [device] extra, part of [dev]) compiles against PortAudio
#   gcc, python3-dev ... with a C compiler and Python's headers
#   openssl          makes the CA and certificates of the MQTT TLS test
#   mosquitto        the MQTT tests start a real broker (tests/test_device_mqtt.py, test_device_faults.py)
set -euo pipefail
missing=()
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
[ -f /usr/include/portaudio.h ] || missing+=(portaudio19-dev)
command -v gcc >/dev/null || missing+=(gcc)
python3 -c "import os, sysconfig; assert os.path.exists(sysconfig.get_paths()['include'] + '/Python.h')" 2>/dev/null \
    || missing+=(python3-dev)
command -v openssl >/dev/null || missing+=(openssl)
{ command -v mosquitto || [ -x /usr/sbin/mosquitto ]; } >/dev/null || missing+=(mosquitto)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
    echo "error: make test needs these system packages: ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
