package ns

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/rkt-ng/rkt/stage1/mds"
)

// listenSockets opens, in the pod's network namespace, the listening socket
// of every port an app marks socketActivated (appc: passed as LISTEN_FDS).
// It returns the files by app name; the caller hands them to the pod.
func (p *pod) listenSockets(nsPath string) (map[string][]*os.File, map[string][]string, error) {
	files := map[string][]*os.File{}
	names := map[string][]string{}
	for _, ra := range p.manifest.Apps {
		if ra.App == nil {
			continue
		}
		for _, port := range ra.App.Ports {
			if !port.SocketActivated {
				continue
			}
			if port.Protocol != "tcp" {
				closeAll(files)
				return nil, nil, fmt.Errorf("app %s: port %s: socket activation supports tcp, not %q", ra.Name, port.Name, port.Protocol)
			}
			l, err := mds.ListenInNetNS(nsPath, "0.0.0.0:"+strconv.Itoa(int(port.Port)))
			if err != nil {
				closeAll(files)
				return nil, nil, fmt.Errorf("app %s: socket-activated port %s: %w", ra.Name, port.Name, err)
			}
			f, err := l.(*net.TCPListener).File()
			l.Close()
			if err != nil {
				closeAll(files)
				return nil, nil, err
			}
			files[ra.Name.String()] = append(files[ra.Name.String()], f)
			names[ra.Name.String()] = append(names[ra.Name.String()], port.Name.String())
		}
	}
	return files, names, nil
}

func closeAll(m map[string][]*os.File) {
	for _, fs := range m {
		for _, f := range fs {
			f.Close()
		}
	}
}
