package metaclient

import "strings"

// ParseAddrs splits a comma-separated list of metad gRPC addresses (the
// --metad flag, CAIRN_METAD), dropping blanks; nil when there is none.
func ParseAddrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
