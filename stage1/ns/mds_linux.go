package ns

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/mds"
)

// startMDS serves the appc metadata service for this pod from this process,
// for exactly the pod's life: inside the pod's network namespace on its
// loopback (so every network mode reaches it, and other pods do not), or on
// the host's loopback for --net=host, where only the token protects it. It
// returns AC_METADATA_URL and a stop function that waits for the server.
//
// The token comes from the pod directory's root-only token file (this
// stage1 declares stage1.AnnotationMDSTokenFile), or from --mds-token when
// an older stage0 passed it.
func (p *pod) startMDS(nsPath string) (string, func(), error) {
	if p.args.MDSToken == "" {
		tok, err := stage1.ReadMDSToken(p.dir)
		if err != nil {
			return "", nil, fmt.Errorf("metadata service token: %w", err)
		}
		p.args.MDSToken = tok
	}
	if p.args.MDSToken == "" {
		return "", func() {}, nil
	}
	keyDir := p.opts.DataDir
	if keyDir == "" {
		keyDir = p.dir
	}
	key, err := mds.LoadKey(filepath.Join(keyDir, "mds", "hmac-key"))
	if err != nil {
		return "", nil, fmt.Errorf("metadata service key: %w", err)
	}
	manifest, err := os.ReadFile(p.layout().PodManifest())
	if err != nil {
		return "", nil, err
	}
	mp := &mds.Pod{UUID: p.args.UUID, Manifest: manifest, Apps: map[string]mds.App{}}
	for _, ra := range p.manifest.Apps {
		name := ra.Name.String()
		b, err := os.ReadFile(p.layout().AppManifest(name))
		if err != nil {
			return "", nil, err
		}
		mp.Apps[name] = mds.App{ImageManifest: b, ImageID: ra.Image.ID.String()}
	}
	h, err := mds.NewHandler(mp, p.args.MDSToken, key)
	if err != nil {
		return "", nil, fmt.Errorf("metadata service: %w", err)
	}
	l, err := mds.ListenInNetNS(nsPath, "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("metadata service: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mds.Serve(ctx, l, h, p.log); err != nil {
			p.log.Warn("metadata service stopped", "pod", p.args.UUID, "err", err)
		}
	}()
	return mds.URL(l, p.args.MDSToken), func() { cancel(); <-done }, nil
}
