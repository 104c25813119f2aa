package webprobe_test

import (
	"crypto/tls"
	"github.com/pacswatch/pacswatch/internal/peertest"
	"io"
	"log"
	"testing"
)

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// selfSigned returns a self-signed server certificate for 127.0.0.1 (peertest.SelfSigned).
func selfSigned(t *testing.T) tls.Certificate { return peertest.SelfSigned(t).TLS }
