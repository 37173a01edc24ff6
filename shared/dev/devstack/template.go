package devstack

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is the part of a CloudFormation/SAM template devstack understands.
// Values are plain Go values (map[string]any, []any, string, int, bool, ...)
// in which intrinsic functions appear in their long JSON form, e.g.
// map[string]any{"Ref": "X"} or map[string]any{"Fn::GetAtt": []any{"X", "Arn"}},
// whether the YAML used the short (!Ref) or the long form.
type Template struct {
	Parameters map[string]parameter
	Resources  map[string]Resource
	// GlobalEnv is Globals.Function.Environment.Variables (unresolved).
	GlobalEnv map[string]any
	// GlobalFunction is Globals.Function: the properties every function inherits.
	GlobalFunction map[string]any
}

type parameter struct {
	Default    string
	HasDefault bool
}

// Resource is one template resource.
type Resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	DependsOn  []string
}

// LoadTemplate reads and parses a template file; tests use it to check the template
// against the code (routes, functions, queue settings).
func LoadTemplate(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devstack: read template: %w", err)
	}
	return parseTemplate(data)
}

func parseTemplate(data []byte) (*Template, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("devstack: parse template: %w", err)
	}
	if root.Kind == 0 {
		return nil, fmt.Errorf("devstack: template is empty")
	}
	v, err := nodeValue(&root)
	if err != nil {
		return nil, fmt.Errorf("devstack: template: %w", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("devstack: template: top level is not a mapping")
	}

	t := &Template{
		Parameters: map[string]parameter{},
		Resources:  map[string]Resource{},
		GlobalEnv:  map[string]any{},
	}
	for name, raw := range asMap(doc["Parameters"]) {
		p := parameter{}
		if d, ok := asMap(raw)["Default"]; ok && d != nil {
			p.Default, p.HasDefault = scalarString(d), true
		}
		t.Parameters[name] = p
	}
	for id, raw := range asMap(doc["Resources"]) {
		m := asMap(raw)
		typ, _ := m["Type"].(string)
		if typ == "" {
			return nil, fmt.Errorf("devstack: template: resource %s has no Type", id)
		}
		r := Resource{Type: typ, Properties: asMap(m["Properties"]), Metadata: asMap(m["Metadata"])}
		switch d := m["DependsOn"].(type) {
		case string:
			r.DependsOn = []string{d}
		case []any:
			for _, x := range d {
				if s, ok := x.(string); ok {
					r.DependsOn = append(r.DependsOn, s)
				}
			}
		}
		t.Resources[id] = r
	}
	t.GlobalFunction = asMap(asMap(doc["Globals"])["Function"])
	env := asMap(asMap(t.GlobalFunction["Environment"])["Variables"])
	for k, v := range env {
		t.GlobalEnv[k] = v
	}
	return t, nil
}

// nodeValue converts a YAML node into plain Go values, turning CloudFormation's
// short-form tags (!Ref, !GetAtt, !Sub, !Join, ...) into their long form.
func nodeValue(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			val, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if isIntrinsicTag(n.Tag) {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	default:
		return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
	if !isIntrinsicTag(n.Tag) {
		return v, nil
	}
	return intrinsicFromTag(n.Tag, v, n.Line)
}

func isIntrinsicTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

func intrinsicFromTag(tag string, v any, line int) (any, error) {
	name := strings.TrimPrefix(tag, "!")
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", line, s)
			}
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}

// intrinsic reports whether v is a single-key intrinsic function map and returns
// its name and argument.
func intrinsic(v any) (name string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

// getAttArgs normalises the argument of Fn::GetAtt ("X.Arn" or ["X", "Arn"]).
func getAttArgs(arg any) (res, attr string, err error) {
	switch a := arg.(type) {
	case string:
		r, at, found := strings.Cut(a, ".")
		if !found {
			return "", "", fmt.Errorf("Fn::GetAtt %q: want Resource.Attribute", a)
		}
		return r, at, nil
	case []any:
		if len(a) == 2 {
			r, ok1 := a[0].(string)
			at, ok2 := a[1].(string)
			if ok1 && ok2 {
				return r, at, nil
			}
		}
	}
	return "", "", fmt.Errorf("Fn::GetAtt: unsupported argument %v", arg)
}

// expandSub expands a Fn::Sub string.
// It calls fn for every ${Name} (Name may be Res.Attr); ${!Literal} is kept
// literally as ${Literal}.
func expandSub(s string, fn func(name string) (string, error)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("Fn::Sub: unterminated ${ in %q", s)
		}
		name := s[i+2 : i+j]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
		} else {
			val, err := fn(strings.TrimSpace(name))
			if err != nil {
				return "", err
			}
			b.WriteString(val)
		}
		s = s[i+j+1:]
	}
}

// references returns the logical names v refers to (via Ref, Fn::GetAtt and
// Fn::Sub), sorted and without duplicates. Pseudo parameters are included;
// callers filter by what they know.
func references(v any) []string {
	set := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		if name, arg, ok := intrinsic(v); ok {
			switch name {
			case "Ref":
				if s, ok := arg.(string); ok {
					set[s] = true
				}
				return
			case "Fn::GetAtt":
				if r, _, err := getAttArgs(arg); err == nil {
					set[r] = true
				}
				return
			case "Fn::Sub":
				str, vars := arg, map[string]any(nil)
				if list, ok := arg.([]any); ok && len(list) == 2 {
					str, vars = list[0], asMap(list[1])
					walk(list[1])
				}
				if s, ok := str.(string); ok {
					_, _ = expandSub(s, func(name string) (string, error) {
						if _, local := vars[name]; !local {
							r, _, _ := strings.Cut(name, ".")
							set[r] = true
						}
						return "", nil
					})
				}
				return
			}
		}
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// scalarString renders a scalar YAML value the way CloudFormation sees it.
func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}
