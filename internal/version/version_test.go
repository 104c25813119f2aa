package version

import (
	"strings"
	"testing"
)

// TestIdentity: the identity fits the fields that carry it and names pacswatch.
func TestIdentity(t *testing.T) {
	if n := len(ImplementationVersionName); n > 16 || !strings.HasPrefix(ImplementationVersionName, "PACSWATCH_") {
		t.Errorf("ImplementationVersionName %q (%d characters): want PACSWATCH_ and the version, at most 16", ImplementationVersionName, n)
	}
	if uid := ImplementationClassUID; len(uid) > 64 || !strings.HasPrefix(uid, "2.25.") || strings.Trim(uid, "0123456789.") != "" {
		t.Errorf("ImplementationClassUID %q: want a 2.25. UID of at most 64 characters", uid)
	}
	if n := len(CallingAE); n == 0 || n > 16 || strings.ToUpper(CallingAE) != CallingAE {
		t.Errorf("CallingAE %q: want 1 to 16 upper-case characters", CallingAE)
	}
	if UserAgent != "pacswatch/"+Version {
		t.Errorf("UserAgent %q, want pacswatch/%s", UserAgent, Version)
	}
}
