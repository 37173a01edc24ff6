package awsmeter_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/dev/awsmeter"
	"github.com/datajetty/webhooks/shared/dev/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// table creates a table keyed (pk, sk) with a sparse global index on (gk), projecting
// keys only.
func table(t *testing.T, db *dynamodb.Client) string {
	t.Helper()
	name := testenv.Prefix(t) + "t"
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("gk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String("by-gk"),
			KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("gk"), KeyType: types.KeyTypeHash}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// lineOf returns the tally of one source/operation/resource (zero when absent).
func lineOf(m *awsmeter.Meter, op, resource string) awsmeter.Tally {
	var t awsmeter.Tally
	for _, l := range m.Lines() {
		if l.Operation == op && l.Resource == resource {
			t = l.Tally
		}
	}
	return t
}

func TestDynamoDBCapacityFromItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := testenv.AWSConfig(t)
	plain := dynamodb.NewFromConfig(base)
	name := table(t, plain)
	m := awsmeter.New(base)
	db := dynamodb.NewFromConfig(m.Attach(base, "code"))

	small := map[string]types.AttributeValue{"pk": str("p"), "sk": str("1"), "d": str(strings.Repeat("x", 500))}
	big := map[string]types.AttributeValue{"pk": str("p"), "sk": str("2"), "d": str(strings.Repeat("x", 1500)), "gk": str("g")}
	for _, it := range []map[string]types.AttributeValue{small, big} {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	put := lineOf(m, "PutItem", name)
	// 1 unit for ~0.5 KB, 2 for ~1.5 KB; the second item enters the keys-only index: 1.
	if put.Calls != 2 || put.Attempts != 2 || put.Requests != 2 || put.WriteUnits != 3 || put.IndexWriteUnits != 1 {
		t.Errorf("PutItem tally = %+v, want 2 calls, 3 write units, 1 index write unit", put)
	}

	// A failed condition is billed for the item as stored (2 units for the big one).
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: big, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("conditional put: %v, want a failed condition", err)
	}
	if got := lineOf(m, "PutItem", name); got.Errors != 1 || got.WriteUnits != 5 || got.IndexWriteUnits != 1 {
		t.Errorf("after a failed condition: %+v, want 1 error and 5 write units in all", got)
	}

	// An update is billed for the larger of before and after: growing the small item past
	// 1 KB costs 2; removing the big one's index key removes its index entry (1).
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(name), Key: map[string]types.AttributeValue{"pk": str("p"), "sk": str("1")},
		UpdateExpression: aws.String("SET e = :e"), ExpressionAttributeValues: map[string]types.AttributeValue{":e": str(strings.Repeat("y", 600))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(name), Key: map[string]types.AttributeValue{"pk": str("p"), "sk": str("2")},
		UpdateExpression: aws.String("REMOVE gk")}); err != nil {
		t.Fatal(err)
	}
	if got := lineOf(m, "UpdateItem", name); got.Calls != 2 || got.WriteUnits != 4 || got.IndexWriteUnits != 1 {
		t.Errorf("UpdateItem tally = %+v, want 4 write units and 1 index write unit", got)
	}

	// BatchWriteItem: each item rounded on its own.
	var reqs []types.WriteRequest
	for _, sk := range []string{"3", "4", "5"} {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": str("p"), "sk": str(sk), "d": str("z")}}})
	}
	if _, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{name: reqs}}); err != nil {
		t.Fatal(err)
	}
	if got := lineOf(m, "BatchWriteItem", name); got.Calls != 1 || got.Requests != 1 || got.WriteUnits != 3 {
		t.Errorf("BatchWriteItem tally = %+v, want 1 call and 3 write units", got)
	}

	// A transaction doubles.
	if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(name), Item: map[string]types.AttributeValue{"pk": str("q"), "sk": str("1")}}},
		{Update: &types.Update{TableName: aws.String(name), Key: map[string]types.AttributeValue{"pk": str("p"), "sk": str("3")}, UpdateExpression: aws.String("SET f = :f"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":f": str("1")}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if got := lineOf(m, "TransactWriteItems", name); got.WriteUnits != 4 {
		t.Errorf("TransactWriteItems tally = %+v, want 4 write units", got)
	}

	// Reads: a strongly consistent GetItem of a 2.1 KB item is 1 unit, an eventually
	// consistent one 0.5 whatever the projection; a Query sums the items it evaluated
	// (all of partition p: ~0.5+0.6, ~1.5 and three tiny ones, under 4 KB) before its filter.
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: map[string]types.AttributeValue{"pk": str("p"), "sk": str("2")}, ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: map[string]types.AttributeValue{"pk": str("p"), "sk": str("1")}, ProjectionExpression: aws.String("pk")}); err != nil {
		t.Fatal(err)
	}
	if got := lineOf(m, "GetItem", name); got.ReadUnits != 1.5 {
		t.Errorf("GetItem tally = %+v, want 1.5 read units", got)
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(name), KeyConditionExpression: aws.String("#pk = :p"),
		FilterExpression: aws.String("#d = :none"), ExpressionAttributeNames: map[string]string{"#pk": "pk", "#d": "d"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": str("p"), ":none": str("no such value")}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 0 {
		t.Fatalf("the filter matched %d items", len(out.Items))
	}
	if got := lineOf(m, "Query", name); got.ReadUnits != 1 {
		t.Errorf("Query tally = %+v, want 1 read unit for ~3.2 KB evaluated", got)
	}
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestSQSAndKMSRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := testenv.AWSConfig(t)
	m := awsmeter.New(base)
	cfg := m.Attach(base, "producer")
	q := sqs.NewFromConfig(cfg)
	created, err := sqs.NewFromConfig(base).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(testenv.Prefix(t) + "q")})
	if err != nil {
		t.Fatal(err)
	}
	url := created.QueueUrl
	// Ten 10 KiB messages are 100 KiB: billed as 2 requests of 64 KiB.
	var entries []sqstypes.SendMessageBatchRequestEntry
	for i := range 10 {
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(string(rune('a' + i))), MessageBody: aws.String(strings.Repeat("m", 10<<10))})
	}
	if _, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: url, Entries: entries}); err != nil {
		t.Fatal(err)
	}
	name := (*url)[strings.LastIndexByte(*url, '/')+1:]
	if got := lineOf(m, "SendMessageBatch", name); got.Calls != 1 || got.Requests != 2 {
		t.Errorf("SendMessageBatch tally = %+v, want 1 call billed as 2 requests", got)
	}
	if _, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: 3}); err != nil {
		t.Fatal(err)
	}
	if got := lineOf(m, "ReceiveMessage", name); got.Calls != 1 || got.Requests != 1 {
		t.Errorf("ReceiveMessage tally = %+v, want 1 request for 30 KiB", got)
	}

	k := kms.NewFromConfig(cfg)
	key, err := kms.NewFromConfig(base).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// Failed calls count too, as the requests they are.
	if _, err := k.Decrypt(ctx, &kms.DecryptInput{KeyId: key.KeyMetadata.KeyId, CiphertextBlob: []byte("not a ciphertext")}); err == nil {
		t.Fatal("decrypting garbage succeeded")
	}
	var calls, errs int
	for _, l := range m.Lines() {
		if l.Service == "KMS" {
			calls += l.Calls
			errs += l.Errors
			if l.Source != "producer" || l.Resource != *key.KeyMetadata.KeyId {
				t.Errorf("KMS line %+v: want source producer and the key id", l.Key)
			}
		}
	}
	if calls != 2 || errs != 1 {
		t.Errorf("KMS: %d calls, %d errors; want 2 and 1", calls, errs)
	}
	m.Reset()
	if len(m.Lines()) != 0 {
		t.Error("Reset left lines")
	}
}
