// Package devreceiver is the demo webhook receiver of local development (`make dev`,
// tools/receiver): it answers the ownership challenge and verifies each delivery's Standard
// Webhooks signature with the official Go library, printing one line per delivery.
package devreceiver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	// challengeType is the "type" of the ownership challenge (shared/handshake).
	challengeType = "webhook.challenge"
	// maxBody caps a request body; deliveries are far smaller (the ingest limit is 128 KiB).
	maxBody = 1 << 20
	// maxShown caps the pretty-printed payload, so a big event does not flood the terminal.
	maxShown = 1500
)

// CheckSecret rejects what is not whsec_ + base64, which the official library would
// otherwise turn into an error on every delivery (or, without the prefix, accept as is).
func CheckSecret(secret string) error {
	enc, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New("the secret must start with whsec_")
	}
	if _, err := base64.StdEncoding.DecodeString(enc); err != nil || enc == "" {
		return errors.New("the secret must be whsec_ followed by standard base64")
	}
	return nil
}

// receiver serves deliveries and challenges.
type receiver struct {
	wh    *standardwebhooks.Webhook // nil when the secret could not be used
	whErr error

	mu  sync.Mutex // one delivery's lines at a time
	out io.Writer
}

// NewHandler returns the receiver's HTTP handler: deliveries are verified with secret
// (whsec_…) and printed to out.
func NewHandler(secret string, out io.Writer) http.Handler {
	r := &receiver{out: out}
	if err := CheckSecret(secret); err != nil {
		r.whErr = err
	} else {
		r.wh, r.whErr = standardwebhooks.NewWebhook(secret)
	}
	return r
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST webhooks here", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	verr := rc.verify(body, req.Header)
	now := time.Now().Format("15:04:05")
	id := req.Header.Get(standardwebhooks.HeaderWebhookID)

	var msg struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	_ = json.Unmarshal(body, &msg)

	// The challenge is answered whatever its signature: when the service generates the
	// endpoint's secret, the handshake happens before anyone can give it to this receiver.
	if msg.Type == challengeType && msg.Challenge != "" {
		rc.printf("%s  %s  %s  %s — challenge answered\n", now, orDash(id), challengeType, verdict(verr))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": msg.Challenge})
		return
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  %s  %s", now, orDash(id), orDash(msg.Type), verdict(verr))
	if verr != nil {
		fmt.Fprintf(&b, " (%v)", verr)
	}
	b.WriteByte('\n')
	b.WriteString(pretty(body))
	rc.printf("%s", b.String())

	if verr != nil {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// verify checks the Standard Webhooks headers with the official library (timestamp within
// its 5-minute tolerance).
func (rc *receiver) verify(body []byte, h http.Header) error {
	if rc.wh == nil {
		return fmt.Errorf("receiver misconfigured: %w", rc.whErr)
	}
	return rc.wh.Verify(body, h)
}

func (rc *receiver) printf(format string, args ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	fmt.Fprintf(rc.out, format, args...)
}

func verdict(err error) string {
	if err != nil {
		return "signature INVALID"
	}
	return "signature OK"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pretty indents a JSON body (or quotes a non-JSON one), shortened to maxShown bytes, each
// line indented by two spaces, ending with a newline.
func pretty(body []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "  ", "  "); err != nil {
		buf.Reset()
		fmt.Fprintf(&buf, "%q", body)
	}
	s := buf.String()
	if len(s) > maxShown {
		cut := maxShown
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + fmt.Sprintf(" … (%d bytes)", len(body))
	}
	return "  " + s + "\n"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
