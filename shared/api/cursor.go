package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/datajetty/webhooks/shared/domain"
)

// Pagination cursors are "<position>.<mac>": the position is the last item's id, the MAC
// binds it to the tenant, so a forged, edited or another tenant's cursor is refused.

var cursorEncoding = base64.RawURLEncoding.Strict()

func signCursor(key []byte, tenantID, position string) string {
	pos := cursorEncoding.EncodeToString([]byte(position))
	return pos + "." + cursorEncoding.EncodeToString(cursorMAC(key, tenantID, pos))
}

func openCursor(key []byte, tenantID, cursor string) (string, error) {
	bad := domain.Invalid("cursor", "cursor is not valid for this listing; start again without it")
	// Only the base64url alphabet and the one dot: Go's base64 decoding, even Strict,
	// skips CR and LF, which would give one cursor many spellings.
	if strings.IndexFunc(cursor, func(r rune) bool { return !isCursorChar(r) }) >= 0 {
		return "", bad
	}
	pos, mac, ok := strings.Cut(cursor, ".")
	if !ok {
		return "", bad
	}
	// Strict: only the canonical encoding is accepted, so a cursor has one spelling and
	// reopens to exactly what signCursor issued.
	got, err := cursorEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, cursorMAC(key, tenantID, pos)) {
		return "", bad
	}
	raw, err := cursorEncoding.DecodeString(pos)
	if err != nil {
		return "", bad
	}
	return string(raw), nil
}

func cursorMAC(key []byte, tenantID, pos string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("cursor/v1\x00" + tenantID + "\x00" + pos))
	return m.Sum(nil)[:16]
}

// isCursorChar reports whether r may appear in a cursor: the base64url alphabet and the
// dot between position and MAC.
func isCursorChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}
