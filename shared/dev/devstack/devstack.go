// Package devstack provisions, in a local AWS emulator (moto in server mode),
// the stateful resources that template.yaml declares, and resolves the
// functions' environment (Globals.Function.Environment.Variables) to the real
// identifiers of what it created. The template stays the single source of
// truth: nothing here lists tables, queues, keys or secrets by hand.
//
// Supported resource types: AWS::DynamoDB::Table, AWS::SQS::Queue,
// AWS::KMS::Key and AWS::SecretsManager::Secret. Every other type (functions,
// APIs, IAM, log groups, aliases, alarms, ...) has no local counterpart and is
// ignored. Supported intrinsics: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, in short
// (!Ref) or long form. Conditions are not evaluated.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Resource types devstack creates locally.
const (
	TypeTable  = "AWS::DynamoDB::Table"
	TypeQueue  = "AWS::SQS::Queue"
	TypeKey    = "AWS::KMS::Key"
	TypeSecret = "AWS::SecretsManager::Secret"
)

// defaultAccountID is moto's default account, used for AWS::AccountId until a
// created resource's ARN tells the real one.
const defaultAccountID = "123456789012"

// Options configures Provision.
type Options struct {
	// Prefix is prepended to every logical id to name the local resources
	// (tables, queues, secrets, key aliases). Use a unique one per test.
	Prefix string
	// Parameters overrides template parameters; unset ones use their Default.
	Parameters map[string]string
}

// Stack is what Provision created.
type Stack struct {
	// Prefix is Options.Prefix.
	Prefix string
	// Env is Globals.Function.Environment.Variables with every value resolved
	// (table names, queue URLs, key id, secret ARN, parameter values).
	Env map[string]string
	// Resources maps logical id to physical id (what CloudFormation's Ref
	// returns): table name, queue URL, KMS key id, secret ARN.
	Resources map[string]string

	attrs   map[string]map[string]string // logical id -> GetAtt attribute -> value
	types   map[string]string            // logical id -> resource type
	order   []string                     // creation order
	aliases map[string]string            // key logical id -> alias name

	ddb *dynamodb.Client
	sqs *sqs.Client
	kms *kms.Client
	sm  *secretsmanager.Client
}

// Attr returns the value of Fn::GetAtt logicalID.attr for a provisioned
// resource (e.g. "ReplayQueue", "Arn").
func (s *Stack) Attr(logicalID, attr string) (string, bool) {
	v, ok := s.attrs[logicalID][attr]
	return v, ok
}

// Provision parses templatePath and creates its tables, queues, keys and
// secrets through cfg (point cfg at the emulator). Provisioning again with the
// same prefix reuses what exists. On error, what was already created is left
// in place; call Teardown on the returned (non-nil) stack to remove it.
func Provision(ctx context.Context, cfg aws.Config, templatePath string, opts Options) (*Stack, error) {
	t, err := LoadTemplate(templatePath)
	if err != nil {
		return nil, err
	}
	return provision(ctx, cfg, t, opts)
}

func provision(ctx context.Context, cfg aws.Config, t *Template, opts Options) (*Stack, error) {
	s := &Stack{
		Prefix:    opts.Prefix,
		Env:       map[string]string{},
		Resources: map[string]string{},
		attrs:     map[string]map[string]string{},
		types:     map[string]string{},
		aliases:   map[string]string{},
		ddb:       dynamodb.NewFromConfig(cfg),
		sqs:       sqs.NewFromConfig(cfg),
		kms:       kms.NewFromConfig(cfg),
		sm:        secretsmanager.NewFromConfig(cfg),
	}
	r := &resolver{t: t, s: s, params: opts.Parameters, region: cfg.Region, account: defaultAccountID}

	order, err := creationOrder(t)
	if err != nil {
		return s, err
	}
	for _, id := range order {
		res := t.Resources[id]
		var err error
		switch res.Type {
		case TypeTable:
			err = s.createTable(ctx, r, id, res.Properties)
		case TypeQueue:
			err = s.createQueue(ctx, r, id, res.Properties)
		case TypeKey:
			err = s.createKey(ctx, r, id, res.Properties)
		case TypeSecret:
			err = s.createSecret(ctx, r, id, res.Properties)
		}
		if err != nil {
			return s, fmt.Errorf("devstack: %s (%s): %w", id, res.Type, err)
		}
		if acct := accountFromARN(s.attrs[id]["Arn"]); acct != "" {
			r.account = acct
		}
	}

	for name, raw := range t.GlobalEnv {
		v, err := r.resolveString(raw)
		if err != nil {
			return s, fmt.Errorf("devstack: Globals.Function.Environment.Variables.%s: %w", name, err)
		}
		s.Env[name] = v
	}
	return s, nil
}

func supported(typ string) bool {
	switch typ {
	case TypeTable, TypeQueue, TypeKey, TypeSecret:
		return true
	}
	return false
}

// creationOrder sorts the supported resources so that every resource comes
// after the supported resources it references (e.g. a DLQ before the queue
// whose RedrivePolicy points at it). Ties are broken by logical id.
func creationOrder(t *Template) ([]string, error) {
	deps := map[string][]string{}
	var ids []string
	for id, res := range t.Resources {
		if !supported(res.Type) {
			continue
		}
		ids = append(ids, id)
		for _, ref := range append(references(res.Properties), res.DependsOn...) {
			if dep, ok := t.Resources[ref]; ok && ref != id && supported(dep.Type) {
				deps[id] = append(deps[id], ref)
			}
		}
	}
	sort.Strings(ids)

	var order []string
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(id string, path []string) error
	visit = func(id string, path []string) error {
		switch state[id] {
		case 1:
			return fmt.Errorf("devstack: dependency cycle: %s", strings.Join(append(path, id), " -> "))
		case 2:
			return nil
		}
		state[id] = 1
		d := append([]string(nil), deps[id]...)
		sort.Strings(d)
		for _, dep := range d {
			if err := visit(dep, append(path, id)); err != nil {
				return err
			}
		}
		state[id] = 2
		order = append(order, id)
		return nil
	}
	for _, id := range ids {
		if err := visit(id, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (s *Stack) record(id, typ, physical string, attrs map[string]string) {
	s.Resources[id] = physical
	s.types[id] = typ
	s.attrs[id] = attrs
	s.order = append(s.order, id)
}

// ---------------------------------------------------------------- DynamoDB

func (s *Stack) createTable(ctx context.Context, r *resolver, id string, props map[string]any) error {
	name := s.Prefix + id
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: ddbtypes.BillingModePayPerRequest,
	}
	for _, raw := range asSlice(props["AttributeDefinitions"]) {
		m := asMap(raw)
		n, err := r.resolveString(m["AttributeName"])
		if err != nil {
			return err
		}
		typ, err := r.resolveString(m["AttributeType"])
		if err != nil {
			return err
		}
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(n), AttributeType: ddbtypes.ScalarAttributeType(typ),
		})
	}
	var err error
	if in.KeySchema, err = keySchema(r, props["KeySchema"]); err != nil {
		return err
	}
	if len(in.KeySchema) == 0 {
		return errors.New("KeySchema is empty")
	}
	for _, raw := range asSlice(props["GlobalSecondaryIndexes"]) {
		m := asMap(raw)
		gsi := ddbtypes.GlobalSecondaryIndex{}
		if gsi.IndexName, err = r.resolveStringPtr(m["IndexName"]); err != nil {
			return err
		}
		if gsi.KeySchema, err = keySchema(r, m["KeySchema"]); err != nil {
			return err
		}
		if gsi.Projection, err = projection(r, m["Projection"]); err != nil {
			return err
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	for _, raw := range asSlice(props["LocalSecondaryIndexes"]) {
		m := asMap(raw)
		lsi := ddbtypes.LocalSecondaryIndex{}
		if lsi.IndexName, err = r.resolveStringPtr(m["IndexName"]); err != nil {
			return err
		}
		if lsi.KeySchema, err = keySchema(r, m["KeySchema"]); err != nil {
			return err
		}
		if lsi.Projection, err = projection(r, m["Projection"]); err != nil {
			return err
		}
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, lsi)
	}
	if ss := asMap(props["StreamSpecification"]); ss != nil {
		vt, err := r.resolveString(ss["StreamViewType"])
		if err != nil {
			return err
		}
		in.StreamSpecification = &ddbtypes.StreamSpecification{
			StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewType(vt),
		}
	}

	if _, err := s.ddb.CreateTable(ctx, in); err != nil && !isCode(err, "ResourceInUseException") {
		return err // ResourceInUseException: reuse the existing table
	}
	w := dynamodb.NewTableExistsWaiter(s.ddb, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	d, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute)
	if err != nil {
		return fmt.Errorf("waiting for table %s: %w", name, err)
	}
	desc := d.Table

	if ttl := asMap(props["TimeToLiveSpecification"]); ttl != nil {
		attr, err := r.resolveString(ttl["AttributeName"])
		if err != nil {
			return err
		}
		enabled, err := r.resolveBool(ttl["Enabled"])
		if err != nil {
			return err
		}
		if enabled {
			if err := s.enableTTL(ctx, name, attr); err != nil {
				return fmt.Errorf("time to live: %w", err)
			}
		}
	}

	attrs := map[string]string{"Arn": aws.ToString(desc.TableArn)}
	if desc.LatestStreamArn != nil {
		attrs["StreamArn"] = *desc.LatestStreamArn
	}
	s.record(id, TypeTable, name, attrs)
	return nil
}

func (s *Stack) enableTTL(ctx context.Context, table, attr string) error {
	cur, err := s.ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err == nil && cur.TimeToLiveDescription != nil &&
		aws.ToString(cur.TimeToLiveDescription.AttributeName) == attr &&
		(cur.TimeToLiveDescription.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled ||
			cur.TimeToLiveDescription.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = s.ddb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
			AttributeName: aws.String(attr), Enabled: aws.Bool(true),
		},
	})
	return err
}

func keySchema(r *resolver, v any) ([]ddbtypes.KeySchemaElement, error) {
	var ks []ddbtypes.KeySchemaElement
	for _, raw := range asSlice(v) {
		m := asMap(raw)
		n, err := r.resolveString(m["AttributeName"])
		if err != nil {
			return nil, err
		}
		kt, err := r.resolveString(m["KeyType"])
		if err != nil {
			return nil, err
		}
		ks = append(ks, ddbtypes.KeySchemaElement{AttributeName: aws.String(n), KeyType: ddbtypes.KeyType(kt)})
	}
	return ks, nil
}

func projection(r *resolver, v any) (*ddbtypes.Projection, error) {
	m := asMap(v)
	p := &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll}
	if m == nil {
		return p, nil
	}
	if raw, ok := m["ProjectionType"]; ok {
		pt, err := r.resolveString(raw)
		if err != nil {
			return nil, err
		}
		p.ProjectionType = ddbtypes.ProjectionType(pt)
	}
	for _, raw := range asSlice(m["NonKeyAttributes"]) {
		a, err := r.resolveString(raw)
		if err != nil {
			return nil, err
		}
		p.NonKeyAttributes = append(p.NonKeyAttributes, a)
	}
	return p, nil
}

// ---------------------------------------------------------------- SQS

// queueAttributes are the AWS::SQS::Queue properties that map 1:1 to
// CreateQueue attributes of the same name.
var queueAttributes = []string{
	"VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
	"ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication",
	"DeduplicationScope", "FifoThroughputLimit", "SqsManagedSseEnabled",
}

func (s *Stack) createQueue(ctx context.Context, r *resolver, id string, props map[string]any) error {
	name := s.Prefix + id
	attrs := map[string]string{}
	for _, k := range queueAttributes {
		raw, ok := props[k]
		if !ok {
			continue
		}
		v, err := r.resolveString(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		attrs[k] = v
	}
	if attrs["FifoQueue"] == "true" {
		name += ".fifo"
	}
	for _, k := range []string{"RedrivePolicy", "RedriveAllowPolicy"} {
		raw, ok := props[k]
		if !ok {
			continue
		}
		v, err := r.resolve(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if str, isStr := v.(string); isStr {
			attrs[k] = str
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		attrs[k] = string(b)
	}

	var url string
	out, err := s.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	switch {
	case err == nil:
		url = aws.ToString(out.QueueUrl)
	case isCode(err, "QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"):
		// Reuse the existing queue, bringing its attributes in line.
		got, gerr := s.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if gerr != nil {
			return errors.Join(err, gerr)
		}
		url = aws.ToString(got.QueueUrl)
		settable := map[string]string{}
		for k, v := range attrs {
			if k != "FifoQueue" {
				settable[k] = v
			}
		}
		if len(settable) > 0 {
			if _, err := s.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: settable}); err != nil {
				return err
			}
		}
	default:
		return err
	}

	ga, err := s.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return err
	}
	s.record(id, TypeQueue, url, map[string]string{
		"Arn":       ga.Attributes[string(sqstypes.QueueAttributeNameQueueArn)],
		"QueueUrl":  url,
		"QueueName": name,
	})
	return nil
}

// ---------------------------------------------------------------- KMS

func (s *Stack) createKey(ctx context.Context, r *resolver, id string, props map[string]any) error {
	// An alias makes the key findable again for reuse with the same prefix.
	alias := "alias/devstack/" + sanitize(s.Prefix+id, func(r rune) bool {
		return r == '/' || r == '_' || r == '-' || isAlnum(r)
	})

	var meta *kmstypes.KeyMetadata
	d, err := s.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err != nil && !isCode(err, "NotFoundException") {
		return err
	}
	aliasExists := err == nil && d.KeyMetadata != nil
	if aliasExists && d.KeyMetadata.KeyState == kmstypes.KeyStateEnabled {
		meta = d.KeyMetadata // reuse
	} else {
		in := &kms.CreateKeyInput{Description: aws.String("devstack " + s.Prefix + id)}
		if raw, ok := props["KeySpec"]; ok {
			v, err := r.resolveString(raw)
			if err != nil {
				return fmt.Errorf("KeySpec: %w", err)
			}
			in.KeySpec = kmstypes.KeySpec(v)
		}
		if raw, ok := props["KeyUsage"]; ok {
			v, err := r.resolveString(raw)
			if err != nil {
				return fmt.Errorf("KeyUsage: %w", err)
			}
			in.KeyUsage = kmstypes.KeyUsageType(v)
		}
		out, err := s.kms.CreateKey(ctx, in)
		if err != nil {
			return err
		}
		meta = out.KeyMetadata
		if aliasExists {
			// The alias points at a key that is no longer usable: move it.
			_, err = s.kms.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(alias), TargetKeyId: meta.KeyId})
		} else {
			_, err = s.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: meta.KeyId})
		}
		if err != nil {
			return fmt.Errorf("alias %s: %w", alias, err)
		}
		rotate, err := r.resolveBool(props["EnableKeyRotation"])
		if err != nil {
			return fmt.Errorf("EnableKeyRotation: %w", err)
		}
		if rotate && meta.KeySpec == kmstypes.KeySpecSymmetricDefault {
			if _, err := s.kms.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: meta.KeyId}); err != nil {
				return fmt.Errorf("enable rotation: %w", err)
			}
		}
	}
	s.aliases[id] = alias
	s.record(id, TypeKey, aws.ToString(meta.KeyId), map[string]string{
		"Arn":   aws.ToString(meta.Arn),
		"KeyId": aws.ToString(meta.KeyId),
	})
	return nil
}

// ---------------------------------------------------------------- Secrets Manager

func (s *Stack) createSecret(ctx context.Context, r *resolver, id string, props map[string]any) error {
	name := s.Prefix + id
	var value string
	if raw, ok := props["SecretString"]; ok {
		v, err := r.resolveString(raw)
		if err != nil {
			return err
		}
		value = v
	} else {
		spec, err := parseGenerateSpec(r, asMap(props["GenerateSecretString"]))
		if err != nil {
			return fmt.Errorf("GenerateSecretString: %w", err)
		}
		if value, err = spec.generate(); err != nil {
			return fmt.Errorf("GenerateSecretString: %w", err)
		}
	}

	var arn string
	out, err := s.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		Description:  aws.String("devstack " + id),
		SecretString: aws.String(value),
	})
	switch {
	case err == nil:
		arn = aws.ToString(out.ARN)
	case isCode(err, "ResourceExistsException"):
		// Reuse the existing secret and keep its value.
		d, derr := s.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if derr != nil {
			return errors.Join(err, derr)
		}
		arn = aws.ToString(d.ARN)
	default:
		return err
	}
	s.record(id, TypeSecret, arn, map[string]string{"Arn": arn, "Id": arn})
	return nil
}

// ---------------------------------------------------------------- teardown

// Teardown deletes every resource of the stack: tables and queues are deleted,
// keys are scheduled for deletion (the shortest window, 7 days) and their
// aliases removed, secrets are deleted without recovery. Resources that are
// already gone are not an error.
func (s *Stack) Teardown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	var errs []error
	for i := len(s.order) - 1; i >= 0; i-- {
		id := s.order[i]
		phys := s.Resources[id]
		var err error
		switch s.types[id] {
		case TypeTable:
			_, err = s.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(phys)})
			if isCode(err, "ResourceNotFoundException") {
				err = nil
			}
		case TypeQueue:
			_, err = s.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(phys)})
			if isCode(err, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue") {
				err = nil
			}
		case TypeKey:
			if alias := s.aliases[id]; alias != "" {
				_, aerr := s.kms.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(alias)})
				if aerr != nil && !isCode(aerr, "NotFoundException") {
					errs = append(errs, fmt.Errorf("devstack: teardown %s alias: %w", id, aerr))
				}
			}
			_, err = s.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{
				KeyId: aws.String(phys), PendingWindowInDays: aws.Int32(7),
			})
			if isCode(err, "NotFoundException", "KMSInvalidStateException") {
				err = nil
			}
		case TypeSecret:
			_, err = s.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
				SecretId: aws.String(phys), ForceDeleteWithoutRecovery: aws.Bool(true),
			})
			if isCode(err, "ResourceNotFoundException") {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("devstack: teardown %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------- resolving

type resolver struct {
	t       *Template
	s       *Stack
	params  map[string]string
	region  string
	account string
}

func (r *resolver) ref(name string) (string, error) {
	switch name {
	case "AWS::Region":
		return r.region, nil
	case "AWS::AccountId":
		return r.account, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::StackName":
		if n := strings.Trim(r.s.Prefix, "-_."); n != "" {
			return n, nil
		}
		return "devstack", nil
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/devstack/%s", r.region, r.account, r.s.Prefix), nil
	}
	if p, ok := r.t.Parameters[name]; ok {
		if v, ok := r.params[name]; ok {
			return v, nil
		}
		if p.HasDefault {
			return p.Default, nil
		}
		return "", fmt.Errorf("parameter %s has no value and no Default", name)
	}
	if res, ok := r.t.Resources[name]; ok {
		if phys, ok := r.s.Resources[name]; ok {
			return phys, nil
		}
		if !supported(res.Type) {
			return "", fmt.Errorf("cannot resolve Ref %s: resource type %s has no local counterpart", name, res.Type)
		}
		return "", fmt.Errorf("cannot resolve Ref %s: resource not created yet", name)
	}
	return "", fmt.Errorf("cannot resolve Ref %s: no such parameter or resource", name)
}

func (r *resolver) getAtt(res, attr string) (string, error) {
	if v, ok := r.s.attrs[res][attr]; ok {
		return v, nil
	}
	if t, ok := r.t.Resources[res]; ok && !supported(t.Type) {
		return "", fmt.Errorf("Fn::GetAtt %s.%s: resource type %s has no local counterpart", res, attr, t.Type)
	}
	return "", fmt.Errorf("Fn::GetAtt %s.%s: unknown resource or attribute", res, attr)
}

// resolve replaces intrinsic functions in v by their values.
func (r *resolver) resolve(v any) (any, error) {
	if name, arg, ok := intrinsic(v); ok {
		switch name {
		case "Ref":
			s, isStr := arg.(string)
			if !isStr {
				return nil, fmt.Errorf("invalid Ref: want a name, got %v", arg)
			}
			return r.ref(s)
		case "Fn::GetAtt":
			res, attr, err := getAttArgs(arg)
			if err != nil {
				return nil, err
			}
			return r.getAtt(res, attr)
		case "Fn::Sub":
			return r.sub(arg)
		case "Fn::Join":
			list := asSlice(arg)
			if len(list) != 2 {
				return nil, fmt.Errorf("Fn::Join: want [delimiter, [values]]")
			}
			sep, ok := list[0].(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Join: delimiter must be a string")
			}
			items, err := r.resolve(list[1])
			if err != nil {
				return nil, err
			}
			parts := make([]string, 0)
			for _, it := range asSlice(items) {
				parts = append(parts, scalarString(it))
			}
			return strings.Join(parts, sep), nil
		default:
			return nil, fmt.Errorf("intrinsic %s is not supported by devstack", name)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, err
			}
			out[k] = rv
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	}
	return v, nil
}

func (r *resolver) sub(arg any) (string, error) {
	str, vars := arg, map[string]any(nil)
	if list, ok := arg.([]any); ok {
		if len(list) != 2 {
			return "", fmt.Errorf("Fn::Sub: want string or [string, {variables}]")
		}
		str, vars = list[0], asMap(list[1])
	}
	s, ok := str.(string)
	if !ok {
		return "", fmt.Errorf("Fn::Sub: want a string, got %v", str)
	}
	return expandSub(s, func(name string) (string, error) {
		if v, ok := vars[name]; ok {
			return r.resolveString(v)
		}
		if res, attr, found := strings.Cut(name, "."); found && !strings.HasPrefix(name, "AWS::") {
			return r.getAtt(res, attr)
		}
		return r.ref(name)
	})
}

func (r *resolver) resolveString(v any) (string, error) {
	rv, err := r.resolve(v)
	if err != nil {
		return "", err
	}
	switch rv.(type) {
	case map[string]any, []any:
		return "", fmt.Errorf("want a scalar, got %v", rv)
	}
	return scalarString(rv), nil
}

func (r *resolver) resolveStringPtr(v any) (*string, error) {
	s, err := r.resolveString(v)
	if err != nil {
		return nil, err
	}
	return aws.String(s), nil
}

func (r *resolver) resolveBool(v any) (bool, error) {
	s, err := r.resolveString(v)
	if err != nil {
		return false, err
	}
	if s == "" {
		return false, nil
	}
	return strconv.ParseBool(s)
}

// ---------------------------------------------------------------- helpers

func isCode(err error, codes ...string) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

// accountFromARN returns the account field of an ARN, or "".
func accountFromARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		return parts[4]
	}
	return ""
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func sanitize(s string, ok func(rune) bool) string {
	return strings.Map(func(r rune) rune {
		if ok(r) {
			return r
		}
		return '-'
	}, s)
}
