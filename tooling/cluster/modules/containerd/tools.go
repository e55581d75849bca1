//go:build tools

// Package tools pins containerd v2 and ctr for the test cluster's node (see ../../README.md).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
