package signing_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/signing"
)

// gpg runs gpg commands in a private GNUPGHOME.
type gpg struct {
	t    *testing.T
	home string
}

func newGPG(t *testing.T) *gpg {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not on PATH; install gnupg (apt-get install gnupg) to run the interoperability tests")
	}
	// A short home keeps gpg-agent's socket path under the sun_path limit.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gpg{t: t, home: home}
	t.Cleanup(func() {
		// Stop the gpg-agent that gpg started for this home only.
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	return g
}

func (g *gpg) cmd(args ...string) *exec.Cmd {
	cmd := exec.CommandContext(g.t.Context(), "gpg", append([]string{"--batch", "--no-tty"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.home)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (g *gpg) run(args ...string) []byte {
	g.t.Helper()
	var stderr bytes.Buffer
	cmd := g.cmd(args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// fingerprints returns the primary and subkey fingerprints, in gpg's order.
func (g *gpg) fingerprints() []string {
	g.t.Helper()
	var fps []string
	for _, line := range strings.Split(string(g.run("--with-colons", "--list-keys")), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			fps = append(fps, strings.ToLower(f[9]))
		}
	}
	if len(fps) == 0 {
		g.t.Fatal("gpg lists no key")
	}
	return fps
}

func TestGPGInterop(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		algo       string // primary key algorithm and usage
		passphrase string
		subkey     bool // add a signing subkey, which gpg then signs with
	}{
		{name: "ed25519", algo: "ed25519"},
		{name: "rsa", algo: "rsa2048"},
		{name: "ed25519 signing subkey", algo: "ed25519", subkey: true},
		{name: "passphrase", algo: "ed25519", passphrase: "correct horse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGPG(t)
			usage := "sign"
			if tc.subkey {
				usage = "cert"
			}
			g.run("--passphrase", tc.passphrase, "--pinentry-mode", "loopback",
				"--quick-gen-key", "rkt interop <interop@example.com>", tc.algo, usage, "never")
			primary := g.fingerprints()[0]
			if tc.subkey {
				g.run("--passphrase", tc.passphrase, "--pinentry-mode", "loopback",
					"--quick-add-key", primary, "ed25519", "sign", "never")
			}
			fps := g.fingerprints()
			signingKey := fps[len(fps)-1]
			if tc.subkey && signingKey == primary {
				t.Fatalf("gpg lists no signing subkey: %q", fps)
			}

			dir := t.TempDir()
			data := []byte("the ACI as downloaded\x00\x01\xff")
			dataPath := filepath.Join(dir, "image.aci")
			writeFile(t, dataPath, data)

			// gpg signs, we verify.
			pub := g.run("--armor", "--export", primary)
			ks := &signing.Keystore{LocalDir: filepath.Join(dir, "etc")}
			tk, err := ks.Trust("example.com/app", pub)
			if err != nil {
				t.Fatalf("Trust(gpg key): %v", err)
			}
			if tk.Fingerprint != primary {
				t.Errorf("Trust fingerprint = %s, want gpg's %s", tk.Fingerprint, primary)
			}
			if diff := cmp.Diff([]string{"rkt interop <interop@example.com>"}, tk.UserIDs); diff != "" {
				t.Errorf("UserIDs of gpg key mismatch (-want +got):\n%s", diff)
			}
			pass := []string{"--passphrase", tc.passphrase, "--pinentry-mode", "loopback"}
			g.run(append(pass, "--armor", "--detach-sign", "--output", dataPath+".asc", dataPath)...)
			g.run(append(pass, "--detach-sign", "--output", dataPath+".sig", dataPath)...)
			for _, ext := range []string{".asc", ".sig"} {
				sig, err := os.ReadFile(dataPath + ext)
				if err != nil {
					t.Fatal(err)
				}
				if err := ks.CheckSigner("example.com/app/sub", bytes.NewReader(sig)); err != nil {
					t.Errorf("CheckSigner(gpg %s signature): %v", ext, err)
				}
				signer, err := ks.Verify("example.com/app/sub", bytes.NewReader(data), bytes.NewReader(sig))
				if err != nil {
					t.Fatalf("Verify(gpg %s signature): %v", ext, err)
				}
				if fp(signer) != primary {
					t.Errorf("signer = %s, want %s", fp(signer), primary)
				}
				ids, err := signing.SignerKeyIDs(bytes.NewReader(sig))
				if err != nil || len(ids) != 1 || !strings.HasSuffix(signingKey, fmt.Sprintf("%016x", ids[0])) {
					t.Errorf("SignerKeyIDs(gpg %s signature) = %x, %v; want the key ID of %s", ext, ids, err, signingKey)
				}
				tampered := bytes.Clone(data)
				tampered[0] ^= 0x20
				if _, err := ks.Verify("example.com/app", bytes.NewReader(tampered), bytes.NewReader(sig)); !errors.Is(err, signing.ErrBadSignature) {
					t.Errorf("Verify(tampered data, gpg %s signature) error = %v, want ErrBadSignature", ext, err)
				}
				var ue *signing.UntrustedSignerError
				if _, err := ks.Verify("example.com/other", bytes.NewReader(data), bytes.NewReader(sig)); !errors.As(err, &ue) {
					t.Errorf("Verify(other prefix, gpg %s signature) error = %v, want *UntrustedSignerError", ext, err)
				}
			}

			// We sign with gpg's exported secret key, gpg verifies.
			sec := g.run(append(pass, "--armor", "--export-secret-keys", primary)...)
			var ours bytes.Buffer
			if tc.passphrase != "" {
				if err := signing.Sign(&ours, sec, nil, bytes.NewReader(data)); !errors.Is(err, signing.ErrKeyEncrypted) {
					t.Errorf("Sign(gpg key with passphrase, no passphrase) error = %v, want ErrKeyEncrypted", err)
				}
			}
			if err := signing.Sign(&ours, sec, []byte(tc.passphrase), bytes.NewReader(data)); err != nil {
				t.Fatalf("Sign(gpg secret key): %v", err)
			}
			ourSig := filepath.Join(dir, "ours.asc")
			writeFile(t, ourSig, ours.Bytes())
			status := g.run("--status-fd", "1", "--verify", ourSig, dataPath)
			if !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) || !bytes.Contains(status, []byte("[GNUPG:] VALIDSIG "+strings.ToUpper(signingKey))) {
				t.Errorf("gpg --verify of our signature: status lacks GOODSIG/VALIDSIG %s:\n%s", signingKey, status)
			}
			// gpg must reject our signature over other data, or the check
			// above proves nothing.
			otherPath := filepath.Join(dir, "other")
			writeFile(t, otherPath, []byte("other"))
			if err := g.cmd("--verify", ourSig, otherPath).Run(); err == nil {
				t.Error("gpg --verify accepted our signature over other data")
			}
			if _, err := signing.Verify(mustKeyring(t, ks, "example.com/app"), bytes.NewReader(data), bytes.NewReader(ours.Bytes())); err != nil {
				t.Errorf("Verify(our signature with gpg key): %v", err)
			}
		})
	}
}

func mustKeyring(t *testing.T, ks *signing.Keystore, name string) openpgp.EntityList {
	t.Helper()
	kr, err := ks.Keyring(name)
	if err != nil {
		t.Fatalf("Keyring(%q): %v", name, err)
	}
	return kr
}
