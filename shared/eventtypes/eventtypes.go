// Package eventtypes is the platform's event-type catalog: the one list of event types the
// service accepts from producers and sends itself. The list is catalog.json beside this
// file, embedded in every function that needs it; producers and the docs read the same
// file. Ingest dead-letters an event of an undeclared type, POST /endpoints refuses a
// pattern that matches no declared type, and GET /event-types shows the list.
package eventtypes

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/datajetty/webhooks/shared/domain"
)

// File is the catalog's path in the repository, for messages and docs.
const File = "shared/eventtypes/catalog.json"

//go:embed catalog.json
var builtin []byte

// Source says who publishes events of a type.
type Source string

// Sources of event types.
const (
	// SourcePlatform types are published by platform producers to the IngestQueue.
	SourcePlatform Source = "platform"
	// SourceService types are sent by the webhooks service itself (tests, notifications
	// about endpoints); ingest accepts them only from the service.
	SourceService Source = "service"
)

// Type is one declared event type.
type Type struct {
	Name        string          `json:"type"`
	Source      Source          `json:"source"`
	Description string          `json:"description"`
	Example     json.RawMessage `json:"example"`
	Deprecated  bool            `json:"deprecated,omitempty"`
}

// Catalog is a validated list of event types, sorted by name.
type Catalog struct {
	types  []Type
	byName map[string]int
}

// Parse reads and validates a catalog document: every type is a valid concrete event type
// name, declared once, with a source, a description and a JSON object as its example.
func Parse(b []byte) (*Catalog, error) {
	var doc struct {
		Comment    string `json:"$comment"`
		EventTypes []Type `json:"event_types"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("event-type catalog: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("event-type catalog: data after the JSON object")
	}
	if len(doc.EventTypes) == 0 {
		return nil, errors.New("event-type catalog: no event types")
	}
	c := &Catalog{byName: make(map[string]int, len(doc.EventTypes))}
	var errs []error
	for i, t := range doc.EventTypes {
		if !domain.ValidEventType(t.Name) {
			errs = append(errs, fmt.Errorf("event_types[%d]: %q is not a valid event type name", i, t.Name))
		}
		if _, dup := c.byName[t.Name]; dup {
			errs = append(errs, fmt.Errorf("event_types[%d]: %q is declared twice", i, t.Name))
		}
		if t.Source != SourcePlatform && t.Source != SourceService {
			errs = append(errs, fmt.Errorf("%s: source %q is neither %q nor %q", t.Name, t.Source, SourcePlatform, SourceService))
		}
		if strings.TrimSpace(t.Description) == "" {
			errs = append(errs, fmt.Errorf("%s: description is empty", t.Name))
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(t.Example, &obj); err != nil || obj == nil {
			errs = append(errs, fmt.Errorf("%s: example must be a JSON object", t.Name))
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, t.Example); err == nil {
			t.Example = compact.Bytes()
		}
		c.byName[t.Name] = len(c.types)
		c.types = append(c.types, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("event-type catalog: %w", err)
	}
	sort.Slice(c.types, func(i, j int) bool { return c.types[i].Name < c.types[j].Name })
	for i, t := range c.types {
		c.byName[t.Name] = i
	}
	return c, nil
}

var parsedBuiltin = sync.OnceValues(func() (*Catalog, error) { return Parse(builtin) })

// Builtin returns the catalog embedded from catalog.json. The file is checked by this
// package's tests, so an invalid one never ships; should it happen anyway, Builtin panics
// at cold start rather than accept or refuse events by a broken list.
func Builtin() *Catalog {
	c, err := parsedBuiltin()
	if err != nil {
		panic(err)
	}
	return c
}

// Types returns every declared type, sorted by name. The slice is a copy.
func (c *Catalog) Types() []Type { return append([]Type(nil), c.types...) }

// Lookup returns the declared type named name.
func (c *Catalog) Lookup(name string) (Type, bool) {
	i, ok := c.byName[name]
	if !ok {
		return Type{}, false
	}
	return c.types[i], true
}

// Matches reports whether the subscription pattern (a type, "prefix.*" or "*") matches at
// least one declared type.
func (c *Catalog) Matches(pattern string) bool {
	for _, t := range c.types {
		if domain.Match(pattern, t.Name) {
			return true
		}
	}
	return false
}

// CheckPatterns refuses a subscription list with a pattern that matches no declared type,
// so that a typo ("export.dnoe") fails loudly instead of subscribing to nothing. The
// patterns must already be syntactically valid (domain.ValidateEvents).
func (c *Catalog) CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		if !c.Matches(p) {
			return domain.Invalid("events", "events pattern %q matches no declared event type; GET /event-types lists them", p)
		}
	}
	return nil
}

// CheckEvent refuses an ingested event whose type is not declared, or whose type is the
// service's own (SourceService) when the event does not come from the service. Its error
// is the dead-letter reason.
func (c *Catalog) CheckEvent(e domain.Event, fromService bool) error {
	t, ok := c.Lookup(e.Type)
	if !ok {
		return domain.Invalid("type", "type %q is not declared in the event-type catalog (%s)", e.Type, File)
	}
	if t.Source == SourceService && !fromService {
		return domain.Invalid("type", "type %q is reserved for events the webhooks service sends itself", e.Type)
	}
	return nil
}
