package imageservice

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/stage0"
)

// testRegistry is go-containerregistry's registry on 127.0.0.1, counting
// manifest requests, optionally behind basic auth.
type testRegistry struct {
	host      string
	manifests atomic.Int64
}

func newRegistry(t *testing.T, user, pass string) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if strings.Contains(req.URL.Path, "/manifests/") {
			r.manifests.Add(1)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *testRegistry) push(t *testing.T, repoTag string, img v1.Image, auth authn.Authenticator) {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{}
	if auth != nil {
		opts = append(opts, remote.WithAuth(auth))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
}

// userImage is a one-layer image whose config has user u.
func userImage(t *testing.T, u string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.User = u
	cf.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func configDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func newService(t *testing.T, dir string, mirrors map[string][]string) *Service {
	t.Helper()
	s, err := New(&stage0.Config{Dir: dir}, mirrors, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pull(t *testing.T, s *Service, ref string, auth *runtime.AuthConfig) string {
	t.Helper()
	resp, err := s.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}, Auth: auth})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return resp.ImageRef
}

func imageStatus(t *testing.T, s *Service, ref string) *runtime.Image {
	t.Helper()
	resp, err := s.ImageStatus(context.Background(), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("status %s: %v", ref, err)
	}
	return resp.Image
}

func wantCode(t *testing.T, err error, c codes.Code) {
	t.Helper()
	if status.Code(err) != c {
		t.Fatalf("got %v, want code %v", err, c)
	}
}

// TestPullThroughMirror pulls images named after registries that cannot be
// reached from here (gcr.io, docker.io) through a plain-http mirror, and
// checks that the names, IDs and user fields are the ones asked for.
func TestPullThroughMirror(t *testing.T) {
	reg := newRegistry(t, "", "")
	uidImg := userImage(t, "1002")
	nameImg := userImage(t, "www-data:www-data")
	reg.push(t, "k8s-staging-cri-tools/test-image-user-uid:latest", uidImg, nil)
	reg.push(t, "k8s-staging-cri-tools/test-image-user-username-group:latest", nameImg, nil)
	reg.push(t, "library/busybox:1.36", nameImg, nil)
	s := newService(t, t.TempDir(), map[string][]string{
		"gcr.io":           {"http://" + reg.host},
		"index.docker.io":  {"http://" + reg.host},
		"registry.invalid": {"http://127.0.0.1:1"},
	})

	id := pull(t, s, "gcr.io/k8s-staging-cri-tools/test-image-user-uid", nil)
	if want := configDigest(t, uidImg); id != want {
		t.Fatalf("image ref %s, want the config digest %s", id, want)
	}
	st := imageStatus(t, s, "gcr.io/k8s-staging-cri-tools/test-image-user-uid")
	if st == nil {
		t.Fatal("no status after pull")
	}
	if !slices.Equal(st.RepoTags, []string{"gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest"}) {
		t.Errorf("repo tags %q", st.RepoTags)
	}
	if len(st.RepoDigests) != 1 || !strings.HasPrefix(st.RepoDigests[0], "gcr.io/k8s-staging-cri-tools/test-image-user-uid@sha256:") {
		t.Errorf("repo digests %q", st.RepoDigests)
	}
	if st.Uid.GetValue() != 1002 || st.Username != "" {
		t.Errorf("uid %v username %q, want 1002 and none", st.Uid, st.Username)
	}
	if st.Size == 0 || st.Id != id {
		t.Errorf("size %d id %s", st.Size, st.Id)
	}

	pull(t, s, "gcr.io/k8s-staging-cri-tools/test-image-user-username-group", nil)
	st = imageStatus(t, s, "gcr.io/k8s-staging-cri-tools/test-image-user-username-group:latest")
	if st.GetUid().GetValue() != 0 || st.GetUsername() != "www-data" {
		t.Errorf("uid %v username %q, want none and www-data", st.Uid, st.Username)
	}

	// Docker Hub's short names; the mirror key index.docker.io is docker.io.
	pull(t, s, "busybox:1.36", nil)
	st = imageStatus(t, s, "docker.io/library/busybox:1.36")
	if st == nil || !slices.Contains(st.RepoTags, "docker.io/library/busybox:1.36") {
		t.Fatalf("busybox: %v", st)
	}

	// A mirror that lacks the image is passed over for the next; a path
	// after a mirror's host prefixes the repository.
	empty := newRegistry(t, "", "")
	reg.push(t, "hub/library/alpine:3", uidImg, nil)
	s2 := newService(t, t.TempDir(), map[string][]string{"docker.io": {"http://" + empty.host, "http://" + reg.host + "/hub"}})
	if got := pull(t, s2, "alpine:3", nil); got != configDigest(t, uidImg) {
		t.Fatalf("alpine through the second mirror: %s", got)
	}
	if empty.manifests.Load() == 0 {
		t.Error("the first mirror was not asked")
	}
	if st := imageStatus(t, s2, "docker.io/library/alpine:3"); st == nil || !slices.Equal(st.RepoTags, []string{"docker.io/library/alpine:3"}) {
		t.Fatalf("alpine: %v", st)
	}

	// A mirror that is down is passed over; with no mirror left, the
	// registry itself (unreachable here) fails the pull.
	_, err := s.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "registry.invalid/x:1"}})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("pull through a dead mirror: %v", err)
	}

	// An image the mirror lacks: NotFound is not what the dead
	// registry.invalid gives, but the mirror's 404 is in the message.
	if _, err := s.Resolve("gcr.io/k8s-staging-cri-tools/absent:1"); status.Code(err) != codes.NotFound {
		t.Fatalf("resolve of an image never pulled: %v", err)
	}
}

// TestPullAuth pulls from a registry that wants basic auth, with the
// credential of the request in both of the CRI's forms.
func TestPullAuth(t *testing.T) {
	reg := newRegistry(t, "kube", "s3cret")
	img := userImage(t, "")
	reg.push(t, "private/app:1", img, &authn.Basic{Username: "kube", Password: "s3cret"})
	s := newService(t, t.TempDir(), nil)
	ref := reg.host + "/private/app:1"

	_, err := s.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	wantCode(t, err, codes.Unauthenticated)
	_, err = s.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref},
		Auth: &runtime.AuthConfig{Username: "kube", Password: "wrong"}})
	wantCode(t, err, codes.Unauthenticated)
	if imageStatus(t, s, ref) != nil {
		t.Fatal("a failed pull left an image")
	}

	id := pull(t, s, ref, &runtime.AuthConfig{Username: "kube", Password: "s3cret"})
	if id != configDigest(t, img) {
		t.Fatalf("id %s", id)
	}
	st := imageStatus(t, s, ref)
	if st.GetUid().GetValue() != 0 || st.GetUid() == nil {
		t.Errorf("an image without user runs as uid 0: %v", st.Uid)
	}
	if _, err := s.RemoveImage(context.Background(), &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: id}}); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))
	if got := pull(t, s, ref, &runtime.AuthConfig{Auth: auth, ServerAddress: reg.host}); got != id {
		t.Fatalf("id %s, want %s", got, id)
	}
	// A credential for another server is not sent.
	_, err = s.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref},
		Auth: &runtime.AuthConfig{Auth: auth, ServerAddress: "other.example:5000"}})
	wantCode(t, err, codes.Unauthenticated)
}

// TestNamesListRemoveResolve: one image under three tags of one repository
// and a name in a second registry is one image; every name, its digest and
// its ID find it; removing it by one name removes it under all; a restarted
// service finds what was pulled before.
func TestNamesListRemoveResolve(t *testing.T) {
	reg := newRegistry(t, "", "")
	img := userImage(t, "1000")
	other := userImage(t, "1")
	for _, tag := range []string{"1", "2", "3"} {
		reg.push(t, "cri/test-image-tags:"+tag, img, nil)
	}
	reg.push(t, "pause:3.9", img, nil)
	reg.push(t, "cri/other:latest", other, nil)
	dir := t.TempDir()
	mirrors := map[string][]string{"registry.k8s.io": {"http://" + reg.host}, "k8s.gcr.io": {"http://" + reg.host}, "gcr.io": {"http://" + reg.host}}
	s := newService(t, dir, mirrors)
	ctx := context.Background()

	var ids []string
	names := []string{"gcr.io/cri/test-image-tags:1", "gcr.io/cri/test-image-tags:2", "gcr.io/cri/test-image-tags:3", "registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"}
	for _, n := range names {
		ids = append(ids, pull(t, s, n, nil))
	}
	if len(slices.Compact(slices.Clone(ids))) != 1 {
		t.Fatalf("one image, ids %q", ids)
	}
	otherID := pull(t, s, "gcr.io/cri/other", nil)

	list, err := s.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Images) != 2 {
		t.Fatalf("%d images listed, want 2", len(list.Images))
	}
	st := imageStatus(t, s, ids[0])
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(st.RepoTags, want) {
		t.Fatalf("repo tags %q, want %q", st.RepoTags, want)
	}
	// Every name, digest and the ID give the same status.
	for _, n := range append(append(slices.Clone(st.RepoTags), st.RepoDigests...), st.Id, strings.TrimPrefix(st.Id, "sha256:")) {
		got := imageStatus(t, s, n)
		if got == nil || got.Id != st.Id || !slices.Equal(got.RepoTags, st.RepoTags) {
			t.Fatalf("status of %s: %v", n, got)
		}
	}
	filtered, err := s.ListImages(ctx, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: "gcr.io/cri/other:latest"}}})
	if err != nil || len(filtered.Images) != 1 || filtered.Images[0].Id != otherID {
		t.Fatalf("filtered list: %v %v", filtered, err)
	}

	// Resolve: name:tag, name@digest and the ID all name one store image.
	var storeIDs []string
	for _, n := range []string{"gcr.io/cri/test-image-tags:2", st.RepoDigests[0], st.Id} {
		sid, err := s.Resolve(n)
		if err != nil {
			t.Fatalf("resolve %s: %v", n, err)
		}
		storeIDs = append(storeIDs, sid)
	}
	if !strings.HasPrefix(storeIDs[0], "sha512-") || len(slices.Compact(storeIDs)) != 1 {
		t.Fatalf("store IDs %q", storeIDs)
	}
	if sid, err := s.Resolve(storeIDs[0]); err != nil || sid != storeIDs[0] {
		t.Fatalf("resolve of a store ID: %s %v", sid, err)
	}
	if got := s.ImageID(storeIDs[0]); got != st.Id {
		t.Fatalf("ImageID(%s) = %s, want %s", storeIDs[0], got, st.Id)
	}
	for _, bad := range []string{"gcr.io/cri/test-image-tags:4", "sha256:" + strings.Repeat("0", 64)} {
		if _, err := s.Resolve(bad); status.Code(err) != codes.NotFound {
			t.Fatalf("resolve %s: %v, want NotFound", bad, err)
		}
	}

	// A restarted service knows the same.
	s2 := newService(t, dir, mirrors)
	if got := imageStatus(t, s2, "k8s.gcr.io/pause:3.9"); got == nil || got.Id != st.Id {
		t.Fatalf("after restart: %v", got)
	}

	before, err := s2.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}

	// Removing by one tag removes the image under every name, and the
	// store image with it; again is no error.
	for range 2 {
		if _, err := s2.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: "registry.k8s.io/pause:3.9"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range append(names, st.Id) {
		if got := imageStatus(t, s2, n); got != nil {
			t.Fatalf("%s still there: %v", n, got)
		}
	}
	if _, err := s2.Resolve(storeIDs[0]); status.Code(err) != codes.NotFound {
		t.Fatalf("store image kept: %v", err)
	}
	list, _ = s2.ListImages(ctx, &runtime.ListImagesRequest{})
	if len(list.Images) != 1 || list.Images[0].Id != otherID {
		t.Fatalf("left: %v", list.Images)
	}

	fsi, err := s2.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if u := fsi.ImageFilesystems[0]; u.UsedBytes.GetValue() == 0 || u.InodesUsed.GetValue() == 0 || u.FsId.GetMountpoint() == "" {
		t.Fatalf("fs info %v", u)
	}
	// The removal is counted at once, not after the cached count expires.
	if b, a := before.ImageFilesystems[0].InodesUsed.GetValue(), fsi.ImageFilesystems[0].InodesUsed.GetValue(); a >= b {
		t.Fatalf("inodes used %d before the removal, %d after", b, a)
	}
}

// TestTagMoves: pulling a tag that now names another image moves it.
func TestTagMoves(t *testing.T) {
	reg := newRegistry(t, "", "")
	a, b := userImage(t, "1"), userImage(t, "2")
	reg.push(t, "app:v", a, nil)
	s := newService(t, t.TempDir(), nil)
	ref := reg.host + "/app:v"
	idA := pull(t, s, ref, nil)
	reg.push(t, "app:v", b, nil)
	idB := pull(t, s, ref, nil)
	if idA == idB {
		t.Fatal("same id for two images")
	}
	if st := imageStatus(t, s, ref); st.Id != idB {
		t.Fatalf("tag names %s, want %s", st.Id, idB)
	}
	// The old image is still listed, by digest only.
	if st := imageStatus(t, s, idA); st == nil || len(st.RepoTags) != 0 || len(st.RepoDigests) != 1 {
		t.Fatalf("old image: %v", st)
	}
}

// TestBadInput: malformed references and mirror configurations.
func TestBadInput(t *testing.T) {
	s := newService(t, t.TempDir(), nil)
	ctx := context.Background()
	for _, ref := range []string{"", "UPPER/case:1", "docker://x/y:1", "a:b:c", "x@sha256:123"} {
		_, err := s.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
		wantCode(t, err, codes.InvalidArgument)
		_, err = s.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}})
		wantCode(t, err, codes.InvalidArgument)
		_, err = s.Resolve(ref)
		wantCode(t, err, codes.InvalidArgument)
	}
	_, err := s.PullImage(ctx, &runtime.PullImageRequest{})
	wantCode(t, err, codes.InvalidArgument)
	_, err = s.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "sha256:" + strings.Repeat("a", 64)}})
	wantCode(t, err, codes.InvalidArgument)
	if _, err := s.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: "never/pulled:1"}}); err != nil {
		t.Fatalf("remove of an absent image: %v", err)
	}
	// A cancelled pull reports the context's code.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.PullImage(cctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "127.0.0.1:1/x:1"}})
	wantCode(t, err, codes.Canceled)

	for _, m := range []map[string][]string{
		{"gcr.io": {"ftp://x"}},
		{"gcr.io": {"127.0.0.1:5000"}},
		{"gcr.io/x": {"http://127.0.0.1:5000"}},
		{"gcr.io": {"http://user:pw@127.0.0.1:5000"}},
	} {
		if _, err := New(&stage0.Config{Dir: t.TempDir()}, m, nil); err == nil {
			t.Errorf("mirrors %v accepted", m)
		}
	}
	if _, err := os.Stat(recordDir(t.TempDir())); err == nil {
		t.Fatal("records dir made without a pull")
	}
}
