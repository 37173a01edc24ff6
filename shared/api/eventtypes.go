package api

import (
	"encoding/json"
	"errors"
	"net/http"
)

// eventTypeView is one catalog entry as GET /event-types shows it.
type eventTypeView struct {
	Type        string          `json:"type"`
	Description string          `json:"description"`
	Example     json.RawMessage `json:"example"`
	Deprecated  bool            `json:"deprecated"`
}

// eventTypesView is the GET /event-types response: the whole catalog, sorted by type.
type eventTypesView struct {
	Items []eventTypeView `json:"items"`
}

func needEventTypes(d Deps) error {
	if d.EventTypes == nil {
		return errors.New("the EventTypes catalog is required")
	}
	return nil
}

func (h *Handler) listEventTypes(*request) (response, error) {
	types := h.deps.EventTypes.Types()
	out := eventTypesView{Items: make([]eventTypeView, 0, len(types))}
	for _, t := range types {
		out.Items = append(out.Items, eventTypeView{Type: t.Name, Description: t.Description, Example: t.Example, Deprecated: t.Deprecated})
	}
	return jsonResponse(http.StatusOK, out), nil
}
