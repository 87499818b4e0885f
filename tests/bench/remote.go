package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// benchRemote: cold fetch of a ~100 MB image by name from a local https
// discovery server (ACI, signed) and from a local registry (OCI, several
// layers), each next to `gzip -dc | tar -x` of the same compressed bytes; a
// re-fetch inside max-age; a second tag sharing all but one layer.
func benchRemote(b *bench) error {
	rootfs := filepath.Join(b.work, "remote-rootfs")
	os.MkdirAll(rootfs, 0o755)
	var parts []string
	for _, s := range []string{"/usr/lib/python3.11", "/usr/libexec", "/usr/share/perl", "/usr/lib/gcc"} {
		if _, err := os.Stat(s); err == nil {
			if out, err := exec.Command("cp", "-a", s, rootfs).CombinedOutput(); err != nil {
				return fmt.Errorf("cp: %v %s", err, out)
			}
			parts = append(parts, filepath.Base(s))
		}
	}
	if len(parts) < 2 {
		return fmt.Errorf("remote bench needs at least two of python3.11, libexec, perl, locale under /usr")
	}
	host, ln, caPEM, cert, err := listen443()
	if err != nil {
		return err
	}
	imgName := host + "/big"
	aci := filepath.Join(b.work, "remote-big.aci")
	if err := writeACI(aci, imgName, []string{"/bin/true"}, rootfs, true); err != nil {
		return err
	}
	etc := filepath.Join(b.work, "remote-etc")
	os.MkdirAll(filepath.Join(etc, "ca.d"), 0o755)
	if err := os.WriteFile(filepath.Join(etc, "ca.d", "bench.pem"), caPEM, 0o644); err != nil {
		return err
	}
	home := filepath.Join(b.work, "remote-gnupg")
	os.MkdirAll(home, 0o700)
	gpg := func(args ...string) error {
		out, err := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--quiet", "--passphrase", ""}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("gpg %v: %v %s", args, err, out)
		}
		return nil
	}
	pub := filepath.Join(b.work, "remote.pub")
	if err := gpg("--quick-gen-key", "Bench Remote <remote@example.com>", "ed25519", "sign", "never"); err != nil {
		return err
	}
	if err := gpg("--armor", "--output", pub, "--export"); err != nil {
		return err
	}
	if err := gpg("--armor", "--detach-sign", aci); err != nil {
		return err
	}
	aciBody, _ := os.ReadFile(aci)
	ascBody, _ := os.ReadFile(aci + ".asc")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("ac-discovery") == "1" {
			fmt.Fprintf(w, `<meta name="ac-discovery" content="%s https://%s/{name}.{ext}">`, host, host)
			return
		}
		body := aciBody
		if strings.HasSuffix(r.URL.Path, ".asc") {
			body = ascBody
		}
		w.Header().Set("ETag", `"big-1"`)
		w.Header().Set("Cache-Control", "max-age=3600")
		http.ServeContent(w, r, "big.aci", time.Time{}, bytes.NewReader(body))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	rkt := func(data string, args ...string) string {
		return strings.Join(append([]string{*rktBin, "--dir=" + data, "--local-config=" + etc, "--system-config=" + filepath.Join(b.work, "lib")}, args...), " ")
	}
	if out, err := exec.Command("sh", "-c", rkt(filepath.Join(b.work, "remote-warm"), "trust", "--prefix="+host, "--skip-fingerprint-review", pub)).CombinedOutput(); err != nil {
		return fmt.Errorf("trust: %v %s", err, out)
	}
	n := max(*runs/8, 3)
	fi, _ := os.Stat(aci)
	untar := filepath.Join(b.work, "remote-untar")
	floor := "gzip -dc | tar -x (ACI bytes)"
	d, err := timeCmd(n, func(int) []string {
		return []string{"sh", "-c", fmt.Sprintf("rm -rf %[1]s && mkdir %[1]s && gzip -dc %[2]s | tar -x -C %[1]s", untar, aci)}
	})
	if err != nil {
		return err
	}
	record("remote", floor, floor, d, fmt.Sprintf("%d MB compressed", fi.Size()>>20))
	cold := filepath.Join(b.work, "remote-cold")
	d, err = timeCmd(n, func(int) []string {
		return []string{"sh", "-c", fmt.Sprintf("rm -rf %[1]s && %[2]s >/dev/null", cold, rkt(cold, "fetch", imgName))}
	})
	if err != nil {
		return err
	}
	record("remote", "rkt fetch NAME (https, discovery, signed, cold)", floor, d, "<= 1.5x floor")
	warm := filepath.Join(b.work, "remote-warm")
	if out, err := exec.Command("sh", "-c", rkt(warm, "fetch", imgName)).CombinedOutput(); err != nil {
		return fmt.Errorf("fetch: %v %s", err, out)
	}
	d, err = timeCmd(*runs, func(int) []string { return []string{"sh", "-c", rkt(warm, "fetch", imgName) + " >/dev/null"} })
	if err != nil {
		return err
	}
	record("remote", "rkt fetch NAME (inside max-age)", "", d, "< 50ms, no request")

	// OCI: one layer per top-level directory, pushed to a local registry.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")
	var layers []v1.Layer
	var blobs []string
	for i, p := range parts {
		tarPath := filepath.Join(b.work, fmt.Sprintf("layer-%d.tar", i))
		if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarPath, p).CombinedOutput(); err != nil {
			return fmt.Errorf("tar: %v %s", err, out)
		}
		l, err := tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		blob := tarPath + ".gz"
		f, _ := os.Create(blob)
		io.Copy(f, rc)
		f.Close()
		rc.Close()
		layers = append(layers, l)
		blobs = append(blobs, blob)
	}
	push := func(tag string, ls []v1.Layer) error {
		img, err := mutate.AppendLayers(empty.Image, ls...)
		if err != nil {
			return err
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Config.Cmd = "linux", goarch(), []string{"/bin/true"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
		ref, err := name.ParseReference(regHost + "/bench/big:" + tag)
		if err != nil {
			return err
		}
		return remote.Write(ref, img)
	}
	if err := push("1", layers); err != nil {
		return err
	}
	// Tag 2: the same layers but the last, replaced by a new one.
	last := filepath.Join(b.work, "layer-new.tar")
	exec.Command("tar", "-C", rootfs, "-cf", last, "--transform", "s,^,new-,", parts[len(parts)-1]).Run()
	newLayer, err := tarball.LayerFromFile(last, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return err
	}
	if err := push("2", append(append([]v1.Layer{}, layers[:len(layers)-1]...), newLayer)); err != nil {
		return err
	}
	floor = "gzip -dc | tar -x (OCI layer bytes)"
	d, err = timeCmd(n, func(int) []string {
		cmd := fmt.Sprintf("rm -rf %[1]s && mkdir %[1]s", untar)
		for _, bl := range blobs {
			cmd += fmt.Sprintf(" && gzip -dc %s | tar -x -C %s", bl, untar)
		}
		return []string{"sh", "-c", cmd}
	})
	if err != nil {
		return err
	}
	record("remote", floor, floor, d, fmt.Sprintf("%d layers", len(blobs)))
	ociCold := filepath.Join(b.work, "remote-oci")
	ref := "docker://" + regHost + "/bench/big"
	d, err = timeCmd(n, func(int) []string {
		return []string{"sh", "-c", fmt.Sprintf("rm -rf %[1]s && %[2]s >/dev/null", ociCold, rkt(ociCold, "--insecure-options=image", "fetch", ref+":1"))}
	})
	if err != nil {
		return err
	}
	record("remote", "rkt fetch docker:// (registry, cold)", floor, d, "<= 1.5x floor")
	diffID, _ := newLayer.DiffID()
	d, err = timeCmd(n, func(int) []string {
		return []string{"sh", "-c", fmt.Sprintf("id=$(%[1]s) && %[2]s image rm $id >/dev/null && rm -rf %[3]s",
			rkt(ociCold, "--insecure-options=image", "fetch", ref+":2"), rkt(ociCold),
			filepath.Join(ociCold, "cas", "layers", "sha256", diffID.Hex))}
	})
	if err != nil {
		return err
	}
	record("remote", "rkt fetch docker:// second tag (1 new layer)", "rkt fetch docker:// (registry, cold)", d, "only the new layer (includes image rm)")
	return nil
}

func goarch() string { return runtime.GOARCH }

// listen443 listens on port 443 of a free 127/8 address (appc discovery has
// no port) and issues a certificate for it from a fresh CA.
func listen443() (string, net.Listener, []byte, tls.Certificate, error) {
	var ln net.Listener
	var host string
	var err error
	for i := 0; i < 50; i++ {
		host = fmt.Sprintf("127.250.%d.%d", i+1, os.Getpid()%250+1)
		if ln, err = net.Listen("tcp", host+":443"); err == nil {
			break
		}
	}
	if err != nil {
		return "", nil, nil, tls.Certificate{}, err
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return "", nil, nil, tls.Certificate{}, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(host)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", nil, nil, tls.Certificate{}, err
	}
	return host, ln, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
