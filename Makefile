# DataJetty webhooks - build, lint, test and local tooling.
#
# Python tools (moto, cfn-lint, SAM CLI) live in .venv/, checkov in .venv-checkov/ (its
# dependencies conflict with those), schemathesis in .venv-schemathesis/, Go tools in .bin/,
# local state (emulator pid/log) in .local/. Nothing is installed system-wide.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
VENV_STAMP  := $(VENV)/.installed
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
SCHEMATHESIS_VENV  := .venv-schemathesis
SCHEMATHESIS_STAMP := $(SCHEMATHESIS_VENV)/.installed
BIN         := $(CURDIR)/.bin
LOCAL       := .local
BUILD_DIR   := build

STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(BIN)/staticcheck
# Re-installs when the pinned version changes.
STATICCHECK_STAMP   := $(BIN)/.staticcheck-$(STATICCHECK_VERSION)

# Lambda Runtime Interface Emulator: runs a function's real bootstrap without Docker
# (make invoke). Linux only, like Lambda itself; built from source by go install.
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE         := $(BIN)/aws-lambda-rie
RIE_STAMP   := $(BIN)/.aws-lambda-rie-$(RIE_VERSION)
ifeq ($(shell uname -s),Linux)
GO_TOOL_STAMPS := $(STATICCHECK_STAMP) $(RIE_STAMP)
else
GO_TOOL_STAMPS := $(STATICCHECK_STAMP)
endif

# Headless Chromium for the portal's browser tests: Debian's package, installed (as root, or
# through sudo) when missing. Debian's archive serves only the current security build of
# chromium, so the version below is the one the tests were last run with: it is installed
# when still offered, else the current one is (and named). docs/decisions.md explains.
CHROMIUM_VERSION := 156.0.8078.108-1~deb12u1

MOTO_PORT   ?= 5000
MOTO_URL    := http://127.0.0.1:$(MOTO_PORT)
MOTO_PID    := $(LOCAL)/moto.pid
MOTO_LOG    := $(LOCAL)/moto.log

# Lambda binaries: linux static, no RPC shim (provided.al2023). arm64 as in template.yaml;
# make invoke overrides LAMBDA_GOARCH with the host's architecture to run them here. (Not
# GOARCH itself: a GOARCH exported in the shell must not change what sam build deploys.)
LAMBDA_GOARCH   ?= arm64
GO_LAMBDA_BUILD  = GOOS=linux GOARCH=$(LAMBDA_GOARCH) CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w'
HOST_GOARCH      = $(shell go env GOARCH)

# Environment for tests: every AWS client goes to the local emulator.
TEST_ENV := AWS_ENDPOINT_URL=$(MOTO_URL) AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
	WEBHOOKS_REQUIRE_EMULATOR=1 WEBHOOKS_RIE=$(RIE) WEBHOOKS_REQUIRE_BROWSER=1

# make redrive AWS=1: the stack whose logical ids QUEUE/SOURCE name (samconfig.toml).
STACK ?= datajetty-webhooks

SAM := SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam

.PHONY: help venv tools browser build lint test bench cost dev publish receiver clean emulator-start emulator-stop fuzz schemathesis \
	build-RegisterEndpointFunction build-ListEndpointsFunction build-ReplayFunction build-GetReplayFunction \
	build-ListDeliveriesFunction build-ListEventTypesFunction build-PortalFunction build-GetEndpointFunction build-DeleteEndpointFunction build-DisableEndpointFunction build-EnableEndpointFunction build-TestEndpointFunction build-ResendDeliveryFunction build-IngestFunction build-DeliverFunction build-ReplayWorkerFunction

help: ## Show this help
	@echo "Usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ------------------------------------------------------------------ toolchain

venv: $(VENV_STAMP) ## Create .venv with the pinned Python tools (moto, cfn-lint, SAM CLI)

$(VENV_STAMP): requirements-dev.txt constraints-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints-dev.txt
	$(VENV)/bin/python -m pip check
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt constraints-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt -c constraints-checkov.txt
	$(CHECKOV_VENV)/bin/python -m pip check
	touch $@

$(SCHEMATHESIS_STAMP): requirements-schemathesis.txt constraints-schemathesis.txt
	test -x $(SCHEMATHESIS_VENV)/bin/python || $(PYTHON) -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-schemathesis.txt -c constraints-schemathesis.txt
	$(SCHEMATHESIS_VENV)/bin/python -m pip check
	touch $@

tools: $(GO_TOOL_STAMPS) ## Install pinned Go tools into .bin/ (staticcheck; aws-lambda-rie on Linux)

$(STATICCHECK_STAMP):
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	rm -f $(BIN)/.staticcheck-*
	touch $@

$(RIE_STAMP):
	GOBIN=$(BIN) go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	rm -f $(BIN)/.aws-lambda-rie-*
	touch $@

browser: ## Install headless Chromium (Debian package chromium) for the browser tests, when missing
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$WEBHOOKS_CHROMIUM" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "no chromium and no apt-get: install Chromium and set WEBHOOKS_CHROMIUM to its path" >&2; exit 1; fi; \
	sudo=""; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get update -qq || exit 1; \
	version=$(CHROMIUM_VERSION); \
	if ! apt-cache madison chromium | grep -qF " $$version "; then \
		echo "chromium $$version is no longer offered; installing the current one: $$(apt-cache policy chromium | sed -n 's/ *Candidate: //p')"; version=""; fi; \
	$$sudo apt-get install -y -qq --no-install-recommends chromium$${version:+=$$version} chromium-common$${version:+=$$version} fonts-dejavu-core >/dev/null || exit 1; \
	chromium --version

# ------------------------------------------------------------------ build

# Called by `sam build` (BuildMethod: makefile) with ARTIFACTS_DIR set.
require-artifacts-dir = $(if $(ARTIFACTS_DIR),,$(error ARTIFACTS_DIR is not set: build-<Function> targets are for sam build; use make build))

build-RegisterEndpointFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/register-endpoint

build-ListEndpointsFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/list-endpoints

build-ReplayFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/replay

build-GetReplayFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/get-replay

build-ListDeliveriesFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/list-deliveries

build-ListEventTypesFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/list-event-types

build-PortalFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/portal

build-GetEndpointFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/get-endpoint

build-DeleteEndpointFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/delete-endpoint

build-DisableEndpointFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/disable-endpoint

build-EnableEndpointFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/enable-endpoint

build-TestEndpointFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/test-endpoint

build-ResendDeliveryFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/resend-delivery

build-IngestFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/ingest

build-DeliverFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/deliver

build-ReplayWorkerFunction:
	$(require-artifacts-dir)
	$(GO_LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/replay-worker

build: ## Build every Lambda bootstrap into build/<Function>/ (quick check, no SAM)
	$(MAKE) --no-print-directory build-RegisterEndpointFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/RegisterEndpointFunction
	$(MAKE) --no-print-directory build-ListEndpointsFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/ListEndpointsFunction
	$(MAKE) --no-print-directory build-ReplayFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/ReplayFunction
	$(MAKE) --no-print-directory build-GetReplayFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/GetReplayFunction
	$(MAKE) --no-print-directory build-ListDeliveriesFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/ListDeliveriesFunction
	$(MAKE) --no-print-directory build-ListEventTypesFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/ListEventTypesFunction
	$(MAKE) --no-print-directory build-PortalFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/PortalFunction
	$(MAKE) --no-print-directory build-GetEndpointFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/GetEndpointFunction
	$(MAKE) --no-print-directory build-DeleteEndpointFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/DeleteEndpointFunction
	$(MAKE) --no-print-directory build-DisableEndpointFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/DisableEndpointFunction
	$(MAKE) --no-print-directory build-EnableEndpointFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/EnableEndpointFunction
	$(MAKE) --no-print-directory build-TestEndpointFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/TestEndpointFunction
	$(MAKE) --no-print-directory build-ResendDeliveryFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/ResendDeliveryFunction
	$(MAKE) --no-print-directory build-IngestFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/IngestFunction
	$(MAKE) --no-print-directory build-DeliverFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/DeliverFunction
	$(MAKE) --no-print-directory build-ReplayWorkerFunction ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/ReplayWorkerFunction

# ------------------------------------------------------------------ local emulator

emulator-start: $(VENV_STAMP) ## Start the emulator (moto, tools/emulator/serve.py) on 127.0.0.1:MOTO_PORT (default 5000; pid in .local/)
	@go run ./tools/emulator start -port $(MOTO_PORT) -pidfile $(MOTO_PID) -log $(MOTO_LOG)

emulator-stop: ## Stop the emulator started by emulator-start
	@go run ./tools/emulator stop -pidfile $(MOTO_PID)

# ------------------------------------------------------------------ quality

# -timeout 30m: the emulator-backed packages (e2e, shared/api, shared/store, tools/internal/cost)
# take a few minutes on a quiet machine but can pass go test's default 10 minutes per package on
# a busy 2-core runner; a hung test still ends the run well inside CI's 90 minutes.
test: $(VENV_STAMP) $(GO_TOOL_STAMPS) browser ## Run all Go tests (race detector) against the local emulator and headless Chromium
	@if curl -s -o /dev/null $(MOTO_URL)/moto-api/; then \
		echo "using the emulator already answering on $(MOTO_URL)"; \
	else \
		$(MAKE) --no-print-directory emulator-start || exit 1; \
		trap '$(MAKE) --no-print-directory emulator-stop' EXIT; \
	fi; \
	$(TEST_ENV) go test -race -count=1 -timeout 30m ./...

lint: $(VENV_STAMP) $(CHECKOV_STAMP) $(STATICCHECK_STAMP) ## gofmt, go vet, staticcheck, cfn-lint, checkov and sam build
	@echo "--- gofmt"; set -o pipefail; out=$$(go list -e -f '{{.Dir}}' ./... | xargs -r gofmt -l | sort -u); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@echo "--- go vet"; go vet ./...
	@echo "--- functions link no development-only package (shared/dev, tools)"; set -o pipefail; \
		bad=$$(go list -deps ./functions/... | grep -E '^github.com/datajetty/webhooks/(shared/dev|tools)(/|$$)' || true); \
		if [ -n "$$bad" ]; then echo "shipped functions link development-only packages:"; echo "$$bad"; exit 1; fi
	@echo "--- adapters import no outer layer (store, queue, kmssecrets)"; set -o pipefail; \
		bad=$$(go list -f '{{.ImportPath}}: {{join .Imports " "}}' ./shared/store ./shared/queue ./shared/kmssecrets | \
			grep -E 'github.com/datajetty/webhooks/(shared/(api|ingest|delivery|replayworker|wiring|lambdaapi|lambdaworker|config)|functions|tools)( |$$)' || true); \
		if [ -n "$$bad" ]; then echo "adapters must depend inward only:"; echo "$$bad"; exit 1; fi
	@echo "--- staticcheck"; $(STATICCHECK) ./...
	@echo "--- cfn-lint"; $(VENV)/bin/cfn-lint template.yaml
	@# Every failed check fails lint; a check the template does not follow is skipped in the
	@# resource's Metadata.checkov.skip with a one-line reason (TestTemplateCheckovSkipsGiveReasons).
	@echo "--- checkov"; $(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--quiet --compact --skip-download
	@echo "--- sam build"; $(SAM) build --build-in-source --template-file template.yaml

# Fuzz targets: every `func FuzzXxx(f *testing.F)` in the repository, found by name, so a
# new target is fuzzed without being listed here. Their seed corpora are in
# <package>/testdata/fuzz/<target>/ (run by make test too); an input that fails is written
# there, to be fixed and committed as a regression seed. tools/fuzz runs a target again when
# it failed only with Go 1.26's fuzztime shutdown race (go.dev/issue/75804: a bare "context
# deadline exceeded" on a busy machine, nothing found, nothing written), at most twice.
FUZZTIME ?= 1m
fuzz: ## Run every Go fuzz target for FUZZTIME each (default 1m; CI runs FUZZTIME=10s)
	go run ./tools/fuzz -fuzztime $(FUZZTIME) -minimizetime 10s

# schemathesis against a local stack of its own (tools/schemathesis: emulator, the template's
# resources under a fresh prefix, every route on a free 127.0.0.1 port, a token of all
# scopes), every check but positive-data acceptance, paced under the tenant rate limit.
# SCHEMATHESIS_EXAMPLES test cases per operation and phase (CI: the default); more with
# e.g. make schemathesis SCHEMATHESIS_EXAMPLES=200, extra options with SCHEMATHESIS_ARGS.
# Only loopback is tested: generated webhook URLs are never dialled (their handshakes may
# reach 127.0.0.1 only). Report: .local/schemathesis-junit.xml.
SCHEMATHESIS_EXAMPLES ?= 30

schemathesis: $(VENV_STAMP) $(SCHEMATHESIS_STAMP) ## Run schemathesis on docs/openapi.yaml against a local stack it starts (SCHEMATHESIS_EXAMPLES=30, SCHEMATHESIS_ARGS=)
	go run ./tools/schemathesis -schemathesis $(SCHEMATHESIS_VENV)/bin/schemathesis -- \
		--max-examples $(SCHEMATHESIS_EXAMPLES) --no-color $(SCHEMATHESIS_ARGS)

# AWS_LAMBDA_LOG_FORMAT=JSON: the deliver benchmark's Lambda logger writes JSON, as deployed.
bench: $(VENV_STAMP) ## Run Go benchmarks (no tests); emulator-backed ones start their own moto
	AWS_LAMBDA_LOG_FORMAT=JSON go test -run '^$$' -bench . -benchmem ./...

cost: $(VENV_STAMP) ## Count AWS calls and capacity per delivery against the emulator, price them, regenerate docs/performance.md's cost section [SCENARIO=name: one, no doc]
	@if curl -s -o /dev/null $(MOTO_URL)/moto-api/; then \
		echo "using the emulator already answering on $(MOTO_URL)" >&2; \
	else \
		$(MAKE) --no-print-directory emulator-start >&2 || exit 1; \
		trap '$(MAKE) --no-print-directory emulator-stop >&2' EXIT; \
	fi; \
	$(TEST_ENV) go run ./tools/cost $(if $(SCENARIO),-scenario '$(SCENARIO)',-write docs/performance.md)

# Each function's own init (process start -> first Runtime API /next) against a hello-world
# bootstrap built with the same flags, alternately; see docs/performance.md#cold-start.
coldstart: LAMBDA_GOARCH = $(HOST_GOARCH)
coldstart: $(VENV_STAMP) ## Cold start of every function as a ratio to a hello-world bootstrap (table; ROUNDS=n FN=<LogicalId>)
	@go run ./tools/coldstart -go-build "$(GO_LAMBDA_BUILD)" $(if $(ROUNDS),-rounds $(ROUNDS)) $(if $(FN),-fn $(FN))

# ------------------------------------------------------------------ dev

dev: $(VENV_STAMP) ## Run the local API server (go run ./tools/dev)
	go run ./tools/dev

publish: ## Publish a sample event to the local IngestQueue (make dev must be running)
	go run ./tools/publish $(ARGS)

receiver: ## Run the demo webhook receiver on 127.0.0.1:8081 (secret: WEBHOOKS_DEMO_SECRET)
	go run ./tools/receiver

# ------------------------------------------------------------------ one function, DLQs

.PHONY: invoke token redrive

invoke: ## Run one function's real bootstrap under the Lambda RIE against the make dev stack: FN=<LogicalId> EVENT=events/<file>.json
	@if [ -z "$(FN)" ] || [ -z "$(EVENT)" ] || ! grep -q '^build-$(FN):' $(firstword $(MAKEFILE_LIST)); then \
		echo "usage: make invoke FN=<LogicalId> EVENT=events/<file>.json" >&2; \
		echo "FN is one of:" $$(sed -n 's/^build-\([A-Za-z0-9]*\):.*/\1/p' $(firstword $(MAKEFILE_LIST))) >&2; exit 2; \
	fi
	@if [ "$$(uname -s)" != Linux ]; then \
		echo "make invoke runs Linux binaries under the Lambda RIE, so Linux only; elsewhere: sam local invoke $(FN) -e $(EVENT) (Docker)" >&2; exit 1; \
	fi
	@test -f "$(EVENT)" || { echo "no such event file: $(EVENT)" >&2; exit 2; }
	@test -f $(LOCAL)/dev.env || { echo "no $(LOCAL)/dev.env: start \`make dev\` first (in another terminal)" >&2; exit 1; }
	@$(MAKE) --no-print-directory -s $(RIE_STAMP)
	@$(MAKE) --no-print-directory build-$(FN) ARTIFACTS_DIR=$(CURDIR)/$(BUILD_DIR)/host/$(FN) LAMBDA_GOARCH=$(HOST_GOARCH)
	@go run ./tools/invoke -fn $(FN) -event "$(EVENT)" -bootstrap $(BUILD_DIR)/host/$(FN)/bootstrap -rie $(RIE) -dev-env $(LOCAL)/dev.env

token: ## Print a development token for the demo tenant (all scopes), as make dev does: export TOKEN=$(make -s token)
	@go run ./tools/invoke -token -dev-env $(LOCAL)/dev.env

redrive: ## Move a DLQ's messages back to its source: QUEUE=<DeliveryDLQ|IngestDLQ|ReplayDLQ|URL> [SOURCE=] [MAX=n] [DRY_RUN=1] [AWS=1 [STACK=]]
	@test -n "$(QUEUE)" || { echo "usage: make redrive QUEUE=<DeliveryDLQ|IngestDLQ|ReplayDLQ|queue URL> [SOURCE=<queue>] [MAX=n] [DRY_RUN=1] [AWS=1 [STACK=name]] [ARGS='-method receive ...']" >&2; exit 2; }
	@go run ./tools/redrive -queue '$(QUEUE)' $(if $(SOURCE),-source '$(SOURCE)') $(if $(MAX),-max $(MAX)) \
		$(if $(DRY_RUN),-dry-run) $(if $(AWS),-stack '$(STACK)',-dev-env $(LOCAL)/dev.env) $(ARGS)

clean: ## Remove build output, SAM artefacts and local state (keeps .venv and .bin)
	-$(MAKE) --no-print-directory emulator-stop
	rm -rf $(BUILD_DIR) .aws-sam $(LOCAL)
