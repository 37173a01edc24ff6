package workerfn

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
	"github.com/datajetty/webhooks/shared/wiring/withkms"
)

// TestDeliverLeavesItsWatermarksToShutdown: the deliver consumer registers its flush of
// waiting watermarks with the Shutdown its build context carries (the Lambda entry path
// runs it on SIGTERM); the consumers with nothing waiting register none.
func TestDeliverLeavesItsWatermarksToShutdown(t *testing.T) {
	env := map[string]string{}
	for _, v := range append(append(append([]config.Var{}, IngestNeeds...), ReplayWorkerNeeds...), DeliverNeeds...) {
		env[v.Name] = "x"
	}
	cfg, err := config.FromMap(env)
	if err != nil {
		t.Fatal(err)
	}
	boot := coldstart.Boot{Config: cfg, AWS: aws.Config{Region: "us-east-1"}, Logger: slog.Default()}
	for name, fn := range map[string]coldstart.Function[SQSHandler]{
		"ingest":        Function("ingest", Ingest),
		"replay-worker": Function("replay-worker", ReplayWorker),
		"deliver":       Function("deliver", Deliver, withkms.Services),
	} {
		sd := &Shutdown{}
		if _, err := fn.Build(WithShutdown(context.Background(), sd), boot); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := map[bool]int{true: 1, false: 0}[name == "deliver"]; sd.Len() != want {
			t.Errorf("%s registered %d shutdown hooks, want %d", name, sd.Len(), want)
		}
		// Without a Shutdown in the context, nothing is registered anywhere.
		if _, err := fn.Build(context.Background(), boot); err != nil {
			t.Fatalf("%s without a Shutdown: %v", name, err)
		}
	}
	ran := 0
	sd := &Shutdown{}
	sd.Add(func(context.Context) { ran++ })
	sd.Add(func(context.Context) { ran++ })
	sd.Run(context.Background())
	if ran != 2 {
		t.Errorf("Run ran %d hooks, want 2", ran)
	}
}
