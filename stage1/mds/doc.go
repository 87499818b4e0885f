// Package mds is the appc metadata service (appc spec v0.8.11, ace.md, "App
// Container Metadata Service") for one pod. It is served by the stage1 run
// process for exactly the pod's lifetime: there is no daemon and no
// registration. The package is Linux-only (ListenInNetNS uses setns(2)).
//
// Contract:
//
//   - Every endpoint lives under /<token>/acMetadata/v1/, where the token is
//     the secret path prefix of AC_METADATA_URL (stage1.NewMDSToken: 256 random bits,
//     URL-safe, unrelated to the pod UUID). A request with another token, a
//     path outside the API, an unknown app or a wrong method gets a 4xx whose
//     body is a fixed status text that carries no pod data.
//   - Responses are computed once, in NewHandler, from the bytes stage0 stored:
//     pod/manifest and apps/<app>/image/manifest are served byte for byte;
//     image IDs come from the reified pod manifest. pod/annotations decodes to
//     exactly what pod/manifest's annotations decode to ([] for an empty list,
//     null when the manifest has null or none), since the ACE validator
//     compares the two; apps/<app>/annotations is the image's annotations with
//     the pod manifest's app annotations set over them (pod wins, image order
//     kept, new names appended), [] when empty. As rkt 1.30 did, each
//     annotation's value is also served alone as text/plain at
//     pod/annotations/<name> and apps/<app>/annotations/<name> (404 for an
//     unknown name). apps/<app>/image/annotations (rkt-ng's, not in ace.md)
//     is the image manifest's own annotations, unmerged, [] when empty.
//   - pod/hmac/sign returns base64(HMAC-SHA512(key, uuid || content)), where
//     uuid is the pod UUID's 16 raw bytes (as rkt did). The key is host-wide
//     (LoadKey), so pod/hmac/verify at any pod's service accepts a signature
//     made by another pod when given that pod's UUID.
//   - Request bodies are capped at MaxBodySize (413 beyond); Serve sets read,
//     write and idle timeouts.
//   - ListenInNetNS opens the listener inside the pod's network namespace
//     (typically 127.0.0.1:0 on the pod's loopback), so only the pod reaches it;
//     the socket keeps working after the calling thread switches back.
package mds
