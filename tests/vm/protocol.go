package vm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Marker starts every line of the init's results on the serial console.
const Marker = "RKTVM-RESULT "

// ConfigPath is where the init finds its [Config] in the initramfs.
const ConfigPath = "/vmtest.json"

// Config tells the init what to do.
type Config struct {
	// Modules are kernel module files in the initramfs, loaded in order
	// with finit_module(2) before anything else.
	Modules []string `json:"modules,omitempty"`
	// CgroupOptions are the mount options of the cgroup2 hierarchy at
	// /sys/fs/cgroup (for example "nsdelegate").
	CgroupOptions string `json:"cgroupOptions,omitempty"`
	// Steps run one after the other, whatever their outcome.
	Steps []Step `json:"steps"`
}

// Step is one command run by the init.
type Step struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	// TimeoutSec bounds the command; 0 means 120 seconds.
	TimeoutSec int `json:"timeoutSec,omitempty"`
}

// Kinds of [Result].
const (
	// KindSetup reports the machine after the init's mounts.
	KindSetup = "setup"
	// KindStep reports one [Step].
	KindStep = "step"
	// KindCgroups lists the cgroups left after the last step.
	KindCgroups = "cgroups"
	// KindDone is the last result; the machine powers off after it.
	KindDone = "done"
	// KindError reports a failure of the init itself.
	KindError = "error"
)

// Result is one line of the init's report.
type Result struct {
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
	// Exit is the step's exit code, 128+N for a signal, -1 if it could
	// not be run or timed out.
	Exit   int    `json:"exit"`
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	Error  string `json:"error,omitempty"`
	// Millis is how long the step took.
	Millis int64 `json:"millis,omitempty"`
	// BootMillis is the machine's uptime when the result was printed.
	BootMillis int64 `json:"bootMillis,omitempty"`
	// Info holds the facts of a setup result (kernel, mounts, own cgroup,
	// root controllers) and the cgroup mounts of a cgroups result.
	Info map[string]string `json:"info,omitempty"`
	// Cgroups lists, for a cgroups result, every cgroup directory of
	// /sys/fs/cgroup relative to it, the root "." first.
	Cgroups []string `json:"cgroups,omitempty"`
}

// maxLine bounds one console line that ParseSerial accepts.
const maxLine = 4 << 20

// ParseSerial returns the results in the console output, in order. Lines
// without the marker (kernel messages, the programs' own output) are skipped;
// a marked line that is not a valid result is an error.
func ParseSerial(out []byte) ([]Result, error) {
	var rs []Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		i := strings.Index(line, Marker)
		if i < 0 {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line[i+len(Marker):]), &r); err != nil {
			return rs, fmt.Errorf("console line %d: bad result: %w", n, err)
		}
		if r.Kind == "" {
			return rs, fmt.Errorf("console line %d: result without kind", n)
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return rs, fmt.Errorf("read console output: %w", err)
	}
	return rs, nil
}
