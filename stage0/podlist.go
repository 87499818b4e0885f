package stage0

import (
	"time"

	"github.com/rkt-ng/rkt/stage1"
)

// listTimeLayout is how rkt 1.30's list --full and image list --full wrote
// times.
const listTimeLayout = "2006-01-02 15:04:05.999 -0700 MST"

// PodListTable formats pods as the rows of rkt 1.30's `rkt list` table, with
// a header row first unless noLegend. One row per app; the pod's UUID,
// state, times and networks are on its first app's row only, and a pod
// without apps shows "-". Without full: 8-character UUIDs and relative
// times; with full: whole UUIDs, absolute times and an IMAGE ID column
// (sha512- and 12 hex digits) and, last, a STAGE1 column: what the stage1
// reported about the pod (stage1.InfoFile), as "k1=v1,k2=v2".
func PodListTable(list []PodStatus, full, noLegend bool, now time.Time) [][]string {
	var rows [][]string
	if !noLegend {
		h := []string{"UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED", "NETWORKS"}
		if full {
			h = []string{"UUID", "APP", "IMAGE NAME", "IMAGE ID", "STATE", "CREATED", "STARTED", "NETWORKS", "STAGE1"}
		}
		rows = append(rows, h)
	}
	when := func(t *time.Time) string {
		switch {
		case t == nil || t.IsZero():
			return ""
		case full:
			return t.Format(listTimeLayout)
		}
		return relativeTime(now, *t)
	}
	for _, st := range list {
		uuid := st.UUID
		if !full && len(uuid) > 8 {
			uuid = uuid[:8]
		}
		state, created, started, nets := st.State, when(st.Created), when(st.Started), FormatNetworks(st.Networks)
		info := stage1.FormatInfoList(st.Stage1Info)
		apps := st.Apps
		if len(apps) == 0 {
			apps = []AppStatus{{Name: "-", Image: "-", ImageID: "-"}}
		}
		for _, a := range apps {
			row := []string{uuid, a.Name, a.Image}
			if full {
				id := a.ImageID
				if id != "-" {
					id = shortImageID(id)
				}
				row = append(row, id)
			}
			row = append(row, state, created, started, nets)
			if full {
				row = append(row, info)
			}
			rows = append(rows, row)
			// The pod's own columns are on its first row only, as in rkt.
			uuid, state, created, started, nets, info = "", "", "", "", "", ""
		}
	}
	return rows
}
