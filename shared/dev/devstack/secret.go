package devstack

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

const (
	lowerChars = "abcdefghijklmnopqrstuvwxyz"
	upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars = "0123456789"
	punctChars = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

// generateSpec mirrors AWS::SecretsManager::Secret GenerateSecretString.
type generateSpec struct {
	Length                  int
	ExcludeCharacters       string
	ExcludeLowercase        bool
	ExcludeUppercase        bool
	ExcludeNumbers          bool
	ExcludePunctuation      bool
	IncludeSpace            bool
	RequireEachIncludedType bool
	SecretStringTemplate    string
	GenerateStringKey       string
}

func parseGenerateSpec(r *resolver, m map[string]any) (generateSpec, error) {
	g := generateSpec{Length: 32, RequireEachIncludedType: true}
	str := func(k string) (string, error) {
		if v, ok := m[k]; ok {
			return r.resolveString(v)
		}
		return "", nil
	}
	boolean := func(k string, dst *bool) error {
		if v, ok := m[k]; ok {
			b, err := r.resolveBool(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*dst = b
		}
		return nil
	}
	if v, err := str("PasswordLength"); err != nil {
		return g, err
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			return g, fmt.Errorf("PasswordLength %q: want 1..4096", v)
		}
		g.Length = n
	}
	var err error
	if g.ExcludeCharacters, err = str("ExcludeCharacters"); err != nil {
		return g, err
	}
	if g.SecretStringTemplate, err = str("SecretStringTemplate"); err != nil {
		return g, err
	}
	if g.GenerateStringKey, err = str("GenerateStringKey"); err != nil {
		return g, err
	}
	for k, dst := range map[string]*bool{
		"ExcludeLowercase":        &g.ExcludeLowercase,
		"ExcludeUppercase":        &g.ExcludeUppercase,
		"ExcludeNumbers":          &g.ExcludeNumbers,
		"ExcludePunctuation":      &g.ExcludePunctuation,
		"IncludeSpace":            &g.IncludeSpace,
		"RequireEachIncludedType": &g.RequireEachIncludedType,
	} {
		if err := boolean(k, dst); err != nil {
			return g, err
		}
	}
	if (g.SecretStringTemplate == "") != (g.GenerateStringKey == "") {
		return g, errors.New("SecretStringTemplate and GenerateStringKey go together")
	}
	return g, nil
}

// generate returns a random secret following the spec: a password, or the
// SecretStringTemplate JSON object with the password under GenerateStringKey.
func (g generateSpec) generate() (string, error) {
	keep := func(set string) string {
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(g.ExcludeCharacters, r) {
				return -1
			}
			return r
		}, set)
	}
	var classes []string
	add := func(exclude bool, set string) {
		if !exclude {
			if s := keep(set); s != "" {
				classes = append(classes, s)
			}
		}
	}
	add(g.ExcludeLowercase, lowerChars)
	add(g.ExcludeUppercase, upperChars)
	add(g.ExcludeNumbers, digitChars)
	add(g.ExcludePunctuation, punctChars)
	add(!g.IncludeSpace, " ")
	if len(classes) == 0 {
		return "", errors.New("every character class is excluded")
	}
	alphabet := strings.Join(classes, "")
	if g.RequireEachIncludedType && g.Length < len(classes) {
		return "", fmt.Errorf("PasswordLength %d is shorter than the %d required character types", g.Length, len(classes))
	}

	var pw string
	for attempt := 0; ; attempt++ {
		b := make([]byte, g.Length)
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				return "", err
			}
			b[i] = alphabet[n.Int64()]
		}
		pw = string(b)
		if !g.RequireEachIncludedType || hasEach(pw, classes) {
			break
		}
		if attempt > 1000 {
			return "", errors.New("could not satisfy RequireEachIncludedType")
		}
	}

	if g.GenerateStringKey == "" {
		return pw, nil
	}
	obj := map[string]any{}
	if err := json.Unmarshal([]byte(g.SecretStringTemplate), &obj); err != nil {
		return "", fmt.Errorf("SecretStringTemplate: %w", err)
	}
	obj[g.GenerateStringKey] = pw
	out, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func hasEach(s string, classes []string) bool {
	for _, c := range classes {
		if !strings.ContainsAny(s, c) {
			return false
		}
	}
	return true
}
