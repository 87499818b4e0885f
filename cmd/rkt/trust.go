package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/signing"
)

func newTrustCmd(g *globalFlags) *cobra.Command {
	var prefix, remove string
	var root, skipReview, list, allowHTTP bool
	cmd := &cobra.Command{
		Use:   "trust [--prefix PREFIX | --root] KEYFILE...",
		Short: "Trust a key for image verification",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			ic := c.Images()
			ks := ic.Keystore()
			switch {
			case list:
				return printTrusted(ks)
			case remove != "":
				removed, err := ks.Remove(remove)
				for _, r := range removed {
					fmt.Printf("Removed %s\n", r)
				}
				return err
			}
			if root == (prefix != "") {
				return &usageError{fmt.Errorf("give exactly one of --prefix and --root")}
			}
			if len(args) == 0 {
				if root {
					return &usageError{fmt.Errorf("--root needs key files")}
				}
				if allowHTTP {
					ic.Insecure.HTTP = true
				}
				keys, err := ic.DiscoverKeys(cmd.Context(), prefix)
				if err != nil {
					return err
				}
				for _, k := range keys {
					if err := trustKey(ks, prefix, k.URL, k.Armored, skipReview); err != nil {
						return err
					}
				}
				return nil
			}
			for _, f := range args {
				if err := trustFile(ks, prefix, f, skipReview); err != nil {
					return err
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&prefix, "prefix", "", "image name prefix the key is trusted for")
	fl.BoolVar(&root, "root", false, "trust the key for all images")
	fl.BoolVar(&skipReview, "skip-fingerprint-review", false, "accept the key without asking")
	fl.BoolVar(&list, "list", false, "list trusted keys")
	fl.StringVar(&remove, "remove", "", "stop trusting the key with this fingerprint")
	fl.BoolVar(&allowHTTP, "insecure-allow-http", false, "allow discovering and fetching keys over plain HTTP")
	return cmd
}

func trustFile(ks *signing.Keystore, prefix, path string, skipReview bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("key %s: %w", path, err)
	}
	return trustKey(ks, prefix, path, b, skipReview)
}

// trustKey shows a key (from a file or a discovered URL), asks on a
// terminal unless skipReview, and trusts it.
func trustKey(ks *signing.Keystore, prefix, path string, b []byte, skipReview bool) error {
	info, err := signing.ReadKey(b)
	if err != nil {
		return fmt.Errorf("key %s: %w", path, err)
	}
	scope := "all images (root)"
	if prefix != "" {
		scope = "prefix " + prefix
	}
	fmt.Fprintf(os.Stderr, "Prefix: %q\nKey: %q\nKey fingerprint: %s\n", prefix, path, strings.ToUpper(info.Fingerprint))
	for _, u := range info.UserIDs {
		fmt.Fprintf(os.Stderr, "  User ID: %s\n", u)
	}
	if !skipReview {
		if _, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err != nil {
			return fmt.Errorf("key %s: not trusted: no terminal to confirm on (use --skip-fingerprint-review)", path)
		}
		fmt.Fprintf(os.Stderr, "Are you sure you want to trust this key for %s [y/N]? ", scope)
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return fmt.Errorf("key %s: not trusted", path)
		}
	}
	tk, err := ks.Trust(prefix, b)
	if err != nil {
		return fmt.Errorf("key %s: %w", path, err)
	}
	fmt.Fprintf(os.Stderr, "Trusting %q for %s.\nAdded key for %s at %q\n", path, scope, scope, tk.Path)
	return nil
}

func printTrusted(ks *signing.Keystore) error {
	keys, err := ks.List()
	if err != nil {
		return err
	}
	fmt.Printf("%-12s\t%-40s\t%s\n", "PREFIX", "FINGERPRINT", "USER IDS")
	for _, k := range keys {
		p := k.Prefix
		if p == "" {
			p = "(root)"
		}
		fmt.Printf("%-12s\t%-40s\t%s\n", p, k.Fingerprint, strings.Join(k.UserIDs, ", "))
	}
	return nil
}
