package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Placeholder is the authorization header of the API Gateway fixtures in events/.
const Placeholder = "Bearer REPLACE_WITH_A_TOKEN_FROM_make_token"

// withToken returns event with the placeholder authorization header of an API Gateway event
// (HTTP API payload 2.0 or REST payload 1.0: headers, multiValueHeaders; any header-name
// case) replaced by "Bearer <token>". mint is called only when there is a placeholder.
// Other events (SQS, …) and events with a real token are returned unchanged, byte for byte.
func withToken(event []byte, mint func() (string, error)) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(event))
	dec.UseNumber() // keep numbers (timeEpoch, …) exactly as written
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return nil, false, fmt.Errorf("event is not a JSON object: %w", err)
	}
	if _, isAPI := ev["requestContext"]; !isAPI {
		return event, false, nil
	}
	var token string
	replace := func(v string) (string, bool, error) {
		if strings.TrimSpace(v) != Placeholder {
			return v, false, nil
		}
		if token == "" {
			t, err := mint()
			if err != nil {
				return "", false, fmt.Errorf("mint a token for the %q placeholder: %w", Placeholder, err)
			}
			token = t
		}
		return "Bearer " + token, true, nil
	}
	changed := false
	if h, ok := ev["headers"].(map[string]any); ok {
		for k, v := range h {
			s, isStr := v.(string)
			if !isStr || !strings.EqualFold(k, "authorization") {
				continue
			}
			nv, did, err := replace(s)
			if err != nil {
				return nil, false, err
			}
			h[k], changed = nv, changed || did
		}
	}
	if h, ok := ev["multiValueHeaders"].(map[string]any); ok {
		for k, v := range h {
			list, isList := v.([]any)
			if !isList || !strings.EqualFold(k, "authorization") {
				continue
			}
			for i, x := range list {
				s, isStr := x.(string)
				if !isStr {
					continue
				}
				nv, did, err := replace(s)
				if err != nil {
					return nil, false, err
				}
				list[i], changed = nv, changed || did
			}
		}
	}
	if !changed {
		return event, false, nil
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}
