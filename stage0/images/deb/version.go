package deb

import "strings"

// CompareVersions orders two Debian package versions
// ([epoch:]upstream[-revision]) as dpkg does (deb-version(7)): it returns
// -1, 0 or +1. A missing epoch is 0 and a missing revision is empty.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if c := compareNumbers(ea, eb); c != 0 {
		return c
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

func splitVersion(v string) (epoch, upstream, revision string) {
	epoch = "0"
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// compareFragment compares alternating non-digit and digit runs: non-digit
// runs character by character with '~' before everything (even the end)
// and letters before other characters; digit runs numerically.
func compareFragment(a, b string) int {
	for a != "" || b != "" {
		var na, nb string
		na, a = cutRun(a, false)
		nb, b = cutRun(b, false)
		if c := compareLexical(na, nb); c != 0 {
			return c
		}
		na, a = cutRun(a, true)
		nb, b = cutRun(b, true)
		if c := compareNumbers(na, nb); c != 0 {
			return c
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func cutRun(s string, digits bool) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) == digits {
		i++
	}
	return s[:i], s[i:]
}

// order is the weight of one character of a non-digit run; 0 stands for
// the end of the run.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return int(c)
	default:
		return int(c) + 256
	}
}

func compareLexical(a, b string) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		wa, wb := 0, 0
		if i < len(a) {
			wa = order(a[i])
		}
		if i < len(b) {
			wb = order(b[i])
		}
		if wa != wb {
			if wa < wb {
				return -1
			}
			return 1
		}
	}
	return 0
}

// compareNumbers compares two digit runs of any length numerically.
func compareNumbers(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
