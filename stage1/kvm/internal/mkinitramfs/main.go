// Command mkinitramfs builds the KVM stage1's guest initramfs at build time,
// uncompressed: the agent at /init; the kernel modules the guest needs
// (virtio, 9p, virtio-serial) with their dependencies, decompressed, listed
// in load order in the agent's modules file; and the namespace stage1 and
// stage2 the agent runs the pod with (below agent.InitramfsStage1, so that
// they are in the guest's memory from the start instead of paged in over
// 9p).
//
//	go run ./stage1/kvm/internal/mkinitramfs -agent AGENT -ns STAGE1 -stage2 STAGE2 -moddir DIR -o OUT
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/rkt-ng/rkt/internal/vm"
	"github.com/rkt-ng/rkt/stage1/kvm/agent"
)

// modules are what the guest loads, in order.
var modules = []string{
	"virtio_pci",     // the PCI transport of every virtio device
	"virtio_console", // the agent's virtio-serial port
	"9pnet_virtio",   // 9p over virtio
	"9p",             // the shares
	"virtio_net",     // the pod's network interfaces
}

func main() {
	agentBin := flag.String("agent", "", "the agent binary (static)")
	nsBin := flag.String("ns", "", "the namespace stage1 binary (static)")
	stage2Bin := flag.String("stage2", "", "the stage2 binary (static)")
	modDir := flag.String("moddir", "", "the kernel's /lib/modules/<version>")
	out := flag.String("o", "", "the initramfs to write")
	flag.Parse()
	if *agentBin == "" || *nsBin == "" || *stage2Bin == "" || *modDir == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: mkinitramfs -agent AGENT -ns STAGE1 -stage2 STAGE2 -moddir DIR -o OUT")
		os.Exit(2)
	}
	if err := build(*agentBin, *nsBin, *stage2Bin, *modDir, *out); err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}

func build(agentBin, nsBin, stage2Bin, modDir, out string) error {
	files := []vm.File{
		{Path: "/init", Src: agentBin, Mode: 0o755},
		{Path: path.Join(agent.InitramfsStage1, agent.NSRun), Src: nsBin, Mode: 0o755},
		{Path: path.Join(agent.InitramfsStage1, agent.Stage2Bin), Src: stage2Bin, Mode: 0o755},
	}
	var list []string
	seen := map[string]bool{}
	for _, m := range modules {
		deps, err := vm.ResolveModule(modDir, m)
		if errors.Is(err, vm.ErrBuiltin) {
			continue
		}
		if err != nil {
			return err
		}
		for _, d := range deps {
			if seen[d] {
				continue
			}
			seen[d] = true
			b, err := vm.ReadModule(d)
			if err != nil {
				return err
			}
			p := fmt.Sprintf("/lib/modules/%02d-%s.ko", len(list), strings.SplitN(path.Base(d), ".ko", 2)[0])
			files = append(files, vm.File{Path: p, Data: b, Mode: 0o644})
			list = append(list, p)
		}
	}
	files = append(files, vm.File{Path: agent.ModulesFile, Data: []byte(strings.Join(list, "\n") + "\n"), Mode: 0o644})
	return vm.WriteInitramfsUncompressed(out, files)
}
