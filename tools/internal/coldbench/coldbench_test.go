package coldbench

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestMeasureAlternatesAndTakesMedians: each round runs the three binaries in a rotated
// order, and the ratios are the medians of the rounds' own ratios.
func TestMeasureAlternatesAndTakesMedians(t *testing.T) {
	t.Parallel()
	// Round r: hello takes 2+r ms, the function twice that (3x in round 1), the floor 1.5x.
	var order []string
	round := -1
	init := func(_ context.Context, bin string) (time.Duration, error) {
		if len(order)%3 == 0 {
			round++
		}
		order = append(order, bin)
		hello := time.Duration(2+round) * time.Millisecond
		switch bin {
		case "fn":
			if round == 1 {
				return 3 * hello, nil
			}
			return 2 * hello, nil
		case "floor":
			return hello * 3 / 2, nil
		}
		return hello, nil
	}
	r, err := Measure(context.Background(), Function{LogicalID: "F"}, 3, "hello", "fn", "floor", init)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hello", "fn", "floor", "fn", "floor", "hello", "floor", "hello", "fn"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if r.Ratio != 2 || r.FloorRatio != 1.5 || r.Hello != 3*time.Millisecond || r.Init != 8*time.Millisecond {
		t.Errorf("result %+v; want ratio 2 (median of 2, 3, 2), floor 1.5, hello 3 ms (of 2, 3, 4), init 8 ms (of 4, 9, 8)", r)
	}
}

func TestReportEndsWithTheWorstFunction(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := Report(&out, []Result{
		{Function: Function{LogicalID: "AFunction", Clients: []string{"dynamodb"}}, Init: 6 * time.Millisecond, Hello: 4 * time.Millisecond, Ratio: 1.5, FloorRatio: 1.4},
		{Function: Function{LogicalID: "BFunction"}, Init: 9 * time.Millisecond, Hello: 4 * time.Millisecond, Ratio: 2.25, FloorRatio: 1},
		{Function: Function{LogicalID: "CFunction"}, Ratio: 1.1},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; last != "cold start init ratio to hello-world: max 2.25 (BFunction)" {
		t.Errorf("last line %q", last)
	}
	if !strings.Contains(out.String(), "AFunction") || !strings.Contains(lines[1], "1.50") || !strings.Contains(lines[1], "dynamodb") || !strings.Contains(lines[2], "none") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestFunctionsAreTheMakefilesWithTheirClients: the functions measured are the Makefile's
// build targets, each with the SDK clients it links.
func TestFunctionsAreTheMakefilesWithTheirClients(t *testing.T) {
	t.Parallel()
	fns, err := Functions(testenv.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string][]string{}
	for _, f := range fns {
		clients[f.LogicalID] = f.Clients
	}
	if c, ok := clients["GetReplayFunction"]; !ok || !slices.Equal(c, []string{"dynamodb"}) {
		t.Errorf("GetReplayFunction: %v (listed: %t), want [dynamodb]", c, ok)
	}
	if c, ok := clients["DeliverFunction"]; !ok || !slices.Equal(c, []string{"dynamodb", "kms", "sqs"}) {
		t.Errorf("DeliverFunction: %v (listed: %t), want [dynamodb kms sqs]", c, ok)
	}
}

// TestInitOfRealBootstraps builds hello-world, GetReplayFunction and its SDK floor the way
// make coldstart does and measures them against a stack in the emulator: every run reaches
// /next and the report names the function. A function that cannot start (no
// configuration) is reported with its log, not measured. (It checks the measuring, not the
// numbers, which a busy machine moves.)
func TestInitOfRealBootstraps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the bootstraps are Linux binaries")
	}
	t.Parallel()
	ctx := context.Background()
	root := testenv.RepoRoot()
	stack := testenv.Stack(t, nil)
	dir := t.TempDir()
	b := Builder{Root: root, Command: "GOOS=linux GOARCH=" + runtime.GOARCH + " CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w'"}
	fn := Function{LogicalID: "GetReplayFunction", Package: "./functions/get-replay", Clients: []string{"dynamodb"}}
	// The floor's source must live in the module to build.
	src := filepath.Join(root, "build", "coldbench-test-"+filepath.Base(dir))
	t.Cleanup(func() { _ = os.RemoveAll(src) })
	floorPkg, err := FloorPackage(root, src, fn.Clients)
	if err != nil {
		t.Fatal(err)
	}
	bins := map[string]string{HelloPackage: "hello", fn.Package: "fn", floorPkg: "floor"}
	for pkg, name := range bins {
		if err := b.Build(ctx, pkg, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	iss, err := devissuer.New("https://issuer.test/", "test")
	if err != nil {
		t.Fatal(err)
	}
	api, err := StartRuntimeAPI(map[string]http.Handler{"GET /jwks.json": iss.JWKSHandler()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	env := []string{"AWS_ENDPOINT_URL=" + testenv.Endpoint(t), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"WEBHOOKS_JWKS_URL=http://" + api.Addr + "/jwks.json", "WEBHOOKS_JWT_ISSUER=https://issuer.test/", "WEBHOOKS_JWT_AUDIENCE=test"}
	for k, v := range stack.Env {
		env = append(env, k+"="+v)
	}
	init := func(ctx context.Context, bin string) (time.Duration, error) { return api.Init(ctx, bin, env) }
	r, err := Measure(ctx, fn, 2, filepath.Join(dir, "hello"), filepath.Join(dir, "fn"), filepath.Join(dir, "floor"), init)
	if err != nil {
		t.Fatal(err)
	}
	if r.Init <= 0 || r.Hello <= 0 || r.Floor <= 0 || r.Ratio <= 0 || r.FloorRatio <= 0 {
		t.Fatalf("result %+v", r)
	}
	var out bytes.Buffer
	if err := Report(&out, []Result{r}); err != nil || !strings.HasSuffix(out.String(), "(GetReplayFunction)\n") {
		t.Errorf("report %q, %v", out.String(), err)
	}

	// Without its configuration the function fails its cold start: an error with its log.
	_, err = api.Init(ctx, filepath.Join(dir, "fn"), []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"})
	if err == nil || !strings.Contains(err.Error(), "exited before asking for an event") || !strings.Contains(err.Error(), "cold start failed") || !strings.Contains(err.Error(), "WEBHOOKS_REPLAYS_TABLE") {
		t.Errorf("a function without configuration: %v", err)
	}
}
