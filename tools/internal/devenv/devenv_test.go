package devenv

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestParse(t *testing.T) {
	in := strings.Join([]string{
		"# written by make dev",
		"",
		"AWS_ENDPOINT_URL=http://127.0.0.1:5000",
		"WEBHOOKS_JWKS_URL=http://127.0.0.1:8080/dev-issuer/.well-known/jwks.json?a=b=c",
		"  WEBHOOKS_LOG_LEVEL=DEBUG  ",
		"EMPTY=",
	}, "\n")
	env, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"AWS_ENDPOINT_URL":   "http://127.0.0.1:5000",
		"WEBHOOKS_JWKS_URL":  "http://127.0.0.1:8080/dev-issuer/.well-known/jwks.json?a=b=c",
		"WEBHOOKS_LOG_LEVEL": "DEBUG",
		"EMPTY":              "",
	}
	if len(env) != len(want) {
		t.Fatalf("got %v, want %v", env, want)
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, bad := range []string{"NOEQUALS", "=value", "TWO WORDS=x"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q): want an error", bad)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "dev.env"))
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "start `make dev` first") {
		t.Fatalf("missing file: got %v, want ErrNotRunning", err)
	}
	file := filepath.Join(dir, "dev.env")
	if err := os.WriteFile(file, []byte("WEBHOOKS_LOG_LEVEL=INFO\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL") {
		t.Fatalf("file without endpoint: got %v", err)
	}
	if err := os.WriteFile(file, []byte("AWS_ENDPOINT_URL=http://127.0.0.1:5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := Load(file)
	if err != nil || env["AWS_ENDPOINT_URL"] != "http://127.0.0.1:5000" {
		t.Fatalf("got %v, %v", env, err)
	}
}

func TestCheckRunning(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := CheckRunning(map[string]string{"AWS_ENDPOINT_URL": "http://" + addr}); err != nil {
		t.Errorf("a listening endpoint: %v", err)
	}
	l.Close()
	err = CheckRunning(map[string]string{"AWS_ENDPOINT_URL": "http://" + addr})
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("a closed endpoint: %v", err)
	}
	if err := CheckRunning(map[string]string{}); err == nil {
		t.Error("no endpoint: want an error")
	}
}

func TestRegionAndPrefix(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	env := map[string]string{
		"WEBHOOKS_CURSOR_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev-CursorSigningSecret-AbCdEf",
		"WEBHOOKS_REPLAY_QUEUE_URL":  "http://127.0.0.1:5000/123456789012/dev-ReplayQueue",
	}
	if got := Region(env); got != "eu-west-1" {
		t.Errorf("Region from ARN = %q", got)
	}
	if got := Region(nil); got != "us-east-1" {
		t.Errorf("Region default = %q", got)
	}
	t.Setenv("AWS_REGION", "ap-south-1")
	if got := Region(env); got != "ap-south-1" {
		t.Errorf("Region from AWS_REGION = %q", got)
	}
	if got := QueuePrefix(env); got != "dev-" {
		t.Errorf("QueuePrefix = %q", got)
	}
	if got := QueuePrefix(map[string]string{"WEBHOOKS_REPLAY_QUEUE_URL": "http://h/1/x-ReplayQueue"}); got != "x-" {
		t.Errorf("QueuePrefix = %q", got)
	}
	if got := QueuePrefix(nil); got != "dev-" {
		t.Errorf("QueuePrefix default = %q", got)
	}
}

// TestIssuerMatchesToolsDev keeps the constants above equal to tools/dev's, which mints the
// tokens the local server accepts.
func TestIssuerMatchesToolsDev(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "dev", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"devAudience": Audience, "demoTenant": Tenant} {
		m := regexp.MustCompile(name + `\s*=\s*"([^"]*)"`).FindSubmatch(src)
		if m == nil || string(m[1]) != want {
			t.Errorf("tools/dev %s = %q, devenv has %q", name, m, want)
		}
	}
	for _, frag := range []string{`"http://" + addr + "/dev-issuer"`, `".local", "dev-issuer.pem"`, `addr := config.Addr.Get()`} {
		if !strings.Contains(string(src), frag) {
			t.Errorf("tools/dev no longer contains %s: update devenv to match", frag)
		}
	}
}

func TestToken(t *testing.T) {
	root := t.TempDir()
	t.Setenv("WEBHOOKS_ADDR", "127.0.0.1:9999")
	tok, err := Token(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != "http://127.0.0.1:9999/dev-issuer" || claims["aud"] != Audience ||
		claims["tenant_id"] != Tenant || claims["scope"] != "webhooks:read webhooks:write webhooks:replay" {
		t.Fatalf("claims: %v", claims)
	}
	if _, err := os.Stat(filepath.Join(root, KeyFile)); err != nil {
		t.Fatalf("key not persisted: %v", err)
	}
	// The issuer recorded by a running stack wins over WEBHOOKS_ADDR.
	iss, err := IssuerURL(map[string]string{"WEBHOOKS_JWT_ISSUER": "http://127.0.0.1:8081/dev-issuer"})
	if err != nil || iss != "http://127.0.0.1:8081/dev-issuer" {
		t.Fatalf("IssuerURL = %q, %v", iss, err)
	}
	if _, err := Token(root, map[string]string{"WEBHOOKS_JWT_ISSUER": "https://auth.example.com/"}); err == nil {
		t.Fatal("a stack verifying another issuer's tokens: want an error")
	}
}
