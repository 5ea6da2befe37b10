//go:build tools

// Package tools pins the upstream command this module builds, so `go mod tidy` keeps it.
package tools

import (
	_ "github.com/mattfenwick/cyclonus/cmd/cyclonus"
)
