#!/bin/sh
# Makes the example's certificates into ./certs: a CA for the server certificate (give clients
# server-ca.crt), the server certificate for localhost and 127.0.0.1, a "mesh" CA for workloads
# (the gateway's client_ca), its CRL (client_crl: none revoked yet) and one workload's certificate,
# named by its SPIFFE ID. For trying the
# example only: the private keys are in the repository, so anyone can impersonate these names.
# Run it again to make your own (the CA keys are not kept).
set -eu
cd "$(dirname "$0")"
out=certs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
days=36500

ca() { # name file
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=$1/O=Bouncer example" -keyout "$work/$2.key" -out "$out/$2.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

leaf() { # ca file subject extensions...
  ca=$1 file=$2 subject=$3
  shift 3
  printf '%s\n' "basicConstraints = critical,CA:FALSE" "keyUsage = critical,digitalSignature" "$@" > "$work/$file.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subject" \
    -keyout "$out/$file.key" -out "$work/$file.csr" 2>/dev/null
  openssl x509 -req -in "$work/$file.csr" -CA "$out/$ca.crt" -CAkey "$work/$ca.key" -CAcreateserial \
    -CAserial "$work/$ca.srl" -days "$days" -extfile "$work/$file.ext" -out "$out/$file.crt" 2>/dev/null
}

ca "Example server CA" server-ca
ca "Example mesh CA" mesh-ca
leaf server-ca server "/CN=localhost" "extendedKeyUsage = serverAuth" "subjectAltName = DNS:localhost,IP:127.0.0.1"
leaf mesh-ca loader "/CN=loader" "extendedKeyUsage = clientAuth" "subjectAltName = URI:spiffe://example.org/ns/etl/sa/loader"

# The mesh CA's CRL, revoking nothing: `openssl ca -gencrl` reads the CA's database (index.txt) of
# revoked certificates, empty here. With your own CA, `openssl ca -revoke` a certificate and make
# the CRL again before its nextUpdate (-crldays); the gateway reads the new file as it lands.
touch "$work/index.txt"
printf '%s\n' '[ca]' 'default_ca = mesh' '[mesh]' "database = $work/index.txt" 'default_md = sha256' > "$work/ca.cnf"
openssl ca -batch -config "$work/ca.cnf" -gencrl -cert "$out/mesh-ca.crt" -keyfile "$work/mesh-ca.key" \
  -crldays "$days" -out "$out/mesh-ca.crl" 2>/dev/null
chmod 600 "$out"/*.key
echo "certificates in $(pwd)/$out"
