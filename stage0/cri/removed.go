package cri

import (
	"encoding/json"
	"os"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/pods"
)

// maxRemovedBytes bounds the list of removed containers read back.
const maxRemovedBytes = 1 << 20

// readRemoved reads the containers removed from a sandbox after its pod
// stopped (rkt-cri's own file in the pod directory).
func readRemoved(p *pods.Pod) map[string]bool {
	b, err := os.ReadFile(p.CRIRemovedPath())
	if err != nil || len(b) > maxRemovedBytes {
		return nil
	}
	var ids []string
	if json.Unmarshal(b, &ids) != nil {
		return nil
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// markRemoved adds a container to the sandbox's removed list. The pod is
// locked meanwhile, so that it is not removed beside us.
func markRemoved(p *pods.Pod, id string) error {
	l, err := p.LockApps()
	if err != nil {
		return err
	}
	defer l.Close()
	ids := []string{}
	for k := range readRemoved(p) {
		ids = append(ids, k)
	}
	ids = append(ids, id)
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	return atomicfile.Replace(p.CRIRemovedPath(), b, 0o644)
}
