// Package scenarios holds the simulator's scenario files (see package sim
// and `persona sim`), embedded so that the binary can run them without the
// source tree. The directory stays plain YAML files: edit them, and run
// them with `persona sim scenarios/NAME.yaml`.
package scenarios

import "embed"

// FS holds every scenario file, by file name (overload-burst.yaml, ...).
//
//go:embed *.yaml
var FS embed.FS

// Default is the scenario `persona sim` runs without a file.
const Default = "overload-burst.yaml"
