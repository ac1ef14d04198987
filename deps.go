//go:build tools

// This file pins the product card's dependencies so that `go mod tidy` keeps
// them while parts of the tree that use them are being written.
package pqlab

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/cloudflare/circl/kem/mlkem/mlkem768"
	_ "github.com/stretchr/testify/require"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "gonum.org/v1/plot"
	_ "gvisor.dev/gvisor/pkg/tcpip/stack"
)
