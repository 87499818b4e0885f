package stage0

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// ImageListEntry is one image of `rkt image list`, in the JSON shape of rkt
// 1.30's api/v1 ImageListEntry (times in nanoseconds since the epoch).
type ImageListEntry struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ImportTime   int64  `json:"import_time"`
	LastUsedTime int64  `json:"last_used_time"`
	Size         int64  `json:"size"`
}

// ImageListFields are the columns of `rkt image list --fields`, in rkt's
// default order, with their headers.
var ImageListFields = []struct{ Name, Header string }{
	{"id", "ID"}, {"name", "NAME"}, {"size", "SIZE"}, {"importtime", "IMPORT TIME"}, {"lastused", "LAST USED"},
}

// imageListSortable are the fields `rkt image list --sort` takes.
var imageListSortable = []string{"name", "importtime", "lastused", "size"}

// ImageListOptions are the flags of `rkt image list`.
type ImageListOptions struct {
	// Fields and Sort are comma-separated field names.
	Fields, Sort string
	// Descending reverses the sort order (--order=desc).
	Descending bool
	// Full prints whole IDs, exact sizes and absolute times.
	Full bool
}

// Check validates the field lists of o.
func (o ImageListOptions) Check() error {
	if _, err := listFields(o.Sort, imageListSortable, "--sort"); err != nil {
		return err
	}
	var valid []string
	for _, f := range ImageListFields {
		valid = append(valid, f.Name)
	}
	_, err := listFields(o.Fields, valid, "--fields")
	return err
}

// ImageList lists the store's images as rkt 1.30 did: the name with
// ":version" when the image has that label, sorted by import time unless
// o.Sort says otherwise.
func (c *Config) ImageList(o ImageListOptions) ([]ImageListEntry, error) {
	sortBy, err := listFields(o.Sort, imageListSortable, "--sort")
	if err != nil {
		return nil, err
	}
	imgs, err := c.Images().List()
	if err != nil {
		return nil, err
	}
	out := make([]ImageListEntry, 0, len(imgs))
	for _, im := range imgs {
		name := im.Name
		if v, ok := im.Labels.Get("version"); ok {
			name += ":" + v
		}
		out = append(out, ImageListEntry{ID: im.ID, Name: name, ImportTime: im.ImportTime.UnixNano(), LastUsedTime: im.LastUsed.UnixNano(), Size: im.Size})
	}
	slices.SortStableFunc(out, func(a, b ImageListEntry) int {
		for _, f := range sortBy {
			var r int
			switch f {
			case "name":
				r = strings.Compare(a.Name, b.Name)
			case "importtime":
				r = cmp.Compare(a.ImportTime, b.ImportTime)
			case "lastused":
				r = cmp.Compare(a.LastUsedTime, b.LastUsedTime)
			case "size":
				r = cmp.Compare(a.Size, b.Size)
			}
			if r != 0 {
				if o.Descending {
					return -r
				}
				return r
			}
		}
		return 0
	})
	return out, nil
}

// listFields splits a comma-separated field list and checks every name
// against valid.
func listFields(list string, valid []string, flag string) ([]string, error) {
	if list == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(list, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if !slices.Contains(valid, f) {
			return nil, fmt.Errorf("%s: unknown field %q (valid: %s)", flag, f, strings.Join(valid, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// ImageListTable formats entries as the rows of rkt 1.30's table for the
// given fields, with a header row first unless noLegend: short IDs
// (sha512- and 12 hex digits), sizes in binary units ("14 MiB") and
// relative times ("3 minutes ago"), or with full, whole IDs, byte counts and
// absolute times.
func ImageListTable(entries []ImageListEntry, o ImageListOptions, noLegend bool, now time.Time) ([][]string, error) {
	var valid []string
	headers := map[string]string{}
	for _, f := range ImageListFields {
		valid = append(valid, f.Name)
		headers[f.Name] = f.Header
	}
	fields, err := listFields(o.Fields, valid, "--fields")
	if err != nil {
		return nil, err
	}
	if fields == nil {
		fields = valid
	}
	var rows [][]string
	if !noLegend {
		var h []string
		for _, f := range fields {
			h = append(h, headers[f])
		}
		rows = append(rows, h)
	}
	for _, e := range entries {
		var row []string
		for _, f := range fields {
			switch f {
			case "id":
				id := e.ID
				if !o.Full {
					id = shortImageID(id)
				}
				row = append(row, id)
			case "name":
				row = append(row, e.Name)
			case "size":
				if o.Full {
					row = append(row, fmt.Sprint(e.Size))
				} else {
					row = append(row, humanBytes(e.Size))
				}
			case "importtime", "lastused":
				t := time.Unix(0, e.ImportTime)
				if f == "lastused" {
					t = time.Unix(0, e.LastUsedTime)
				}
				if o.Full {
					row = append(row, t.Format("2006-01-02 15:04:05.999 -0700 MST"))
				} else {
					row = append(row, relativeTime(now, t))
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// shortImageID is rkt 1.30's image list form of an ID: the algorithm and
// the first 12 hex digits.
func shortImageID(id string) string {
	if i := strings.Index(id, "-"); i > 0 && i+13 < len(id) {
		return id[:i+13]
	}
	return id
}

// humanBytes writes n in binary units as rkt 1.30's image list did: "512
// B", "1.5 KiB", "14 MiB" (one decimal below 10).
func humanBytes(n int64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	e := math.Floor(math.Log(float64(n)) / math.Log(1024))
	v := math.Floor(float64(n)/math.Pow(1024, e)*10+0.5) / 10
	if v >= 10 {
		return fmt.Sprintf("%.0f %s", v, units[int(e)])
	}
	return fmt.Sprintf("%.1f %s", v, units[int(e)])
}

// relativeTime says how long before now t was, in rkt 1.30's words ("now",
// "1 second ago", "5 minutes ago", "2 days ago", "3 weeks ago", ...).
func relativeTime(now, t time.Time) string {
	d := now.Sub(t)
	suffix := "ago"
	if d < 0 {
		d, suffix = -d, "from now"
	}
	const day, week, month, year = 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour
	steps := []struct {
		below time.Duration
		one   string
		unit  time.Duration
		many  string
	}{
		{time.Second, "now", 0, ""},
		{2 * time.Second, "1 second", 0, ""},
		{time.Minute, "", time.Second, "seconds"},
		{2 * time.Minute, "1 minute", 0, ""},
		{time.Hour, "", time.Minute, "minutes"},
		{2 * time.Hour, "1 hour", 0, ""},
		{day, "", time.Hour, "hours"},
		{2 * day, "1 day", 0, ""},
		{week, "", day, "days"},
		{2 * week, "1 week", 0, ""},
		{month, "", week, "weeks"},
		{2 * month, "1 month", 0, ""},
		{year, "", month, "months"},
		{18 * month, "1 year", 0, ""},
		{2 * year, "2 years", 0, ""},
		{37 * year, "", year, "years"},
	}
	for _, s := range steps {
		if d >= s.below {
			continue
		}
		switch {
		case s.one == "now":
			return "now"
		case s.one != "":
			return s.one + " " + suffix
		default:
			return fmt.Sprintf("%d %s %s", d/s.unit, s.many, suffix)
		}
	}
	return "a long while " + suffix
}
