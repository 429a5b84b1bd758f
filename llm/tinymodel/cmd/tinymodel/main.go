// Command tinymodel writes the tiny deterministic GGUF model and its Ollama
// Modelfiles into a directory:
//
//	go run ./llm/tinymodel/cmd/tinymodel -dir D
//
// creates D/persona-tiny.gguf, D/persona-tiny.Modelfile and
// D/persona-tiny-long.Modelfile, then prints one line per model:
// "<model name> <Modelfile path>", ready for `ollama create NAME -f FILE`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/personaos/persona/llm/tinymodel"
)

func main() {
	dir := flag.String("dir", "", "output directory (created if missing)")
	seed := flag.Int64("seed", tinymodel.DefaultSeed, "weight seed; the same seed gives byte-identical files")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: tinymodel -dir DIR [-seed N]")
		os.Exit(2)
	}
	if err := run(*dir, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "tinymodel:", err)
		os.Exit(1)
	}
}

func run(dir string, seed int64) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tinymodel.Write(&buf, seed); err != nil {
		return err
	}
	gguf := filepath.Join(dir, tinymodel.FileName)
	if err := writeFile(gguf, buf.Bytes()); err != nil {
		return err
	}
	mfs := tinymodel.Modelfiles(gguf)
	names := make([]string, 0, len(mfs))
	for name := range mfs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, name+".Modelfile")
		if err := writeFile(p, []byte(mfs[name])); err != nil {
			return err
		}
		fmt.Println(name, p)
	}
	return nil
}

// writeFile writes atomically so a concurrent reader never sees a partial file.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
