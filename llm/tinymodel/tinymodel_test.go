package tinymodel

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
)

func gguf(t *testing.T, seed int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, seed); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDeterministic(t *testing.T) {
	a, b := gguf(t, 7), gguf(t, 7)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed produced different files")
	}
	if c := gguf(t, 8); bytes.Equal(a, c) {
		t.Fatal("different seeds produced identical files")
	} else if len(c) != len(a) {
		t.Fatalf("file size depends on seed: %d vs %d", len(a), len(c))
	}
}

// TestGolden pins the exact bytes for DefaultSeed, so a change to the file
// format or the weights is a deliberate decision (update the hash).
func TestGolden(t *testing.T) {
	const want = "d72d4ed243315a31173314f4700d5247c11a374af344e8c2fa9899c865972b86"
	sum := sha256.Sum256(gguf(t, DefaultSeed))
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("sha256(Write(DefaultSeed)) = %s, want %s", got, want)
	}
}

// ---------------------------------------------------------------------------
// a small independent GGUF reader

type tensorInfo struct {
	name   string
	shape  []uint64
	typ    uint32
	offset uint64
}

type ggufFile struct {
	version    uint32
	kv         map[string]any
	keys       []string
	tensors    []tensorInfo
	dataOffset int64
	raw        []byte
}

type reader struct {
	b   []byte
	off int64
}

func (r *reader) take(n int64) ([]byte, error) {
	if n < 0 || r.off+n > int64(len(r.b)) {
		return nil, io.ErrUnexpectedEOF
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) u8() (uint8, error) {
	p, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (r *reader) u32() (uint32, error) {
	p, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p), nil
}

func (r *reader) u64() (uint64, error) {
	p, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p), nil
}

func (r *reader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	p, err := r.take(int64(n))
	return string(p), err
}

func (r *reader) value(typ uint32) (any, error) {
	switch typ {
	case 0, 1: // u8, i8
		v, err := r.u8()
		return v, err
	case 2, 3: // u16, i16
		p, err := r.take(2)
		if err != nil {
			return nil, err
		}
		return binary.LittleEndian.Uint16(p), nil
	case 4:
		return r.u32()
	case 5:
		v, err := r.u32()
		return int32(v), err
	case 6:
		v, err := r.u32()
		return math.Float32frombits(v), err
	case 7:
		v, err := r.u8()
		if v > 1 {
			return nil, fmt.Errorf("bad bool %d", v)
		}
		return v == 1, err
	case 8:
		return r.str()
	case 9:
		et, err := r.u32()
		if err != nil {
			return nil, err
		}
		n, err := r.u64()
		if err != nil {
			return nil, err
		}
		if et == 9 {
			return nil, errors.New("nested arrays")
		}
		vals := make([]any, 0, n)
		for i := uint64(0); i < n; i++ {
			v, err := r.value(et)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		}
		return arrayValue{elem: et, vals: vals}, nil
	case 10:
		return r.u64()
	case 11:
		v, err := r.u64()
		return int64(v), err
	case 12:
		v, err := r.u64()
		return math.Float64frombits(v), err
	}
	return nil, fmt.Errorf("unknown value type %d", typ)
}

type arrayValue struct {
	elem uint32
	vals []any
}

func parseGGUF(b []byte) (*ggufFile, error) {
	r := &reader{b: b}
	magic, err := r.take(4)
	if err != nil {
		return nil, err
	}
	if string(magic) != "GGUF" {
		return nil, fmt.Errorf("bad magic %q", magic)
	}
	f := &ggufFile{kv: map[string]any{}, raw: b}
	if f.version, err = r.u32(); err != nil {
		return nil, err
	}
	nt, err := r.u64()
	if err != nil {
		return nil, err
	}
	nkv, err := r.u64()
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < nkv; i++ {
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		typ, err := r.u32()
		if err != nil {
			return nil, err
		}
		v, err := r.value(typ)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		if _, dup := f.kv[k]; dup {
			return nil, fmt.Errorf("duplicate key %s", k)
		}
		f.kv[k] = v
		f.keys = append(f.keys, k)
	}
	for i := uint64(0); i < nt; i++ {
		var ti tensorInfo
		if ti.name, err = r.str(); err != nil {
			return nil, err
		}
		nd, err := r.u32()
		if err != nil {
			return nil, err
		}
		for j := uint32(0); j < nd; j++ {
			d, err := r.u64()
			if err != nil {
				return nil, err
			}
			ti.shape = append(ti.shape, d)
		}
		if ti.typ, err = r.u32(); err != nil {
			return nil, err
		}
		if ti.offset, err = r.u64(); err != nil {
			return nil, err
		}
		f.tensors = append(f.tensors, ti)
	}
	align := int64(32)
	if a, ok := f.kv["general.alignment"].(uint32); ok {
		align = int64(a)
	}
	f.dataOffset = (r.off + align - 1) / align * align
	for _, pad := range b[r.off:f.dataOffset] {
		if pad != 0 {
			return nil, errors.New("non-zero padding before data section")
		}
	}
	return f, nil
}

func elements(shape []uint64) uint64 {
	n := uint64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func (f *ggufFile) tensor(name string) ([]float32, []uint64, error) {
	for _, ti := range f.tensors {
		if ti.name != name {
			continue
		}
		if ti.typ != 0 {
			return nil, nil, fmt.Errorf("%s: type %d, want F32", name, ti.typ)
		}
		n := elements(ti.shape)
		start := f.dataOffset + int64(ti.offset)
		if start+int64(4*n) > int64(len(f.raw)) {
			return nil, nil, fmt.Errorf("%s: data past end of file", name)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(f.raw[start+int64(4*i):]))
		}
		return out, ti.shape, nil
	}
	return nil, nil, fmt.Errorf("no tensor %s", name)
}

func parsed(t *testing.T) *ggufFile {
	t.Helper()
	f, err := parseGGUF(gguf(t, DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHeaderAndMetadata(t *testing.T) {
	f := parsed(t)
	if f.version != 3 {
		t.Errorf("version %d, want 3", f.version)
	}
	// Keys Ollama 0.17.4 needs: llama.cpp's loader (the default runner for
	// llama) requires the hparams below and tokenizer.ggml.model/tokens/merges;
	// token_type marks the control tokens the templates use; the Go engine
	// (OLLAMA_NEW_ENGINE=1) reads the same keys.
	want := map[string]any{
		"general.architecture":                   "llama",
		"general.alignment":                      uint32(Alignment),
		"llama.context_length":                   uint32(ContextLength),
		"llama.embedding_length":                 uint32(Embedding),
		"llama.block_count":                      uint32(Layers),
		"llama.feed_forward_length":              uint32(FeedForward),
		"llama.attention.head_count":             uint32(Heads),
		"llama.attention.head_count_kv":          uint32(KVHeads),
		"llama.attention.layer_norm_rms_epsilon": float32(RMSEpsilon),
		"llama.rope.dimension_count":             uint32(HeadDim),
		"tokenizer.ggml.model":                   "gpt2",
		"tokenizer.ggml.pre":                     "default",
		"tokenizer.ggml.bos_token_id":            uint32(TokenBOS),
		"tokenizer.ggml.eos_token_id":            uint32(TokenEOS),
	}
	for k, v := range want {
		if got, ok := f.kv[k]; !ok {
			t.Errorf("missing key %s", k)
		} else if got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}

	toks, ok := f.kv["tokenizer.ggml.tokens"].(arrayValue)
	if !ok || toks.elem != 8 || len(toks.vals) != VocabSize {
		t.Fatalf("tokenizer.ggml.tokens: want %d strings, got %#v", VocabSize, f.kv["tokenizer.ggml.tokens"])
	}
	types, ok := f.kv["tokenizer.ggml.token_type"].(arrayValue)
	if !ok || types.elem != 5 || len(types.vals) != VocabSize {
		t.Fatalf("tokenizer.ggml.token_type: want %d int32, got %T", VocabSize, f.kv["tokenizer.ggml.token_type"])
	}
	if m, ok := f.kv["tokenizer.ggml.merges"].(arrayValue); !ok || m.elem != 8 {
		t.Errorf("tokenizer.ggml.merges must be a (possibly empty) string array, got %#v", f.kv["tokenizer.ggml.merges"])
	}
	seen := map[string]bool{}
	for i, v := range toks.vals {
		s := v.(string)
		if s == "" || seen[s] {
			t.Errorf("token %d %q empty or duplicate", i, s)
		}
		seen[s] = true
		wantType := int32(1)
		if i >= 256 {
			wantType = 3
		}
		if types.vals[i].(int32) != wantType {
			t.Errorf("token %d %q type %d, want %d", i, s, types.vals[i], wantType)
		}
	}
	// spot-check GPT-2's byte-to-unicode mapping
	for b, s := range map[int]string{'o': "o", 'k': "k", ' ': "Ġ", '\n': "Ċ", 0: "Ā", 0xAD: "Ń", 0xFF: "ÿ"} {
		if toks.vals[b] != s {
			t.Errorf("byte token %#x = %q, want %q", b, toks.vals[b], s)
		}
	}
	for _, id := range []int{TokenWord, TokenLong, TokenUser, TokenAssistant} {
		if !strings.Contains(Template(TokenWord)+Template(TokenLong), toks.vals[id].(string)) {
			t.Errorf("special token %q not used by any template", toks.vals[id])
		}
	}
}

func TestTensorLayout(t *testing.T) {
	f := parsed(t)
	want := map[string][]uint64{
		"token_embd.weight":  {Embedding, VocabSize},
		"output_norm.weight": {Embedding},
		"output.weight":      {Embedding, VocabSize},
	}
	for l := 0; l < Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		want[p+"attn_norm.weight"] = []uint64{Embedding}
		want[p+"attn_q.weight"] = []uint64{Embedding, Heads * HeadDim}
		want[p+"attn_k.weight"] = []uint64{Embedding, KVHeads * HeadDim}
		want[p+"attn_v.weight"] = []uint64{Embedding, KVHeads * HeadDim}
		want[p+"attn_output.weight"] = []uint64{Heads * HeadDim, Embedding}
		want[p+"ffn_norm.weight"] = []uint64{Embedding}
		want[p+"ffn_gate.weight"] = []uint64{Embedding, FeedForward}
		want[p+"ffn_up.weight"] = []uint64{Embedding, FeedForward}
		want[p+"ffn_down.weight"] = []uint64{FeedForward, Embedding}
	}
	if len(f.tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(f.tensors), len(want))
	}
	if f.dataOffset%Alignment != 0 {
		t.Errorf("data section at %d, not %d-aligned", f.dataOffset, Alignment)
	}
	// gguf.cpp requires offsets to be exactly the running sum of padded sizes.
	var next uint64
	for _, ti := range f.tensors {
		if fmt.Sprint(ti.shape) != fmt.Sprint(want[ti.name]) {
			t.Errorf("%s shape %v, want %v", ti.name, ti.shape, want[ti.name])
		}
		if ti.offset != next {
			t.Errorf("%s offset %d, want %d", ti.name, ti.offset, next)
		}
		if ti.offset%Alignment != 0 {
			t.Errorf("%s offset %d not aligned", ti.name, ti.offset)
		}
		next += (4*elements(ti.shape) + Alignment - 1) / Alignment * Alignment
	}
	if end := f.dataOffset + int64(next); end != int64(len(f.raw)) {
		t.Errorf("file is %d bytes, data section ends at %d", len(f.raw), end)
	}
	for _, src := range Tensors(DefaultSeed) {
		got, _, err := f.tensor(src.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != src.Data[i] {
				t.Fatalf("%s[%d] = %v, want %v", src.Name, i, got[i], src.Data[i])
			}
		}
	}
}

func TestModelfiles(t *testing.T) {
	mfs := Modelfiles("/models/persona-tiny.gguf")
	if len(mfs) != 2 {
		t.Fatalf("got %d Modelfiles", len(mfs))
	}
	for name, marker := range map[string]int{ModelName: TokenWord, LongModelName: TokenLong} {
		mf := mfs[name]
		if !strings.HasPrefix(mf, "FROM /models/persona-tiny.gguf\n") {
			t.Errorf("%s: bad FROM line:\n%s", name, mf)
		}
		if !strings.Contains(mf, TokenText(marker)+`"""`) {
			t.Errorf("%s: template does not end with %s:\n%s", name, TokenText(marker), mf)
		}
	}
	if !strings.Contains(mfs[LongModelName], fmt.Sprintf("PARAMETER num_predict %d", LongNumPredict)) {
		t.Errorf("long Modelfile lacks num_predict safety net")
	}
}

// ---------------------------------------------------------------------------
// a pure-Go llama forward pass over the weights read back from the file

type model struct {
	w map[string][]float32
}

func loadModel(t *testing.T, f *ggufFile) *model {
	t.Helper()
	m := &model{w: map[string][]float32{}}
	for _, ti := range f.tensors {
		d, _, err := f.tensor(ti.name)
		if err != nil {
			t.Fatal(err)
		}
		m.w[ti.name] = d
	}
	return m
}

// matvec: W has GGUF shape [in, out]; y[o] = sum_i W[o*in+i] x[i].
func matvec(w []float32, x []float32, out int) []float32 {
	in := len(x)
	y := make([]float32, out)
	for o := 0; o < out; o++ {
		var s float32
		row := w[o*in : (o+1)*in]
		for i, v := range x {
			s += row[i] * v
		}
		y[o] = s
	}
	return y
}

func rmsnorm(x, w []float32) []float32 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	s := float32(1 / math.Sqrt(ss/float64(len(x))+RMSEpsilon))
	y := make([]float32, len(x))
	for i := range x {
		y[i] = x[i] * s * w[i]
	}
	return y
}

// rope applies llama's (GGML "normal") rotary embedding: adjacent pairs.
func rope(x []float32, pos int) {
	for h := 0; h < len(x)/HeadDim; h++ {
		v := x[h*HeadDim : (h+1)*HeadDim]
		for i := 0; i < HeadDim; i += 2 {
			theta := float64(pos) * math.Pow(RopeFreqBase, -float64(i)/HeadDim)
			c, s := float32(math.Cos(theta)), float32(math.Sin(theta))
			a, b := v[i], v[i+1]
			v[i], v[i+1] = a*c-b*s, a*s+b*c
		}
	}
}

// logits runs the whole sequence and returns the logits of its last token.
func (m *model) logits(tokens []int) []float32 {
	n := len(tokens)
	h := make([][]float32, n)
	for p, tok := range tokens {
		h[p] = append([]float32(nil), m.w["token_embd.weight"][tok*Embedding:(tok+1)*Embedding]...)
	}
	for l := 0; l < Layers; l++ {
		w := func(s string) []float32 { return m.w[fmt.Sprintf("blk.%d.%s.weight", l, s)] }
		q := make([][]float32, n)
		k := make([][]float32, n)
		v := make([][]float32, n)
		for p := range h {
			x := rmsnorm(h[p], w("attn_norm"))
			q[p] = matvec(w("attn_q"), x, Heads*HeadDim)
			k[p] = matvec(w("attn_k"), x, KVHeads*HeadDim)
			v[p] = matvec(w("attn_v"), x, KVHeads*HeadDim)
			rope(q[p], p)
			rope(k[p], p)
		}
		for p := range h {
			att := make([]float32, Heads*HeadDim)
			for hd := 0; hd < Heads; hd++ {
				kh := hd * KVHeads / Heads
				scores := make([]float64, p+1)
				maxs := math.Inf(-1)
				for j := 0; j <= p; j++ {
					var s float64
					for i := 0; i < HeadDim; i++ {
						s += float64(q[p][hd*HeadDim+i]) * float64(k[j][kh*HeadDim+i])
					}
					scores[j] = s / math.Sqrt(HeadDim)
					maxs = math.Max(maxs, scores[j])
				}
				var sum float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - maxs)
					sum += scores[j]
				}
				for j := range scores {
					for i := 0; i < HeadDim; i++ {
						att[hd*HeadDim+i] += float32(scores[j]/sum) * v[j][kh*HeadDim+i]
					}
				}
			}
			o := matvec(w("attn_output"), att, Embedding)
			for i := range o {
				h[p][i] += o[i]
			}
			x := rmsnorm(h[p], w("ffn_norm"))
			g := matvec(w("ffn_gate"), x, FeedForward)
			u := matvec(w("ffn_up"), x, FeedForward)
			for i := range g {
				g[i] = g[i] / (1 + float32(math.Exp(float64(-g[i])))) * u[i]
			}
			d := matvec(w("ffn_down"), g, Embedding)
			for i := range d {
				h[p][i] += d[i]
			}
		}
	}
	x := rmsnorm(h[n-1], m.w["output_norm.weight"])
	return matvec(m.w["output.weight"], x, VocabSize)
}

// tokenize mimics the server: BOS, then control tokens by their text, every
// other byte as its byte token.
func tokenize(s string) []int {
	toks := []int{TokenBOS}
outer:
	for len(s) > 0 {
		for id := 256; id < VocabSize; id++ {
			if sp := TokenText(id); strings.HasPrefix(s, sp) {
				toks = append(toks, id)
				s = s[len(sp):]
				continue outer
			}
		}
		toks = append(toks, int(s[0]))
		s = s[1:]
	}
	return toks
}

func argmaxMargin(l []float32) (best int, margin float32) {
	for i := range l {
		if l[i] > l[best] {
			best = i
		}
	}
	second := float32(math.Inf(-1))
	for i := range l {
		if i != best && l[i] > second {
			second = l[i]
		}
	}
	return best, l[best] - second
}

// minMargin is the smallest logit gap the generation must keep. With a gap of
// 40 the probability of any other token at temperature 1.5 is below 262*e^-26.
const minMargin = 40

var lowestMargin = float32(math.Inf(1))

func generate(t *testing.T, m *model, prompt string, max int) (string, bool) {
	t.Helper()
	toks := tokenize(prompt)
	var out []byte
	for len(out) < max {
		best, margin := argmaxMargin(m.logits(toks))
		lowestMargin = min(lowestMargin, margin)
		if margin < minMargin {
			t.Fatalf("prompt %q step %d: margin %.1f < %d", prompt, len(out), margin, minMargin)
		}
		if best == TokenEOS {
			return string(out), true
		}
		if best >= 256 {
			t.Fatalf("generated control token %d", best)
		}
		out = append(out, byte(best))
		toks = append(toks, best)
	}
	return string(out), false
}

func TestForwardPass(t *testing.T) {
	m := loadModel(t, parsed(t))
	prompts := []string{
		"",
		"hi",
		"You are a helpful persona. Say something.",
		"ok ok ok la la la",
		strings.Repeat("Ünïcødé \n\t{\"json\": [1,2,3]} ", 4),
	}
	for _, p := range prompts {
		user := TokenText(TokenUser) + p
		if got, eos := generate(t, m, user+TokenText(TokenWord), 10); got != Word || !eos {
			t.Errorf("short model on %q: got %q eos=%v, want %q then EOS", p, got, eos, Word)
		}
		if got, eos := generate(t, m, user+TokenText(TokenLong), 20); got != LongOutput(20) || eos {
			t.Errorf("long model on %q: got %q eos=%v, want %q", p, got, eos, LongOutput(20))
		}
	}
	// Other seeds must behave the same (only the small layer weights change).
	m2, err := parseGGUF(gguf(t, 12345))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := generate(t, loadModel(t, m2), "x"+TokenText(TokenWord), 10); got != Word {
		t.Errorf("seed 12345: got %q", got)
	}
	t.Logf("smallest logit margin over all steps: %.2f", lowestMargin)
}

func TestNextTable(t *testing.T) {
	next := Next()
	// Word chain ends in EOS, long chain is a cycle that never reaches EOS.
	tok, s := next[TokenWord], ""
	for tok != TokenEOS && len(s) < 10 {
		s += string(rune(tok))
		tok = next[tok]
	}
	if s != Word {
		t.Errorf("word chain %q", s)
	}
	tok, s = next[TokenLong], ""
	for i := 0; i < 30; i++ {
		if tok == TokenEOS {
			t.Fatal("long chain reaches EOS")
		}
		s += string(rune(tok))
		tok = next[tok]
	}
	if s != LongOutput(30) {
		t.Errorf("long chain %q", s)
	}
	if strings.ContainsAny(LongCycle, Word) {
		t.Error("LongCycle and Word share bytes; the bigram chains would collide")
	}
}
