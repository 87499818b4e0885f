package ns

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/manifests"

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
	token := p.args.MDSToken
	build := func() (http.Handler, error) { return p.mdsHandler(token, key) }
	var stamp fileStamp
	if p.args.Mutable {
		if stamp, err = statStamp(p.layout().PodManifest()); err != nil {
			return "", nil, err
		}
	}
	h, err := build()
	if err != nil {
		return "", nil, err
	}
	if p.args.Mutable {
		// Apps come and go: the answers follow the pod manifest.
		h = &reloadingMDS{path: p.layout().PodManifest(), build: build, log: p.log, uuid: p.args.UUID, stamp: stamp, cur: h}
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

// mdsHandler builds the metadata service's answers from the pod manifest
// and the apps' image manifests as they are now (stage0's files).
func (p *pod) mdsHandler(token string, key []byte) (http.Handler, error) {
	manifest, err := os.ReadFile(p.layout().PodManifest())
	if err != nil {
		return nil, err
	}
	pm, err := manifests.DecodePod(manifest)
	if err != nil {
		return nil, err
	}
	mp := &mds.Pod{UUID: p.args.UUID, Manifest: manifest, Apps: map[string]mds.App{}}
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		b, err := os.ReadFile(p.layout().AppManifest(name))
		if err != nil {
			return nil, err
		}
		mp.Apps[name] = mds.App{ImageManifest: b, ImageID: ra.Image.ID.String()}
	}
	h, err := mds.NewHandler(mp, token, key)
	if err != nil {
		return nil, fmt.Errorf("metadata service: %w", err)
	}
	return h, nil
}

// fileStamp tells one version of a file from another: stage0 replaces the
// pod manifest by rename, so a new version has a new inode.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    unix.Timespec
}

func statStamp(path string) (fileStamp, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileStamp{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fileStamp{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim}, nil
}

// reloadingMDS serves a mutable pod's metadata: when the pod manifest
// changed (rkt app add or rm), the answers are rebuilt before the request
// is served, so an added app finds its own app manifest and a removed
// app's answers are gone. A rebuild that fails keeps the last answers.
type reloadingMDS struct {
	path  string
	build func() (http.Handler, error)
	log   *slog.Logger
	uuid  string

	// mu guards stamp and cur.
	mu    sync.Mutex
	stamp fileStamp
	cur   http.Handler
}

func (m *reloadingMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.current().ServeHTTP(w, r)
}

func (m *reloadingMDS) current() http.Handler {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := statStamp(m.path)
	if err != nil || st == m.stamp {
		return m.cur
	}
	// The stamp is taken before the files are read: a manifest replaced
	// meanwhile only makes the next request build again.
	h, err := m.build()
	if err != nil {
		m.log.Warn("metadata service not updated", "pod", m.uuid, "err", err)
		return m.cur
	}
	m.stamp, m.cur = st, h
	return h
}
