//go:build tools

// Package tools pins etcdctl, which the tests use to read the API server's data straight from etcd.
package tools

import _ "go.etcd.io/etcd/etcdctl/v3"
