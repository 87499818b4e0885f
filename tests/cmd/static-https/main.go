// Command static-https serves a directory over HTTPS on 127.0.0.1:443 with a
// certificate for "localhost" from a CA it generates, and writes that CA's
// certificate where rkt reads extra CAs (<config>/ca.d/*.pem). It is how the
// demo publishes a signed image for appc discovery, with nothing but this
// machine: appc image names carry no port, so discovery of
// "localhost/hello" means https://localhost/. It serves until killed.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "directory to serve")
	caOut := flag.String("ca", "", "write the CA certificate (PEM) here")
	addr := flag.String("addr", "127.0.0.1:443", "listen address")
	flag.Parse()
	cert, caPEM, err := certificate()
	if err != nil {
		log.Fatal(err)
	}
	if *caOut != "" {
		if err := os.MkdirAll(filepath.Dir(*caOut), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*caOut, caPEM, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	l, err := tls.Listen("tcp", *addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("serving %s on https://%s\n", *dir, l.Addr())
	srv := &http.Server{Handler: http.FileServer(http.Dir(*dir)), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(l))
}

// certificate makes a CA and a server certificate for localhost signed by it.
func certificate() (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rkt-ng demo CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
