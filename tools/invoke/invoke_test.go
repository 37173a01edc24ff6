package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/tools/internal/devenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestWithToken(t *testing.T) {
	mints := 0
	mint := func() (string, error) { mints++; return "tok.en.sig", nil }

	// Every fixture in events/: API events get the token, others stay byte for byte.
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, replaced, err := withToken(raw, mint)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		hasPlaceholder := bytes.Contains(raw, []byte(Placeholder))
		if replaced != hasPlaceholder {
			t.Errorf("%s: replaced=%v, placeholder present=%v", f, replaced, hasPlaceholder)
		}
		if !replaced {
			if !bytes.Equal(out, raw) {
				t.Errorf("%s: changed without a placeholder", f)
			}
			continue
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatalf("%s: rewritten event: %v", f, err)
		}
		if ev.Headers["authorization"] != "Bearer tok.en.sig" || bytes.Contains(out, []byte("REPLACE_WITH")) {
			t.Errorf("%s: headers %v", f, ev.Headers)
		}
		// Everything else survives, numbers included.
		var before, after map[string]any
		_ = json.Unmarshal(raw, &before)
		_ = json.Unmarshal(out, &after)
		delete(before["headers"].(map[string]any), "authorization")
		delete(after["headers"].(map[string]any), "authorization")
		b1, _ := json.Marshal(before)
		b2, _ := json.Marshal(after)
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s: other fields changed:\n%s\n%s", f, b1, b2)
		}
	}

	cases := []struct {
		name, in, want string
		replaced       bool
	}{
		{"capitalised header", `{"requestContext":{},"headers":{"Authorization":"Bearer REPLACE_WITH_A_TOKEN_FROM_make_token"}}`,
			`{"headers":{"Authorization":"Bearer tok.en.sig"},"requestContext":{}}`, true},
		{"payload 1.0 multi-value", `{"requestContext":{},"multiValueHeaders":{"authorization":["Bearer REPLACE_WITH_A_TOKEN_FROM_make_token"]},"timeEpoch":1795780800000123}`,
			`{"multiValueHeaders":{"authorization":["Bearer tok.en.sig"]},"requestContext":{},"timeEpoch":1795780800000123}`, true},
		{"real token kept", `{"requestContext":{},"headers":{"authorization":"Bearer abc"}}`,
			`{"requestContext":{},"headers":{"authorization":"Bearer abc"}}`, false},
		{"not an API event", `{"Records":[{"body":"Bearer REPLACE_WITH_A_TOKEN_FROM_make_token"}]}`,
			`{"Records":[{"body":"Bearer REPLACE_WITH_A_TOKEN_FROM_make_token"}]}`, false},
	}
	for _, c := range cases {
		out, replaced, err := withToken([]byte(c.in), mint)
		if err != nil || replaced != c.replaced || string(out) != c.want {
			t.Errorf("%s: got %s, %v, %v; want %s", c.name, out, replaced, err, c.want)
		}
	}

	if _, _, err := withToken([]byte(`[1,2]`), mint); err == nil {
		t.Error("a JSON array: want an error")
	}
	failing := func() (string, error) { return "", errors.New("no issuer") }
	if _, _, err := withToken([]byte(cases[0].in), failing); err == nil || !strings.Contains(err.Error(), "no issuer") {
		t.Errorf("mint failure: %v", err)
	}
}

func TestFunctionSettings(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "template.yaml")
	err := os.WriteFile(tmpl, []byte(`
Globals:
  Function:
    Timeout: 30
    MemorySize: 256
    LoggingConfig:
      LogFormat: JSON
    Environment:
      Variables:
        X: !Ref Thing
Resources:
  Thing:
    Type: AWS::SQS::Queue
  Api:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: .}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 120
      Events:
        Q: {Type: SQS, Properties: {Queue: !GetAtt Thing.Arn}}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := functionSettings(tmpl, "Api"); err != nil || s != (settings{30, 256, "JSON"}) {
		t.Errorf("Api: %+v %v", s, err)
	}
	if s, err := functionSettings(tmpl, "Worker"); err != nil || s != (settings{120, 256, "JSON"}) {
		t.Errorf("Worker: %+v %v", s, err)
	}
	if _, err := functionSettings(tmpl, "Thing"); err == nil {
		t.Error("a queue is not a function")
	}
	// The real template parses.
	if _, err := functionSettings(filepath.Join("..", "..", "template.yaml"), "GetReplayFunction"); err != nil {
		t.Error(err)
	}
}

func TestFunctionEnv(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("SOME_SHELL_SECRET", "x")
	env := functionEnv(map[string]string{
		"AWS_ENDPOINT_URL":           "http://127.0.0.1:5000",
		"WEBHOOKS_CURSOR_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:dev-x",
	}, "GetReplayFunction", settings{30, 256, "JSON"})
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_REGION": "eu-central-1",
		"AWS_LAMBDA_FUNCTION_NAME": "GetReplayFunction", "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_ACCESS_KEY_ID": "local", "AWS_LAMBDA_LOG_FORMAT": "JSON",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if _, ok := env["SOME_SHELL_SECRET"]; ok {
		t.Error("the shell's environment leaked into the function's")
	}
}

// TestInvokeUnderRIE builds functions/get-replay for this machine, runs it under the Lambda
// RIE against an emulator stack and a test JWKS server, and sends it events/get-replay.json
// with a minted token: the fixture names a replay that does not exist, so the function must
// answer a well-formed API Gateway 404 not_found.
func TestInvokeUnderRIE(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Lambda RIE runs Linux binaries only")
	}
	rie := os.Getenv("WEBHOOKS_RIE")
	if rie == "" {
		rie = filepath.Join(testenv.RepoRoot(), ".bin", "aws-lambda-rie")
	}
	if _, err := os.Stat(rie); err != nil {
		msg := "the Lambda RIE is not installed at " + rie + " (run `make tools`)"
		if os.Getenv("WEBHOOKS_REQUIRE_EMULATOR") == "1" {
			t.Fatal(msg + "; WEBHOOKS_REQUIRE_EMULATOR=1")
		}
		t.Skip(msg)
	}
	stack := testenv.Stack(t, nil)
	endpoint := testenv.Endpoint(t)

	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bootstrap, "./functions/get-replay")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bootstrap: %v\n%s", err, out)
	}

	const issuerURL, audience = "https://issuer.test/", "webhooks-rie-test"
	iss, err := devissuer.New(issuerURL, audience)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(iss.JWKSHandler())
	defer jwks.Close()

	dev := map[string]string{"AWS_ENDPOINT_URL": endpoint}
	for k, v := range stack.Env {
		dev[k] = v
	}
	dev["WEBHOOKS_JWKS_URL"], dev["WEBHOOKS_JWT_ISSUER"], dev["WEBHOOKS_JWT_AUDIENCE"] = jwks.URL, issuerURL, audience

	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "get-replay.json"))
	if err != nil {
		t.Fatal(err)
	}
	var token string
	event, replaced, err := withToken(raw, func() (string, error) {
		token, err = iss.Mint(devenv.Tenant, devenv.Scopes, time.Hour)
		return token, err
	})
	if err != nil || !replaced {
		t.Fatalf("token: replaced=%v %v", replaced, err)
	}

	// exec serialises the writes of the RIE's stdout and stderr into one writer.
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	status, body, err := runOnce(ctx, rieConfig{
		RIE: rie, Bootstrap: bootstrap, Env: functionEnv(dev, "GetReplayFunction", settings{30, 256, "JSON"}), Output: &logs,
	}, event)
	if err != nil {
		t.Fatalf("invoke: %v\nlogs:\n%s", err, logs.String())
	}
	if status != http.StatusOK {
		t.Fatalf("RIE answered %d: %s\nlogs:\n%s", status, body, logs.String())
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("not an API Gateway response: %v: %s", err, body)
	}
	var apiErr struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if resp.StatusCode != http.StatusNotFound || json.Unmarshal([]byte(resp.Body), &apiErr) != nil || apiErr.Error != "not_found" {
		t.Fatalf("response %d %s, want 404 not_found\nlogs:\n%s", resp.StatusCode, resp.Body, logs.String())
	}
	if ct := resp.Headers["Content-Type"] + resp.Headers["content-type"]; !strings.Contains(ct, "json") {
		t.Errorf("content type %q (headers %v)", ct, resp.Headers)
	}
	if !strings.Contains(logs.String(), "REPORT RequestId") {
		t.Errorf("no RIE report in the logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("a token reached the logs:\n%s", logs.String())
	}
	t.Logf("response:\n%s\nlogs:\n%s", pretty(body), logs.String())
}
