// Package tinymodel generates a tiny, deterministic llama-architecture GGUF
// model for end-to-end tests against a real model server (Ollama).
//
// The network is a real 2-layer llama transformer, but its weights are set so
// that it behaves as a bigram table with huge logit margins: every token's
// embedding is a scaled one-hot vector that dominates the residual stream
// (the attention and MLP weights are small pseudo-random values fixed by the
// seed), and each output row maps exactly one predecessor direction to its
// planned successor. Sampling at any ordinary temperature (0..1.5) with the
// default top_k/top_p therefore picks the planned token every time.
//
// Two chat templates select the behaviour by the marker token that ends the
// prompt:
//
//	persona-tiny       ... <|persona_ok|>   -> "ok" then EOS (finish_reason "stop")
//	persona-tiny-long  ... <|persona_long|> -> "la la la ..." forever, so the
//	                                           server stops at max_tokens
//	                                           (finish_reason "length")
//
// The tokenizer is byte-level "gpt2" BPE without merges: 256 byte tokens in
// GPT-2's byte-to-unicode mapping (token id == byte value) plus six control
// tokens, so any UTF-8 text can be tokenized (one token per byte).
package tinymodel

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
)

// Model names and behaviour the tests check.
const (
	// ModelName answers exactly Word and then stops.
	ModelName = "persona-tiny"
	// LongModelName never emits EOS; it repeats LongCycle until the
	// request's max_tokens (or the Modelfile's num_predict) is reached.
	LongModelName = "persona-tiny-long"

	// Word is the complete answer of ModelName.
	Word = "ok"
	// LongCycle is the text LongModelName repeats, one token per byte.
	LongCycle = "la "
	// LongNumPredict is the num_predict default baked into the long model's
	// Modelfile, so a request without max_tokens still terminates.
	LongNumPredict = 128

	// DefaultSeed is the seed cmd/tinymodel uses unless told otherwise.
	DefaultSeed int64 = 1

	// FileName is the GGUF file name cmd/tinymodel writes.
	FileName = "persona-tiny.gguf"
)

// Architecture hyper-parameters.
const (
	Layers        = 2
	Embedding     = 64
	Heads         = 4
	KVHeads       = 4
	HeadDim       = Embedding / Heads
	FeedForward   = 128
	ContextLength = 4096
	RMSEpsilon    = 1e-5
	RopeFreqBase  = 10000
)

// Token ids. Ids 0..255 are the byte tokens (id == byte value).
const (
	TokenBOS       = 256 // <|startoftext|>
	TokenEOS       = 257 // <|endoftext|>
	TokenUser      = 258 // <|user|>
	TokenAssistant = 259 // <|assistant|>
	TokenWord      = 260 // <|persona_ok|>   (marker M1)
	TokenLong      = 261 // <|persona_long|> (marker M2)
	VocabSize      = 262
)

var specialTokens = [...]string{
	TokenBOS - 256:       "<|startoftext|>",
	TokenEOS - 256:       "<|endoftext|>",
	TokenUser - 256:      "<|user|>",
	TokenAssistant - 256: "<|assistant|>",
	TokenWord - 256:      "<|persona_ok|>",
	TokenLong - 256:      "<|persona_long|>",
}

// Tokens returns the vocabulary, indexed by token id.
func Tokens() []string {
	toks := make([]string, 0, VocabSize)
	b2u := byteToUnicode()
	for b := 0; b < 256; b++ {
		toks = append(toks, string(b2u[b]))
	}
	return append(toks, specialTokens[:]...)
}

// TokenText returns the vocabulary text of a special token id (e.g.
// "<|persona_ok|>" for TokenWord), or "" for a byte token.
func TokenText(id int) string {
	if id < 256 || id >= VocabSize {
		return ""
	}
	return specialTokens[id-256]
}

// byteToUnicode is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the rest to U+0100 onwards, in byte order.
func byteToUnicode() [256]rune {
	var m [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// Next returns the planned successor of every token that can occur as the
// last token of a prompt or of generated text. Every other token maps to
// TokenEOS. The table is what the weights encode.
func Next() map[int]int {
	next := map[int]int{
		TokenWord: int(Word[0]),
		TokenLong: int(LongCycle[0]),
	}
	for i := 0; i+1 < len(Word); i++ {
		next[int(Word[i])] = int(Word[i+1])
	}
	next[int(Word[len(Word)-1])] = TokenEOS
	for i := range LongCycle {
		next[int(LongCycle[i])] = int(LongCycle[(i+1)%len(LongCycle)])
	}
	return next
}

// LongOutput returns the text the long model produces in n tokens.
func LongOutput(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteByte(LongCycle[i%len(LongCycle)])
	}
	return sb.String()
}

// Template returns the Ollama (Go text/template) chat template that ends the
// prompt with the given marker token.
func Template(marker int) string {
	return `{{- range .Messages }}{{ if eq .Role "assistant" }}` + TokenText(TokenAssistant) +
		`{{ else }}` + TokenText(TokenUser) + `{{ end }}{{ .Content }}{{ end }}` + TokenText(marker)
}

// Modelfiles returns the Ollama Modelfile text for ModelName and
// LongModelName, keyed by model name. ggufPath should be absolute (Ollama
// resolves a relative FROM against the Modelfile's directory).
//
// Both models pin num_thread 1: on a busy 2-core CI machine ggml's
// multi-threaded barriers make a 20-token answer take seconds, while one
// thread answers in milliseconds. Both share the same runner options, so
// Ollama serves them from one runner process without reloading.
func Modelfiles(ggufPath string) map[string]string {
	mf := func(marker int, extra string) string {
		return fmt.Sprintf("FROM %s\nTEMPLATE \"\"\"%s\"\"\"\nPARAMETER num_ctx %d\nPARAMETER num_thread 1\n%s",
			filepath.ToSlash(ggufPath), Template(marker), ContextLength, extra)
	}
	return map[string]string{
		ModelName:     mf(TokenWord, ""),
		LongModelName: mf(TokenLong, fmt.Sprintf("PARAMETER num_predict %d\n", LongNumPredict)),
	}
}

// ---------------------------------------------------------------------------
// weights

// Tensor is one named weight in GGUF order: Shape[0] is the fastest-varying
// (row length), Data is row-major over the reversed shape.
type Tensor struct {
	Name  string
	Shape []uint64
	Data  []float32
}

const (
	embedScale  = 4.0  // magnitude of the one-hot token embeddings
	outputScale = 10.0 // output row weight; logit margin is about 8*outputScale
	layerScale  = 0.02 // half-width of the uniform layer weights
)

// directions gives each "live" token its own embedding dimension. Dimension 0
// is shared by every other token (they all predict EOS).
func directions() map[int]int {
	dirs := map[int]int{}
	live := []int{TokenWord, TokenLong}
	for _, c := range []byte(Word + LongCycle) {
		live = append(live, int(c))
	}
	d := 1
	for _, t := range live {
		if _, ok := dirs[t]; !ok {
			dirs[t] = d
			d++
		}
	}
	return dirs
}

// rng is splitmix64: tiny, stable across Go releases, fully determined by
// the seed.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a float32 in [-a, a).
func (r *rng) uniform(a float32) float32 {
	u := float32(r.next()>>40) / float32(1<<24) // [0,1)
	return (2*u - 1) * a
}

// Tensors returns the model weights for seed, in file order.
func Tensors(seed int64) []Tensor {
	r := &rng{s: uint64(seed)}
	dirs := directions()
	next := Next()

	dirOf := func(tok int) int {
		if d, ok := dirs[tok]; ok {
			return d
		}
		return 0
	}

	embd := make([]float32, VocabSize*Embedding)
	for tok := 0; tok < VocabSize; tok++ {
		embd[tok*Embedding+dirOf(tok)] = embedScale
	}

	out := make([]float32, VocabSize*Embedding)
	// shared direction 0 -> EOS
	out[TokenEOS*Embedding+0] = outputScale
	for tok, d := range dirs {
		nt, ok := next[tok]
		if !ok {
			nt = TokenEOS
		}
		out[nt*Embedding+d] = outputScale
	}

	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	random := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = r.uniform(layerScale)
		}
		return v
	}

	ts := []Tensor{
		{"token_embd.weight", []uint64{Embedding, VocabSize}, embd},
	}
	for l := 0; l < Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			Tensor{p + "attn_norm.weight", []uint64{Embedding}, ones(Embedding)},
			Tensor{p + "attn_q.weight", []uint64{Embedding, Heads * HeadDim}, random(Embedding * Heads * HeadDim)},
			Tensor{p + "attn_k.weight", []uint64{Embedding, KVHeads * HeadDim}, random(Embedding * KVHeads * HeadDim)},
			Tensor{p + "attn_v.weight", []uint64{Embedding, KVHeads * HeadDim}, random(Embedding * KVHeads * HeadDim)},
			Tensor{p + "attn_output.weight", []uint64{Heads * HeadDim, Embedding}, random(Heads * HeadDim * Embedding)},
			Tensor{p + "ffn_norm.weight", []uint64{Embedding}, ones(Embedding)},
			Tensor{p + "ffn_gate.weight", []uint64{Embedding, FeedForward}, random(Embedding * FeedForward)},
			Tensor{p + "ffn_up.weight", []uint64{Embedding, FeedForward}, random(Embedding * FeedForward)},
			Tensor{p + "ffn_down.weight", []uint64{FeedForward, Embedding}, random(FeedForward * Embedding)},
		)
	}
	ts = append(ts,
		Tensor{"output_norm.weight", []uint64{Embedding}, ones(Embedding)},
		Tensor{"output.weight", []uint64{Embedding, VocabSize}, out},
	)
	return ts
}

// ---------------------------------------------------------------------------
// GGUF v3 writer

// GGUF metadata value types.
const (
	ggufUint32  = 4
	ggufInt32   = 5
	ggufFloat32 = 6
	ggufBool    = 7
	ggufString  = 8
	ggufArray   = 9
	ggufUint64  = 10
)

const (
	ggufMagic      = 0x46554747 // "GGUF" little-endian
	ggufVersion    = 3
	Alignment      = 32 // general.alignment (the GGUF default)
	ggmlTypeF32    = 0
	tokenNormal    = 1
	tokenControl   = 3
	fileTypeAllF32 = 0
)

// KV is one GGUF metadata entry. Value is a uint32, uint64, float32, bool,
// string, []string or []int32.
type KV struct {
	Key   string
	Value any
}

// Metadata returns the GGUF key/value pairs in file order.
func Metadata() []KV {
	types := make([]int32, VocabSize)
	for i := range types {
		types[i] = tokenNormal
		if i >= 256 {
			types[i] = tokenControl
		}
	}
	return []KV{
		{"general.architecture", "llama"},
		{"general.type", "model"},
		{"general.name", ModelName},
		{"general.file_type", uint32(fileTypeAllF32)},
		{"general.alignment", uint32(Alignment)},
		{"llama.vocab_size", uint32(VocabSize)},
		{"llama.context_length", uint32(ContextLength)},
		{"llama.embedding_length", uint32(Embedding)},
		{"llama.block_count", uint32(Layers)},
		{"llama.feed_forward_length", uint32(FeedForward)},
		{"llama.attention.head_count", uint32(Heads)},
		{"llama.attention.head_count_kv", uint32(KVHeads)},
		{"llama.attention.key_length", uint32(HeadDim)},
		{"llama.attention.value_length", uint32(HeadDim)},
		{"llama.attention.layer_norm_rms_epsilon", float32(RMSEpsilon)},
		{"llama.rope.dimension_count", uint32(HeadDim)},
		{"llama.rope.freq_base", float32(RopeFreqBase)},
		{"tokenizer.ggml.model", "gpt2"},
		{"tokenizer.ggml.pre", "default"},
		{"tokenizer.ggml.tokens", Tokens()},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.merges", []string{}},
		{"tokenizer.ggml.bos_token_id", uint32(TokenBOS)},
		{"tokenizer.ggml.eos_token_id", uint32(TokenEOS)},
		{"tokenizer.ggml.padding_token_id", uint32(TokenEOS)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}
}

type ggufWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (g *ggufWriter) raw(p []byte) {
	if g.err != nil {
		return
	}
	var n int
	n, g.err = g.w.Write(p)
	g.n += int64(n)
}

func (g *ggufWriter) u32(v uint32) { g.raw(binary.LittleEndian.AppendUint32(nil, v)) }
func (g *ggufWriter) u64(v uint64) { g.raw(binary.LittleEndian.AppendUint64(nil, v)) }
func (g *ggufWriter) str(s string) { g.u64(uint64(len(s))); g.raw([]byte(s)) }

func (g *ggufWriter) pad() {
	if r := g.n % Alignment; r != 0 {
		g.raw(make([]byte, Alignment-r))
	}
}

func (g *ggufWriter) value(v any) error {
	switch v := v.(type) {
	case uint32:
		g.u32(ggufUint32)
		g.u32(v)
	case uint64:
		g.u32(ggufUint64)
		g.u64(v)
	case float32:
		g.u32(ggufFloat32)
		g.u32(math.Float32bits(v))
	case bool:
		g.u32(ggufBool)
		if v {
			g.raw([]byte{1})
		} else {
			g.raw([]byte{0})
		}
	case string:
		g.u32(ggufString)
		g.str(v)
	case []string:
		g.u32(ggufArray)
		g.u32(ggufString)
		g.u64(uint64(len(v)))
		for _, s := range v {
			g.str(s)
		}
	case []int32:
		g.u32(ggufArray)
		g.u32(ggufInt32)
		g.u64(uint64(len(v)))
		for _, x := range v {
			g.u32(uint32(x))
		}
	default:
		return fmt.Errorf("tinymodel: unsupported metadata type %T", v)
	}
	return nil
}

// Write writes the GGUF v3 file for seed to w. The same seed always yields
// byte-identical output.
func Write(w io.Writer, seed int64) error {
	g := &ggufWriter{w: bufio.NewWriter(w)}
	meta := Metadata()
	tensors := Tensors(seed)

	g.u32(ggufMagic)
	g.u32(ggufVersion)
	g.u64(uint64(len(tensors)))
	g.u64(uint64(len(meta)))
	for _, m := range meta {
		g.str(m.Key)
		if err := g.value(m.Value); err != nil {
			return err
		}
	}

	var off uint64
	for _, t := range tensors {
		n := uint64(1)
		for _, d := range t.Shape {
			n *= d
		}
		if n != uint64(len(t.Data)) {
			return fmt.Errorf("tinymodel: tensor %s: shape %v has %d elements, data has %d", t.Name, t.Shape, n, len(t.Data))
		}
		g.str(t.Name)
		g.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			g.u64(d)
		}
		g.u32(ggmlTypeF32)
		g.u64(off)
		off += alignUp(4 * n)
	}
	g.pad()

	for _, t := range tensors {
		buf := make([]byte, 4*len(t.Data))
		for i, f := range t.Data {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
		}
		g.raw(buf)
		g.pad()
	}
	if g.err != nil {
		return g.err
	}
	return g.w.Flush()
}

func alignUp(n uint64) uint64 { return (n + Alignment - 1) / Alignment * Alignment }
