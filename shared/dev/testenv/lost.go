package testenv

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// LoseFirstResponse is an AWS HTTP client whose first request of one operation reaches the
// service, which carries it out, but whose response is lost to a reset connection: what a
// slow or restarting endpoint does to a real client now and then. The SDK's retryer then
// sends the call again. Operation is the end of the X-Amz-Target header, e.g.
// ".SendMessageBatch"; Next is the client underneath (nil: the SDK's default).
type LoseFirstResponse struct {
	Operation string
	Next      aws.HTTPClient

	mu    sync.Mutex
	calls int
}

// Do sends r, and loses the response of the operation's first call.
func (c *LoseFirstResponse) Do(r *http.Request) (*http.Response, error) {
	next := c.Next
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	resp, err := next.Do(r)
	if err != nil || !strings.HasSuffix(r.Header.Get("X-Amz-Target"), c.Operation) {
		return resp, err
	}
	c.mu.Lock()
	c.calls++
	first := c.calls == 1
	c.mu.Unlock()
	if !first {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

// Calls is how many requests of the operation went through the client, the lost one
// included.
func (c *LoseFirstResponse) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}
