package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/shared/envflag"
)

// runCerts prepares or inspects the controller's PKI without starting it.
func runCerts(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: rsgo-controller certs init|fingerprint --data-dir DIR [--host NAME ...]")
	}
	sub := args[0]
	fs := flag.NewFlagSet("rsgo-controller certs "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "/var/lib/rsgo-controller", "controller data directory")
	var hosts listFlag
	fs.Var(&hosts, "host", "name or IP the server certificate must cover; repeatable")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := envflag.Apply(fs, os.LookupEnv); err != nil {
		return err
	}
	dir := filepath.Join(*dataDir, "pki")
	switch sub {
	case "init":
		a, err := pki.LoadOrCreate(pki.Options{Dir: dir, Hosts: append(hosts, "localhost", "127.0.0.1")})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "PKI ready in %s\nCA fingerprint: %s\n", dir, a.Fingerprint())
		return nil
	case "fingerprint":
		if _, err := os.Stat(filepath.Join(dir, pki.CACertFile)); err != nil {
			return fmt.Errorf("no CA in %s: %w", dir, err)
		}
		a, err := pki.LoadOrCreate(pki.Options{Dir: dir, Hosts: hosts})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, a.Fingerprint())
		return nil
	}
	return fmt.Errorf("unknown certs command %q (want init or fingerprint)", sub)
}
