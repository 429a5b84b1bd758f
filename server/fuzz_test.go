package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeMessage drives the message endpoint's decoding and validation.
// `go test ./server/` runs the seed corpus (f.Add and testdata/fuzz); `go test
// -fuzz FuzzDecodeMessage ./server/` explores further. Properties:
//   - it never panics, and every refusal is an *httpError with a 4xx status;
//   - what it accepts is valid UTF-8, trimmed, non-empty and within limits;
//   - what it accepts is a JSON object with exactly the string fields author
//     and content, as encoding/json reads it too;
//   - accepting is stable: re-encoding the result decodes to the same result.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"author":"bob","content":"hello @ada"}`,
		`{"content":"  spaced  ","author":" bob "}`,
		`{"author":"bob","content":"a\nb\tc"}`,
		`{"author":"bob","content":"\u00e9\ud83d\ude00"}`,
		`{"author":"bob","content":"\ud800"}`,
		`{"author":"bob","content":""}`,
		`{"author":"bob","content":"hi","extra":true}`,
		`{"Author":"bob","content":"hi"}`,
		`{"author":"bob","author":"eve","content":"hi"}`,
		`{"author":"bob","content":"hi"} {}`,
		`{"author":null,"content":"hi"}`,
		`{"author":1,"content":"hi"}`,
		`[]`, `null`, `"x"`, ``, `{`, `{}`, `{"author":"bob","content":"hi",}`,
		"{\"author\":\"bob\",\"content\":\"\xff\"}",
		"{\"author\":\"b\u202eob\",\"content\":\"hi\"}",
		`{"author":"bob","content":"` + strings.Repeat("x", 41) + `"}`,
	} {
		f.Add([]byte(s))
	}
	lim := msgLimits{MaxBody: 512, MaxContent: 40, MaxAuthor: 8}
	f.Fuzz(func(t *testing.T, body []byte) {
		author, content, err := decodeMessage(bytes.NewReader(body), lim)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				t.Fatalf("refusal %v is not an *httpError", err)
			}
			if st, _ := errorResponse(err); st < 400 || st > 499 {
				t.Fatalf("refusal %v maps to %d, want 4xx", err, st)
			}
			if author != "" || content != "" {
				t.Fatalf("refusal returned data (%q, %q)", author, content)
			}
			return
		}
		if int64(len(body)) > lim.MaxBody || !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted a body that is too big, not UTF-8 or not JSON: %q", body)
		}
		for name, v := range map[string]string{"author": author, "content": content} {
			if !utf8.ValidString(v) || v == "" || strings.TrimSpace(v) != v {
				t.Fatalf("%s %q is not valid, non-empty and trimmed", name, v)
			}
		}
		if n := utf8.RuneCountInString(author); n > lim.MaxAuthor {
			t.Fatalf("author of %d runes accepted", n)
		}
		if n := utf8.RuneCountInString(content); n > lim.MaxContent {
			t.Fatalf("content of %d runes accepted", n)
		}
		// encoding/json must read the same two string fields and nothing else.
		var ref map[string]any
		if err := json.Unmarshal(body, &ref); err != nil || len(ref) != 2 {
			t.Fatalf("reference decode: %v, %d fields", err, len(ref))
		}
		ra, _ := ref["author"].(string)
		rc, _ := ref["content"].(string)
		if strings.TrimSpace(ra) != author || strings.TrimSpace(rc) != content {
			t.Fatalf("got (%q, %q), encoding/json reads (%q, %q)", author, content, ra, rc)
		}
		again, _ := json.Marshal(map[string]string{"author": author, "content": content})
		a2, c2, err := decodeMessage(bytes.NewReader(again), lim)
		if err != nil || a2 != author || c2 != content {
			t.Fatalf("re-encoded %s: got (%q, %q, %v)", again, a2, c2, err)
		}
	})
}
