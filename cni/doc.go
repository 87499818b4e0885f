// Package cni sets up and tears down pod networks with libcni and the
// reference plugins: it loads network configurations (built-in default and
// default-restricted, and net.d), creates the pod network namespace, runs ADD
// with rollback on failure, and records everything needed for DEL in
// net-info.json so that teardown works from gc after a crash. Linux-only.
//
// The flow of a pod with its own network namespace:
//
//	cat, _ := cni.Load(localConfig, systemConfig)
//	reqs, _ := cat.Select(netFlag)     // rkt's --net value; see IsHost
//	cni.NewNetNS("/run/rkt/netns/" + uuid)
//	info, _ := cni.Setup(ctx, cni.SetupConfig{..., InfoPath: podDir + "/net-info.json"})
//	// write resolv.conf from info.DNS(), start the pod in the namespace
//	...
//	info, _ = cni.LoadInfo(podDir + "/net-info.json")   // gc, any process
//	cni.Teardown(ctx, info, netnsPath, pluginDirs, dataDir)
//
// Guarantees:
//   - Setup either attaches every network or, on error, has run DEL for each
//     network it started (plugins that cannot be found are skipped, since
//     they never ran) and removed the namespace.
//   - With SetupConfig.InfoPath, the record is on disk before each ADD, so
//     Teardown after SIGKILL at any point releases IPAM leases and iptables
//     rules.
//   - Teardown only needs the record: DEL replays the exact conflist used
//     for ADD (NetInfo.Config), whatever happened to net.d since. It is
//     idempotent and works without the namespace (after a reboot).
//   - Interfaces are eth0, eth1, ... in the order Select returns, which is
//     the lexical order of configuration file names, as in rkt.
//   - Port forwards use the portmap plugin (iptables, or nftables where
//     iptables is absent) with SNAT, so host ports answer on 127.0.0.1, on
//     the host's own addresses and from the pod itself (hairpin).
//   - A host port is forwarded by one pod at a time: Setup fails, naming the
//     port, when a host program listens on it or another live pod forwards
//     it (SetupConfig.PortsDir, a host-wide registry released by Teardown).
//
// The IP masquerade of ptp networks ("ipMasq") is set up by this package
// instead of the plugin, with the plugin's exact rules, chain and comments,
// in one iptables-restore instead of a dozen iptables and nft runs (see
// masq_linux.go).
//
// Host-wide side effects are those of the plugins: ptp enables
// net.ipv4.ip_forward (and IPv6 forwarding when it assigns IPv6), portmap
// keeps its shared CNI-HOSTPORT-* chains after the last pod is gone.
package cni
