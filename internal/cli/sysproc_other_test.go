//go:build !linux

package cli_test

import (
	"syscall"
	"testing"
)

// isolation is nil: network namespaces are Linux's, and the tests that need one skip.
func isolation(*testing.T) *syscall.SysProcAttr { return nil }

// killedWithParent is nil: only Linux signals a child when its parent dies; the test's cleanup
// stops it.
func killedWithParent() *syscall.SysProcAttr { return nil }
