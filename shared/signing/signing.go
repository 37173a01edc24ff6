// Package signing implements Standard Webhooks (https://www.standardwebhooks.com) message
// signing: whsec_ secrets and the webhook-id / webhook-timestamp / webhook-signature headers.
//
// Secrets are deliberately hard to leak: the key lives behind an unexported pointer and every
// formatting path (fmt verbs, %#v, slog) prints a redacted placeholder instead.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names. They are written in canonical form by http.Header, which
// is equivalent on the wire because header names are case-insensitive.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Secret key length bounds in raw bytes. 24 bytes (192 bits) is the floor the Standard
// Webhooks spec recommends; 64 is the HMAC-SHA256 block size, beyond which the key is hashed
// anyway and a longer secret adds nothing.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// generatedSecretBytes is the size of secrets we mint: 256 bits matches the HMAC-SHA256
// output size, so the key is never the weakest link.
const generatedSecretBytes = 32

const (
	secretPrefix = "whsec_"
	redacted     = "whsec_***"
)

// ErrInvalidSecret is wrapped by every ParseSecret error so callers can map it to a
// validation failure without matching on text.
var ErrInvalidSecret = errors.New("signing: invalid secret")

// b64 is the encoding the spec mandates for both secrets and signatures. Strict mode rejects
// non-canonical padding bits so that Encode(ParseSecret(s)) == s.
var b64 = base64.StdEncoding.Strict()

// Secret is an HMAC signing key. The zero value holds no key and signs nothing.
//
// The key bytes sit behind a pointer so that even when a Secret is an unexported field of
// some other struct (where fmt cannot call its methods) fmt prints an address, not the key.
type Secret struct {
	k *key
}

type key struct {
	b []byte
}

// ParseSecret parses the whsec_<standard base64> form. Errors describe what is wrong but
// never echo the input, because the input is the secret.
func ParseSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: missing the %q prefix", ErrInvalidSecret, secretPrefix)
	}
	// Refuse early on absurd lengths so a hostile caller cannot make us decode megabytes.
	if len(enc) > b64.EncodedLen(MaxSecretBytes) {
		return Secret{}, fmt.Errorf("%w: key must be %d to %d bytes", ErrInvalidSecret, MinSecretBytes, MaxSecretBytes)
	}
	// The decoder silently skips CR/LF; a secret containing them was mangled somewhere and
	// accepting it would make Encode disagree with what the tenant holds.
	if strings.ContainsAny(enc, "\r\n") {
		return Secret{}, fmt.Errorf("%w: not valid standard base64 after the %q prefix", ErrInvalidSecret, secretPrefix)
	}
	raw, err := b64.DecodeString(enc)
	if err != nil {
		// The CorruptInputError is dropped on purpose: nothing in it helps the caller more
		// than this message does.
		return Secret{}, fmt.Errorf("%w: not valid standard base64 after the %q prefix", ErrInvalidSecret, secretPrefix)
	}
	if len(raw) < MinSecretBytes || len(raw) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("%w: key is %d bytes, must be %d to %d", ErrInvalidSecret, len(raw), MinSecretBytes, MaxSecretBytes)
	}
	return Secret{k: &key{b: raw}}, nil
}

// GenerateSecret returns a new random 32-byte secret from crypto/rand.
func GenerateSecret() (Secret, error) {
	b := make([]byte, generatedSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return Secret{}, fmt.Errorf("signing: generate secret: %w", err)
	}
	return Secret{k: &key{b: b}}, nil
}

// IsZero reports whether s holds no key (the zero value), which Sign skips.
func (s Secret) IsZero() bool { return s.k == nil || len(s.k.b) == 0 }

// Encode returns the whsec_ form, the only way to get at the key material. It exists for
// showing a new secret to its tenant once and for sealing it at rest; never log it.
// The zero Secret encodes as "".
func (s Secret) Encode() string {
	if s.IsZero() {
		return ""
	}
	return secretPrefix + b64.EncodeToString(s.k.b)
}

// Equal reports whether both secrets hold the same key, in constant time so comparing a
// presented secret against a stored one does not leak how many bytes matched.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare(s.bytes(), o.bytes()) == 1
}

func (s Secret) bytes() []byte {
	if s.k == nil {
		return nil
	}
	return s.k.b
}

// String returns a redacted placeholder so a Secret printed by accident reveals nothing.
func (s Secret) String() string { return redacted }

// GoString returns the redacted placeholder for %#v, which would otherwise dump the fields.
func (s Secret) GoString() string { return redacted }

// Format redacts every fmt verb, including ones like %x and %d that bypass String.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue redacts the secret in slog output, whatever the handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Sign returns the webhook-signature header value: one "v1,<base64 HMAC-SHA256>" per
// secret, space-separated, over msgID + "." + unix seconds + "." + body. Signing with every
// live secret lets receivers rotate: a verifier holding either the old or the new secret
// accepts the delivery. Zero secrets are skipped (an empty key would be forgeable).
func Sign(msgID string, ts time.Time, body []byte, secrets ...Secret) string {
	// The signed content is built once without copying body; only the short prefix is
	// materialised, and each HMAC streams prefix then body.
	var prefixBuf [128]byte
	prefix := append(prefixBuf[:0], msgID...)
	prefix = append(prefix, '.')
	prefix = strconv.AppendInt(prefix, ts.Unix(), 10)
	prefix = append(prefix, '.')

	const sigLen = len("v1,") + 44 // 44 = base64 length of a 32-byte MAC
	out := make([]byte, 0, len(secrets)*(sigLen+1))
	var sum [sha256.Size]byte
	for _, s := range secrets {
		if s.IsZero() {
			continue
		}
		m := hmac.New(sha256.New, s.k.b)
		m.Write(prefix)
		m.Write(body)
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = b64.AppendEncode(out, m.Sum(sum[:0]))
	}
	return string(out)
}

// SetHeaders sets the three Standard Webhooks headers on h for a delivery of body.
func SetHeaders(h http.Header, msgID string, ts time.Time, body []byte, secrets ...Secret) {
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(msgID, ts, body, secrets...))
}
