package cli_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// isolation returns the attributes that start pacswatch in a network namespace of its own, with
// no interface up, so that a malformed input that unexpectedly parsed could reach nothing: as
// root a new namespace, otherwise one inside a new user namespace. Nil when neither is allowed.
func isolation(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	candidates := []*syscall.SysProcAttr{{Cloneflags: syscall.CLONE_NEWNET}}
	if uid, gid := os.Getuid(), os.Getgid(); uid != 0 {
		candidates = []*syscall.SysProcAttr{{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		}}
	}
	for _, attr := range candidates {
		cmd := exec.Command(binary, "version")
		cmd.SysProcAttr = attr
		if cmd.Run() == nil {
			return attr
		}
	}
	return nil
}

// killedWithParent returns the attributes that kill a child when this test process dies,
// however it dies.
func killedWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
