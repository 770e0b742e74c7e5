#!/usr/bin/env bash
# Creates a CA for the rsgo controller with openssl, for operators who want
# to make (or keep offline copies of) the CA themselves instead of letting the
# controller create one on first start.
#
#   certs/make-ca.sh OUT_DIR [CN]
#
# Writes OUT_DIR/ca.crt and OUT_DIR/ca.key (ECDSA P-256, mode 0600). Copy both
# into <data-dir>/pki/ before the controller's first start.
set -euo pipefail
out=${1:?usage: make-ca.sh OUT_DIR [CN]}
cn=${2:-rsgo CA}
mkdir -p "$out"
umask 077
openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$out/ca.key"
openssl req -x509 -new -key "$out/ca.key" -sha256 -days 3650 -subj "/CN=$cn" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
	-out "$out/ca.crt"
chmod 0644 "$out/ca.crt"
echo "CA written to $out (fingerprint: sha256:$(openssl x509 -in "$out/ca.crt" -outform der | sha256sum | cut -d' ' -f1))"
