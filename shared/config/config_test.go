package config

import (
	"strings"
	"testing"
)

func TestFromMapReadsEveryDeclaredSetting(t *testing.T) {
	env := map[string]string{}
	for _, v := range Vars() {
		if v.text != nil {
			env[v.Name] = "value-of-" + v.Name
		}
	}
	env[AllowPrivateTargets.Name] = "TRUE"
	c, err := FromMap(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars() {
		if v.text != nil {
			if got := *v.text(&c); got != "value-of-"+v.Name {
				t.Errorf("%s read as %q", v.Name, got)
			}
		}
	}
	if !c.AllowPrivateTargets {
		t.Error("WEBHOOKS_ALLOW_PRIVATE_TARGETS=TRUE did not allow private targets")
	}
	if c.EndpointsTable != "value-of-WEBHOOKS_ENDPOINTS_TABLE" || c.JWKSURL != "value-of-WEBHOOKS_JWKS_URL" {
		t.Errorf("fields and names are crossed: %+v", c)
	}
}

func TestFromMapDefaultsAndFlags(t *testing.T) {
	c, err := FromMap(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TenantClaim != "tenant_id" || c.AllowPrivateTargets || c.EndpointsTable != "" {
		t.Errorf("defaults: %+v", c)
	}
	for value, want := range map[string]bool{"": false, "false": false, "0": false, "true": true, "1": true, "True": true} {
		c, err := FromMap(map[string]string{"WEBHOOKS_ALLOW_PRIVATE_TARGETS": value})
		if err != nil || c.AllowPrivateTargets != want {
			t.Errorf("WEBHOOKS_ALLOW_PRIVATE_TARGETS=%q: %v, %v; want %v", value, c.AllowPrivateTargets, err, want)
		}
	}
	_, err = FromMap(map[string]string{"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "yes"})
	if err == nil || !strings.Contains(err.Error(), "WEBHOOKS_ALLOW_PRIVATE_TARGETS") {
		t.Errorf("a bad flag: %v, want an error naming the variable", err)
	}
}

func TestRequireNamesEachMissingVariableOnce(t *testing.T) {
	c, err := FromMap(map[string]string{"WEBHOOKS_EVENTS_TABLE": "events"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Require(EventsTable); err != nil {
		t.Errorf("a present setting: %v", err)
	}
	err = c.Require(EventsTable, EndpointsTable, DeliveryQueueURL, EndpointsTable)
	if err == nil || err.Error() != "config: missing WEBHOOKS_ENDPOINTS_TABLE, WEBHOOKS_DELIVERY_QUEUE_URL" {
		t.Errorf("Require = %v", err)
	}
	if err := c.Require(Addr); err == nil {
		t.Error("a tool's variable cannot be a function's requirement")
	}
}

func TestVarsAreDeclaredOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vars() {
		if seen[v.Name] {
			t.Errorf("%s is declared twice", v.Name)
		}
		seen[v.Name] = true
		if (v.text != nil || v.flag != nil) != (v.Reader == Deployed || v.Reader == LocalOnly) {
			t.Errorf("%s: a function reads it into Config exactly when its Reader is Deployed or LocalOnly", v.Name)
		}
	}
}

func TestGetFallsBackToTheDefault(t *testing.T) {
	t.Setenv(Addr.Name, "")
	if got := Addr.Get(); got != "127.0.0.1:8080" {
		t.Errorf("Addr.Get() = %q with the variable unset", got)
	}
	t.Setenv(Addr.Name, "127.0.0.1:9999")
	if got := Addr.Get(); got != "127.0.0.1:9999" {
		t.Errorf("Addr.Get() = %q", got)
	}
}
