// Command invoke runs one Lambda function's real bootstrap under the Lambda Runtime
// Interface Emulator, without Docker, against the local stack of `make dev`, and prints its
// response (`make invoke FN=<LogicalId> EVENT=events/<file>.json`, which builds the bootstrap
// for this machine first). With -token it only prints a development token (`make token`).
//
// The function gets the environment `make dev` recorded in .local/dev.env (tables, queues,
// key, secret of the local emulator; the token issuer), plus what Lambda itself sets (region,
// function name, timeout, memory). An API Gateway event whose authorization header is the
// placeholder of the events/ fixtures (Bearer REPLACE_WITH_A_TOKEN_FROM_make_token) gets a
// fresh token of the development issuer for the demo tenant, with every scope.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/tools/internal/devenv"
)

func main() {
	if err := run(os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(1)
	}
}

func run(stdout, stderr io.Writer) error {
	var (
		fn        = flag.String("fn", "", "the function's logical id in template.yaml (e.g. GetReplayFunction)")
		eventFile = flag.String("event", "", "the event to send (e.g. events/get-replay.json)")
		bootstrap = flag.String("bootstrap", "", "the function's bootstrap, built for this machine (make invoke builds build/host/<FN>/bootstrap)")
		rie       = flag.String("rie", ".bin/aws-lambda-rie", "the aws-lambda-rie binary (make tools installs it)")
		devEnv    = flag.String("dev-env", devenv.FileName, "the environment make dev records")
		token     = flag.Bool("token", false, "only print a development token for the demo tenant (all scopes)")
	)
	flag.Parse()
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}

	if *token {
		env, err := devenv.Load(*devEnv)
		if errors.Is(err, devenv.ErrNotRunning) {
			env, err = nil, nil // no running stack: the issuer make dev would use
		}
		if err != nil {
			return err
		}
		tok, err := devenv.Token(root, env)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}

	if *fn == "" || *eventFile == "" || *bootstrap == "" || flag.NArg() > 0 {
		flag.Usage()
		return errors.New("usage: invoke -fn <LogicalId> -event <file> -bootstrap <path> [-rie <path>] | invoke -token")
	}
	env, err := devenv.Load(*devEnv)
	if err != nil {
		return err
	}
	if err := devenv.CheckRunning(env); err != nil {
		return err
	}
	settings, err := functionSettings(filepath.Join(root, "template.yaml"), *fn)
	if err != nil {
		return err
	}
	event, err := os.ReadFile(*eventFile)
	if err != nil {
		return err
	}
	event, replaced, err := withToken(event, func() (string, error) { return devenv.Token(root, env) })
	if err != nil {
		return err
	}
	if replaced {
		fmt.Fprintf(stderr, "invoke: authorization placeholder replaced by a fresh token (tenant %s, all scopes)\n", devenv.Tenant)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(settings.Timeout)*time.Second+time.Minute)
	defer cancel()
	fmt.Fprintf(stderr, "invoke: %s (%s) under %s, against %s\n", *fn, *bootstrap, filepath.Base(*rie), env["AWS_ENDPOINT_URL"])
	status, body, err := runOnce(ctx, rieConfig{
		RIE: *rie, Bootstrap: *bootstrap, Env: functionEnv(env, *fn, settings), Output: stderr,
	}, event)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, pretty(body))
	if status != 200 {
		return fmt.Errorf("the emulator answered HTTP %d", status)
	}
	var fnErr struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &fnErr) == nil && fnErr.ErrorType != "" {
		return fmt.Errorf("the function failed (%s)", fnErr.ErrorType)
	}
	return nil
}

// settings are what Lambda tells a function about its configuration.
type settings struct {
	Timeout    int    // seconds
	MemorySize int    // MB
	LogFormat  string // LoggingConfig.LogFormat: JSON or Text (Lambda's default)
}

// functionSettings reads fn's Timeout, MemorySize and LoggingConfig.LogFormat from the
// template (its own, else Globals.Function's, else Lambda's defaults), and checks that fn
// is a function there.
func functionSettings(templatePath, fn string) (settings, error) {
	t, err := devstack.LoadTemplate(templatePath)
	if err != nil {
		return settings{}, err
	}
	if r, ok := t.Resources[fn]; !ok || r.Type != "AWS::Serverless::Function" {
		var fns []string
		for id, r := range t.Resources {
			if r.Type == "AWS::Serverless::Function" {
				fns = append(fns, id)
			}
		}
		return settings{}, fmt.Errorf("%s is not a function of template.yaml (functions: %v)", fn, fns)
	}
	data, err := os.ReadFile(templatePath)
	if err != nil {
		return settings{}, err
	}
	var doc struct {
		Globals struct {
			Function struct {
				Timeout       int `yaml:"Timeout"`
				MemorySize    int `yaml:"MemorySize"`
				LoggingConfig struct {
					LogFormat string `yaml:"LogFormat"`
				} `yaml:"LoggingConfig"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return settings{}, fmt.Errorf("template Globals: %w", err)
	}
	s := settings{Timeout: 3, MemorySize: 128, LogFormat: "Text"} // Lambda's defaults
	g := doc.Globals.Function
	if g.Timeout > 0 {
		s.Timeout = g.Timeout
	}
	if g.MemorySize > 0 {
		s.MemorySize = g.MemorySize
	}
	if g.LoggingConfig.LogFormat != "" {
		s.LogFormat = g.LoggingConfig.LogFormat
	}
	props := t.Resources[fn].Properties
	if lc, ok := props["LoggingConfig"].(map[string]any); ok {
		if f, ok := lc["LogFormat"].(string); ok && f != "" {
			s.LogFormat = f
		}
	}
	if n, err := strconv.Atoi(fmt.Sprint(props["Timeout"])); err == nil && n > 0 {
		s.Timeout = n
	}
	if n, err := strconv.Atoi(fmt.Sprint(props["MemorySize"])); err == nil && n > 0 {
		s.MemorySize = n
	}
	return s, nil
}

// functionEnv is the function's whole environment: the local stack's (dev.env), what Lambda
// sets, dummy credentials for the emulator, and a few variables of this process that
// programs need (PATH, HOME, TMPDIR, TZ). Nothing else leaks in from the shell.
func functionEnv(dev map[string]string, fn string, s settings) map[string]string {
	env := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	region := devenv.Region(dev)
	for k, v := range map[string]string{
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_ACCESS_KEY_ID":               "local",
		"AWS_SECRET_ACCESS_KEY":           "local",
		"AWS_LAMBDA_FUNCTION_NAME":        fn,
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(s.Timeout),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(s.MemorySize),
		"AWS_LAMBDA_LOG_FORMAT":           s.LogFormat,
	} {
		env[k] = v
	}
	for k, v := range dev {
		env[k] = v
	}
	return env
}

// pretty indents a JSON document; anything else is returned as it is.
func pretty(b []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(b), "", "  "); err != nil {
		return string(b)
	}
	return buf.String()
}
