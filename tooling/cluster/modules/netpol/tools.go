//go:build tools

// Package tools pins kube-network-policies, the test cluster's NetworkPolicy enforcement, which
// runs on the node as a host process (see ../../README.md). It is built from its module source
// with patches/*.patch applied; clientcmd is imported here because patch 002 uses it, so that
// this module's go.sum covers it.
package tools

import (
	_ "k8s.io/client-go/tools/clientcmd"
	_ "sigs.k8s.io/kube-network-policies/cmd"
)
