// Package imageservice is the CRI ImageService of rkt-cri: it pulls
// registry images into rkt's image store through stage0's OCI fetch path
// (registry mirrors from rkt-cri's configuration, credentials from the
// request), keeps the names the kubelet pulled each image under in
// <data dir>/cri/images, and tells the RuntimeService which store image a
// container's image reference names (Resolve).
//
// An image's CRI ID is "sha256:" and the digest of its config, as with
// containerd: the same image pulled under several names, tags or registries
// is one image with several repo tags, and removing it by any of them
// removes it under all.
package imageservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/images"
	"github.com/rkt-ng/rkt/stage0/store"
)

// Service implements runtime.ImageServiceServer.
type Service struct {
	runtime.UnimplementedImageServiceServer

	images  *images.Config
	mirrors map[string][]string
	log     *slog.Logger
	dir     string // the records

	// mu serializes the changes of records (pull, remove); the fetches
	// themselves run in parallel.
	mu sync.Mutex

	// fsMu guards fsUsage: ImageFsInfo's last count, reused for
	// fsInfoMaxAge unless a pull or removal came since (crictl asks before
	// every command, the kubelet every few seconds, and a count walks the
	// whole store).
	fsMu    sync.Mutex
	fsUsage *runtime.FilesystemUsage
}

// fsInfoMaxAge is how long an ImageFsInfo count is reused.
const fsInfoMaxAge = 5 * time.Second

// fsChanged drops the cached ImageFsInfo count.
func (s *Service) fsChanged() {
	s.fsMu.Lock()
	s.fsUsage = nil
	s.fsMu.Unlock()
}

var _ runtime.ImageServiceServer = (*Service)(nil)

// New returns the ImageService of the data directory cfg.Dir. mirrors maps a
// registry host ("docker.io", "registry.k8s.io", "127.0.0.1:5000") to the
// endpoints tried before it, in order: "http://HOST[:PORT]" for a
// plain-http registry, "https://HOST[:PORT]" otherwise.
func New(cfg *stage0.Config, mirrors map[string][]string, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := map[string][]string{}
	for host, eps := range mirrors {
		if host == "" || strings.ContainsAny(host, "/ ") {
			return nil, fmt.Errorf("registryMirrors: %q is not a registry host", host)
		}
		for _, ep := range eps {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
				return nil, fmt.Errorf("registryMirrors[%q]: %q: want http://HOST[:PORT] or https://HOST[:PORT]", host, ep)
			}
		}
		m[canonicalHost(host)] = slices.Clone(eps)
	}
	ic := cfg.Images()
	ic.Stderr = io.Discard // no progress bars on rkt-cri's stderr
	return &Service{images: ic, mirrors: m, log: log, dir: recordDir(cfg.Dir)}, nil
}

// canonicalHost spells Docker Hub docker.io, as references are spelled.
func canonicalHost(h string) string {
	switch h {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

// Register registers s on a gRPC server.
func (s *Service) Register(g *grpc.Server) { runtime.RegisterImageServiceServer(g, s) }

// ref is an image reference as the CRI passes it, parsed.
type ref struct {
	id     string // "sha256:..." when the reference is an image ID
	name   string // "REPO:TAG" or "REPO@DIGEST"
	repo   string
	tag    string
	digest string
}

// parseRef reads an image ID ("sha256:HEX", or the bare 64 hex digits) or a
// registry reference.
func parseRef(s string) (ref, error) {
	if s == "" {
		return ref{}, status.Error(codes.InvalidArgument, "image: empty reference")
	}
	if idRE.MatchString(s) {
		return ref{id: s}, nil
	}
	if idRE.MatchString("sha256:" + s) {
		return ref{id: "sha256:" + s}, nil
	}
	repo, tag, digest, err := images.ParseRegistryRef(s)
	if err != nil {
		return ref{}, status.Error(codes.InvalidArgument, err.Error())
	}
	r := ref{repo: repo, tag: tag, digest: digest}
	if digest != "" {
		r.name = repo + "@" + digest
	} else {
		r.name = repo + ":" + tag
	}
	return r, nil
}

// find returns the record r names among recs, or nil.
func find(recs []*record, r ref) *record {
	for _, rec := range recs {
		switch {
		case r.id != "":
			if rec.ID == r.id {
				return rec
			}
		case r.digest != "":
			if slices.Contains(rec.RepoDigests, r.name) {
				return rec
			}
		default:
			if slices.Contains(rec.RepoTags, r.name) {
				return rec
			}
		}
	}
	return nil
}

// lookup finds the record of reference s whose image is still in the store,
// with that store image's ID; nil when there is none. A record whose store
// images were all removed (rkt image rm, gc) names no image any more.
func (s *Service) lookup(st *store.Store, refStr string) (*record, store.Image, error) {
	r, err := parseRef(refStr)
	if err != nil {
		return nil, store.Image{}, err
	}
	recs, err := s.load()
	if err != nil {
		return nil, store.Image{}, status.Error(codes.Internal, err.Error())
	}
	rec := find(recs, r)
	if rec == nil {
		return nil, store.Image{}, nil
	}
	img, ok := liveImage(st, rec)
	if !ok {
		return nil, store.Image{}, nil
	}
	return rec, img, nil
}

// liveImage is the most recent of rec's store images still in the store.
func liveImage(st *store.Store, rec *record) (store.Image, bool) {
	for _, id := range slices.Backward(rec.StoreIDs) {
		if img, err := st.Get(id); err == nil {
			return img, true
		}
	}
	return store.Image{}, false
}

func (s *Service) store() (*store.Store, error) {
	st, err := s.images.Store()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return st, nil
}

// Resolve turns an image reference of a CreateContainer request (a
// name[:tag], a name@digest, the image ID PullImage returned, or a store
// image ID sha512-...) into the image argument of stage0's AppAdd with pull
// policy "never": the store image's ID. It is a NotFound status when no
// pulled image has that name.
func (s *Service) Resolve(refStr string) (string, error) {
	st, err := s.store()
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(refStr, "sha512-") {
		img, err := st.Resolve(refStr)
		if err != nil {
			return "", status.Errorf(codes.NotFound, "image %q: not present", refStr)
		}
		return img.ID, nil
	}
	rec, img, err := s.lookup(st, refStr)
	if err != nil {
		return "", err
	}
	if rec == nil {
		return "", status.Errorf(codes.NotFound, "image %q: not present; pull it first", refStr)
	}
	return img.ID, nil
}

// ImageID is the CRI image ID of store image storeID ("" when no record
// names it), for a ContainerStatus's image_id.
func (s *Service) ImageID(storeID string) string {
	recs, err := s.load()
	if err != nil {
		return ""
	}
	for _, rec := range recs {
		if slices.Contains(rec.StoreIDs, storeID) {
			return rec.ID
		}
	}
	return ""
}

// PullImage pulls an image from its registry or a mirror of it.
func (s *Service) PullImage(ctx context.Context, req *runtime.PullImageRequest) (*runtime.PullImageResponse, error) {
	r, err := parseRef(req.GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	if r.id != "" {
		return nil, status.Errorf(codes.InvalidArgument, "image %q: an image ID cannot be pulled; give a name", r.id)
	}
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	p := images.RegistryPull{Ref: r.name, Mirrors: s.mirrors[registryOf(r.repo)]}
	if a := req.GetAuth(); a != nil && (a.Username != "" || a.Password != "" || a.Auth != "" || a.IdentityToken != "" || a.RegistryToken != "") {
		p.Auth = &images.RegistryAuth{Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken, ServerAddress: a.ServerAddress}
	}
	start := time.Now()
	got, err := s.images.PullRegistry(ctx, st, p)
	if err != nil {
		return nil, pullStatus(ctx, err)
	}
	if !idRE.MatchString(got.ConfigDigest) {
		// The store takes sha256 configs only; the record's file is named
		// after this.
		return nil, status.Errorf(codes.Internal, "image %s: config digest %q", r.name, got.ConfigDigest)
	}
	s.log.Info("image pulled", "image", r.name, "id", got.ConfigDigest, "from", got.From, "took", time.Since(start).Round(time.Millisecond))

	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.load()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	var rec *record
	for _, o := range recs {
		if o.ID == got.ConfigDigest {
			rec = o
			continue
		}
		// A tag names one image: one that moved leaves its old image.
		if r.tag != "" && slices.Contains(o.RepoTags, r.name) {
			o.RepoTags = slices.DeleteFunc(o.RepoTags, func(t string) bool { return t == r.name })
			if len(o.RepoTags)+len(o.RepoDigests) == 0 {
				err = s.delete(o.ID)
			} else {
				err = s.write(o)
			}
			if err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
		}
	}
	if rec == nil {
		rec = &record{ID: got.ConfigDigest}
	}
	rec.StoreIDs = append(slices.DeleteFunc(rec.StoreIDs, func(id string) bool { return id == got.ID }), got.ID)
	if r.tag != "" && !slices.Contains(rec.RepoTags, r.name) {
		rec.RepoTags = append(rec.RepoTags, r.name)
	}
	if d := got.Repo + "@" + got.Digest; got.Digest != "" && !slices.Contains(rec.RepoDigests, d) {
		rec.RepoDigests = append(rec.RepoDigests, d)
	}
	rec.Pulled = time.Now().UTC()
	if err := s.write(rec); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	s.fsChanged()
	return &runtime.PullImageResponse{ImageRef: rec.ID}, nil
}

// registryOf is the registry host of "REGISTRY/REPO".
func registryOf(repo string) string {
	h, _, _ := strings.Cut(repo, "/")
	return h
}

// pullStatus maps a failed pull to the status the kubelet reports.
func pullStatus(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return status.Error(codes.Unauthenticated, err.Error())
		case http.StatusForbidden:
			return status.Error(codes.PermissionDenied, err.Error())
		case http.StatusNotFound:
			return status.Error(codes.NotFound, err.Error())
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// ImageStatus reports an image, or a nil image when it is absent.
func (s *Service) ImageStatus(ctx context.Context, req *runtime.ImageStatusRequest) (*runtime.ImageStatusResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	rec, img, err := s.lookup(st, req.GetImage().GetImage())
	if err != nil || rec == nil {
		return &runtime.ImageStatusResponse{}, err
	}
	out, info := s.image(st, rec, img, req.GetVerbose())
	return &runtime.ImageStatusResponse{Image: out, Info: info}, nil
}

// image is the CRI view of a record: user fields from the image's config
// (as the store's appc manifest keeps it: a numeric user is a UID, any
// other a user name).
func (s *Service) image(st *store.Store, rec *record, img store.Image, verbose bool) (*runtime.Image, map[string]string) {
	out := &runtime.Image{
		Id:          rec.ID,
		RepoTags:    slices.Clone(rec.RepoTags),
		RepoDigests: slices.Clone(rec.RepoDigests),
		Size:        uint64(max(img.Size, 0)),
		Spec:        &runtime.ImageSpec{Image: rec.ID},
	}
	var info map[string]string
	if im, err := st.Manifest(img.ID); err == nil && im.App != nil {
		if uid, err := strconv.ParseInt(im.App.User, 10, 64); err == nil {
			out.Uid = &runtime.Int64Value{Value: uid}
		} else {
			out.Username = im.App.User
		}
		if verbose {
			if b, err := im.MarshalJSON(); err == nil {
				info = map[string]string{"storeImage": img.ID, "manifest": string(b)}
			}
		}
	}
	return out, info
}

// ListImages lists the pulled images (those of the filter's reference).
func (s *Service) ListImages(ctx context.Context, req *runtime.ListImagesRequest) (*runtime.ListImagesResponse, error) {
	imgs, err := s.list(req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtime.ListImagesResponse{Images: imgs}, nil
}

// StreamImages sends ListImages' answer in one message.
func (s *Service) StreamImages(req *runtime.StreamImagesRequest, stream grpc.ServerStreamingServer[runtime.StreamImagesResponse]) error {
	imgs, err := s.list(req.GetFilter())
	if err != nil {
		return err
	}
	return stream.Send(&runtime.StreamImagesResponse{Images: imgs})
}

func (s *Service) list(f *runtime.ImageFilter) ([]*runtime.Image, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	recs, err := s.load()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if want := f.GetImage().GetImage(); want != "" {
		r, err := parseRef(want)
		if err != nil {
			return nil, err
		}
		if rec := find(recs, r); rec != nil {
			recs = []*record{rec}
		} else {
			recs = nil
		}
	}
	out := []*runtime.Image{}
	for _, rec := range recs {
		if img, ok := liveImage(st, rec); ok {
			ci, _ := s.image(st, rec, img, false)
			out = append(out, ci)
		}
	}
	return out, nil
}

// RemoveImage removes an image under all its names, and its store images
// unless a pod still uses them (gc removes those later). Removing an absent
// image succeeds.
func (s *Service) RemoveImage(ctx context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	r, err := parseRef(req.GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.load()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	rec := find(recs, r)
	if rec == nil {
		return &runtime.RemoveImageResponse{}, nil
	}
	if err := s.delete(rec.ID); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	for _, id := range rec.StoreIDs {
		err := s.images.Remove(ctx, []string{id}, io.Discard)
		switch {
		case err == nil:
		case errors.Is(err, images.ErrImageInUse), errors.Is(err, store.ErrNotFound):
			s.log.Debug("store image kept", "image", rec.ID, "store", id, "err", err)
		default:
			s.log.Warn("store image not removed", "image", rec.ID, "store", id, "err", err)
		}
	}
	s.fsChanged()
	s.log.Info("image removed", "image", rec.ID, "tags", rec.RepoTags)
	return &runtime.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the bytes and inodes of the image store (the data
// directory's cas/), counted on its own file system; a count is reused for
// up to fsInfoMaxAge, or until the next pull or removal.
func (s *Service) ImageFsInfo(ctx context.Context, req *runtime.ImageFsInfoRequest) (*runtime.ImageFsInfoResponse, error) {
	s.fsMu.Lock()
	defer s.fsMu.Unlock()
	if u := s.fsUsage; u == nil || time.Since(time.Unix(0, u.Timestamp)) > fsInfoMaxAge {
		root := filepath.Join(s.images.Dir, "cas")
		used, inodes, err := usage(ctx, root)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		s.fsUsage = &runtime.FilesystemUsage{
			Timestamp:  time.Now().UnixNano(),
			FsId:       &runtime.FilesystemIdentifier{Mountpoint: root},
			UsedBytes:  &runtime.UInt64Value{Value: used},
			InodesUsed: &runtime.UInt64Value{Value: inodes},
		}
	}
	u := s.fsUsage
	return &runtime.ImageFsInfoResponse{ImageFilesystems: []*runtime.FilesystemUsage{{
		Timestamp:  u.Timestamp,
		FsId:       &runtime.FilesystemIdentifier{Mountpoint: u.FsId.Mountpoint},
		UsedBytes:  &runtime.UInt64Value{Value: u.UsedBytes.Value},
		InodesUsed: &runtime.UInt64Value{Value: u.InodesUsed.Value},
	}}}, nil
}

// usage sums the allocated bytes and counts the inodes below root, not
// crossing into other file systems; hard links count once.
func usage(ctx context.Context, root string) (bytes, inodes uint64, err error) {
	var rootDev uint64
	if fi, err := os.Lstat(root); errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	} else if err != nil {
		return 0, 0, err
	} else {
		rootDev = uint64(fi.Sys().(*syscall.Stat_t).Dev)
	}
	seen := map[uint64]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if uint64(sys.Dev) != rootDev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if seen[sys.Ino] {
			return nil
		}
		seen[sys.Ino] = true
		inodes++
		bytes += uint64(sys.Blocks) * 512
		return nil
	})
	return bytes, inodes, err
}
