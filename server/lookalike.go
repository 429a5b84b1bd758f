package server

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// skeleton is what a name looks like, for telling whether an author would
// pass for a persona: compatibility forms folded (NFKC: fullwidth
// "Ｔeacher" is "Teacher"), invisible format characters dropped, letters
// that look like Latin ones in Cyrillic and Greek mapped to them (Cyrillic
// "Teаcher" is "Teacher"), lower-cased, and a leading '@' dropped. It is a
// small version of Unicode's confusable skeleton (UTS #39), enough for the
// scripts a persona's name can be mistaken in.
func skeleton(name string) string {
	s := norm.NFKC.String(strings.TrimSpace(name))
	s = strings.TrimPrefix(s, "@")
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.Is(unicode.Cf, r) {
			continue
		}
		if l, ok := latinLookalike[r]; ok {
			r = l
		}
		b.WriteRune(r)
	}
	return b.String()
}

// latinLookalike maps lower-case Cyrillic and Greek letters to the Latin
// letters they are drawn like.
var latinLookalike = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c',
	'т': 't', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ԁ': 'd', 'һ': 'h', 'ԛ': 'q',
	'ԝ': 'w', 'ɡ': 'g', 'ӏ': 'l',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't',
	'υ': 'u', 'χ': 'x', 'ω': 'w', 'ϲ': 'c',
}
