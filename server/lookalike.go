package server

import (
	"strings"
	"unicode"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

// skeleton is what a name looks like, for telling whether an author would
// pass for a persona: compatibility forms folded (NFKC: fullwidth
// "Ｔeacher" is "Teacher"), invisible format characters dropped, a leading
// '@' dropped, then Unicode's confusable skeleton (UTS #39, from its
// confusables table: Cyrillic "Teаcher" is "Teacher", "heIper" is
// "helper"), lower-cased.
func skeleton(name string) string {
	s := norm.NFKC.String(strings.TrimSpace(name))
	s = strings.TrimPrefix(s, "@")
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	return strings.ToLower(confusables.Skeleton(s))
}
