package testenv

import (
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// WithLatency returns a copy of cfg whose clients hold every HTTP request for d before
// sending it, so a benchmark against the emulator on loopback can also be read with the
// round trip a call to AWS has (a few milliseconds from Lambda to DynamoDB in the same
// region). The wait is outside the emulator, so calls made together wait together, as
// they would on the network. d = 0 returns cfg unchanged.
func WithLatency(cfg aws.Config, d time.Duration) aws.Config {
	if d <= 0 {
		return cfg
	}
	c := cfg.Copy()
	next := cfg.HTTPClient
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	c.HTTPClient = delayed{next: next, d: d}
	return c
}

type delayed struct {
	next aws.HTTPClient
	d    time.Duration
}

func (c delayed) Do(r *http.Request) (*http.Response, error) {
	t := time.NewTimer(c.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return c.next.Do(r)
}
