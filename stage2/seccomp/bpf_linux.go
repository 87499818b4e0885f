package seccomp

import (
	"slices"

	"golang.org/x/sys/unix"
)

func stmt(code uint16, k uint32) unix.SockFilter {
	return unix.SockFilter{Code: code, K: k}
}

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// segment is a run of syscall numbers with the same verdict: from start up to
// the start of the next segment (or 2^32-1 for the last one).
type segment struct {
	start uint32
	ret   uint32
}

// segments turns "def except for these numbers" into the list of maximal runs
// of equal verdicts covering every uint32, starting at 0. Neighbouring
// segments have different verdicts.
func segments(def uint32, except map[uint32]uint32) []segment {
	nrs := make([]uint32, 0, len(except))
	for nr := range except {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	segs := []segment{{0, def}}
	add := func(start, ret uint32) {
		switch last := &segs[len(segs)-1]; {
		case last.ret == ret: // the run goes on
		case last.start == start: // only for number 0
			last.ret = ret
		default:
			segs = append(segs, segment{start, ret})
		}
	}
	for _, nr := range nrs {
		add(nr, except[nr])
		if nr != ^uint32(0) {
			if _, next := except[nr+1]; !next {
				add(nr+1, def)
			}
		}
	}
	return segs
}

// tree compiles segments (with segs[0].start == 0) into a binary search over
// the accumulator, which holds the syscall number: each inner node is one
// "jge start" and each leaf one "ret". Conditional jumps only have 8-bit
// offsets, so a node whose left subtree is longer than 255 instructions
// jumps over it with a BPF_JA, which has a 32-bit offset.
func tree(segs []segment) []unix.SockFilter {
	if len(segs) == 1 {
		return []unix.SockFilter{stmt(unix.BPF_RET|unix.BPF_K, segs[0].ret)}
	}
	mid := len(segs) / 2
	left, right := tree(segs[:mid]), tree(segs[mid:])
	var prog []unix.SockFilter
	if len(left) <= 0xff {
		// true: skip the left subtree to the right one; false: fall through.
		prog = append(prog, jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, segs[mid].start, uint8(len(left)), 0))
	} else {
		// true: fall through to the long jump; false: skip it into left.
		prog = append(prog,
			jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, segs[mid].start, 0, 1),
			stmt(unix.BPF_JMP|unix.BPF_JA, uint32(len(left))),
		)
	}
	prog = append(prog, left...)
	return append(prog, right...)
}
