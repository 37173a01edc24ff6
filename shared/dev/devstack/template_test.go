package devstack

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sample = `
Parameters:
  Issuer:
    Type: String
    Default: https://issuer.example/
  NoDefault:
    Type: String
Globals:
  Function:
    Environment:
      Variables:
        SHORT_REF: !Ref Issuer
        LONG_REF: {Ref: Issuer}
        SHORT_GETATT: !GetAtt Q.Arn
        LIST_GETATT: !GetAtt [Q, Arn]
        LONG_GETATT: {"Fn::GetAtt": [Q, QueueUrl]}
        SUB: !Sub "${AWS::Region}/${Issuer}/${Q.QueueName}/${!Literal}"
        SUB_VARS: !Sub ["${a}-${Issuer}", {a: !Ref T}]
        JOIN: !Join [":", [a, !Ref T, 3]]
        PLAIN: 42
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt DLQ.Arn
        maxReceiveCount: 5
  DLQ:
    Type: AWS::SQS::Queue
  T:
    Type: AWS::DynamoDB::Table
    DependsOn: Z
  Z:
    Type: AWS::SQS::Queue
    Properties:
      Tags:
        - Key: x
          Value: !Sub "${Fn}"
  Fn:
    Type: AWS::Serverless::Function
`

func TestParseIntrinsics(t *testing.T) {
	tpl, err := parseTemplate([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"SHORT_REF":    map[string]any{"Ref": "Issuer"},
		"LONG_REF":     map[string]any{"Ref": "Issuer"},
		"SHORT_GETATT": map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}},
		"LIST_GETATT":  map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}},
		"LONG_GETATT":  map[string]any{"Fn::GetAtt": []any{"Q", "QueueUrl"}},
		"JOIN":         map[string]any{"Fn::Join": []any{":", []any{"a", map[string]any{"Ref": "T"}, 3}}},
		"PLAIN":        42,
	}
	for k, w := range want {
		if got := tpl.GlobalEnv[k]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
	}
	if p := tpl.Parameters["NoDefault"]; p.HasDefault {
		t.Errorf("NoDefault has a default: %#v", p)
	}
	if got := tpl.Resources["T"].DependsOn; !reflect.DeepEqual(got, []string{"Z"}) {
		t.Errorf("DependsOn = %v", got)
	}
}

func TestCreationOrder(t *testing.T) {
	tpl, err := parseTemplate([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	order, err := creationOrder(tpl)
	if err != nil {
		t.Fatal(err)
	}
	// DLQ before Q (RedrivePolicy), Z before T (DependsOn), Fn ignored.
	if want := []string{"DLQ", "Q", "Z", "T"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("order = %v, want %v", order, want)
	}

	cyc := `
Resources:
  A: {Type: "AWS::SQS::Queue", Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt B.Arn}}}
  B: {Type: "AWS::SQS::Queue", Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt A.Arn}}}
`
	tpl, err = parseTemplate([]byte(cyc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creationOrder(tpl); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("want cycle error, got %v", err)
	}
}

func TestResolve(t *testing.T) {
	tpl, err := parseTemplate([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{
		Prefix:    "p-",
		Resources: map[string]string{"Q": "http://q", "T": "p-T"},
		attrs: map[string]map[string]string{
			"Q": {"Arn": "arn:aws:sqs:us-east-1:1:p-Q", "QueueUrl": "http://q", "QueueName": "p-Q"},
		},
	}
	r := &resolver{t: tpl, s: s, params: map[string]string{}, region: "us-east-1", account: "1"}
	want := map[string]string{
		"SHORT_REF":    "https://issuer.example/",
		"LONG_REF":     "https://issuer.example/",
		"SHORT_GETATT": "arn:aws:sqs:us-east-1:1:p-Q",
		"LIST_GETATT":  "arn:aws:sqs:us-east-1:1:p-Q",
		"LONG_GETATT":  "http://q",
		"SUB":          "us-east-1/https://issuer.example//p-Q/${Literal}",
		"SUB_VARS":     "p-T-https://issuer.example/",
		"JOIN":         "a:p-T:3",
		"PLAIN":        "42",
	}
	for k, w := range want {
		got, err := r.resolveString(tpl.GlobalEnv[k])
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		if got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}

	r.params["Issuer"] = "https://override/"
	if got, _ := r.resolveString(tpl.GlobalEnv["SHORT_REF"]); got != "https://override/" {
		t.Errorf("override: got %q", got)
	}
	if _, err := r.ref("NoDefault"); err == nil {
		t.Error("Ref of a parameter without value: want error")
	}
	if _, err := r.ref("Fn"); err == nil || !strings.Contains(err.Error(), "no local counterpart") {
		t.Errorf("Ref of a function: got %v", err)
	}
	if _, err := r.resolve(map[string]any{"Fn::Select": []any{0, []any{"a"}}}); err == nil {
		t.Error("unsupported intrinsic: want error")
	}
}

func TestGenerateSecret(t *testing.T) {
	g := generateSpec{Length: 64, ExcludePunctuation: true, RequireEachIncludedType: true}
	for range 20 {
		s, err := g.generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 64 {
			t.Fatalf("len = %d", len(s))
		}
		if strings.ContainsAny(s, punctChars+" ") {
			t.Fatalf("punctuation in %q", s)
		}
		if !hasEach(s, []string{lowerChars, upperChars, digitChars}) {
			t.Fatalf("missing a character type in %q", s)
		}
	}
	g = generateSpec{Length: 16, ExcludeCharacters: "abc", SecretStringTemplate: `{"user":"u"}`, GenerateStringKey: "password"}
	s, err := g.generate()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, `{"password":"`) || !strings.Contains(s, `"user":"u"`) {
		t.Fatalf("templated secret = %s", s)
	}
}

// TestTemplateNeverAllowsPrivateTargets guards the design rule that the
// local-only SSRF escape hatch is never set in the deployed template.
func TestTemplateNeverAllowsPrivateTargets(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "WEBHOOKS_ALLOW_PRIVATE_TARGETS") {
		t.Fatal("template.yaml must never set WEBHOOKS_ALLOW_PRIVATE_TARGETS")
	}
	if _, err := parseTemplate(data); err != nil {
		t.Fatal(err)
	}
}
