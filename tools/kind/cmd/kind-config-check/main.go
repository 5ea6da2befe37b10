// Command kind-config-check validates kind cluster config files with kind's own code, without a
// container engine.
//
//	kind-config-check FILE...
//
// `kind create cluster --config FILE` (v0.32.0) reads the file with its strict decoder before it
// needs an engine, but applies its semantic checks (port mappings, node roles, subnets, ...) only
// after it has asked docker or podman for their info and listed the existing nodes. This command
// runs the same three steps kind runs, in the same order, and nothing else:
//
//  1. encoding.Parse: apiVersion/kind dispatch, strict YAML decoding into the public v1alpha4
//     types (an unknown or misspelt field is an error), v1alpha4 defaults, conversion;
//  2. config.SetDefaultsCluster: the defaults `kind create cluster` applies next;
//  3. (*config.Cluster).Validate: kind's semantic checks.
//
// Those functions live in kind's internal packages, which Go lets no other module import, so they
// are bound by linkname to the symbols of the pinned module version (tools/kind/go.mod); the
// linker fails the build if a symbol is missing, so moving the pin cannot silently skip a step.
// Exit status: 0 when every file is valid, 1 when one is not (kind's message on stderr), 2 on
// usage or read errors.
package main

import (
	"fmt"
	"os"
	"unsafe"

	// Links kind's config packages into this binary (the public cluster package uses them).
	_ "sigs.k8s.io/kind/pkg/cluster"
)

// parse is sigs.k8s.io/kind/pkg/internal/apis/config/encoding.Parse; the result is a
// *config.Cluster of kind's internal package, handled here as an opaque pointer.
//
//go:linkname parse sigs.k8s.io/kind/pkg/internal/apis/config/encoding.Parse
func parse(raw []byte) (unsafe.Pointer, error)

//go:linkname setDefaults sigs.k8s.io/kind/pkg/internal/apis/config.SetDefaultsCluster
func setDefaults(cluster unsafe.Pointer)

//go:linkname validate sigs.k8s.io/kind/pkg/internal/apis/config.(*Cluster).Validate
func validate(cluster unsafe.Pointer) error

func check(path string) (bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	cluster, err := parse(raw)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		return false, nil
	}
	setDefaults(cluster)
	if err := validate(cluster); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid kind config: %v\n", path, err)
		return false, nil
	}
	fmt.Printf("%s: valid kind config\n", path)
	return true, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kind-config-check FILE...")
		os.Exit(2)
	}
	status := 0
	for _, path := range os.Args[1:] {
		ok, err := check(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		if !ok {
			status = 1
		}
	}
	os.Exit(status)
}
