package awsmeter

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

type item = map[string]types.AttributeValue

// tableInfo is what the meter needs to know of a table: its key and its global secondary
// indexes.
type tableInfo struct {
	keys    []string
	indexes []indexInfo
}

type indexInfo struct {
	name       string
	keys       []string
	projection types.ProjectionType
	include    []string
}

func (m *Meter) table(ctx context.Context, name string) (*tableInfo, error) {
	m.mu.Lock()
	ti := m.tables[name]
	m.mu.Unlock()
	if ti != nil {
		return ti, nil
	}
	out, err := m.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", name, err)
	}
	ti = &tableInfo{}
	for _, k := range out.Table.KeySchema {
		ti.keys = append(ti.keys, aws.ToString(k.AttributeName))
	}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		ix := indexInfo{name: aws.ToString(g.IndexName)}
		for _, k := range g.KeySchema {
			ix.keys = append(ix.keys, aws.ToString(k.AttributeName))
		}
		if g.Projection != nil {
			ix.projection = g.Projection.ProjectionType
			ix.include = g.Projection.NonKeyAttributes
		}
		ti.indexes = append(ti.indexes, ix)
	}
	m.mu.Lock()
	m.tables[name] = ti
	m.mu.Unlock()
	return ti, nil
}

// keyOf extracts an item's primary key.
func (ti *tableInfo) keyOf(it item) item {
	k := make(item, len(ti.keys))
	for _, n := range ti.keys {
		if v, ok := it[n]; ok {
			k[n] = v
		}
	}
	return k
}

// get reads an item as stored (strongly consistent), nil when absent.
func (m *Meter) get(ctx context.Context, table string, key item) (item, error) {
	out, err := m.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read item of %s: %w", table, err)
	}
	return out.Item, nil
}

// readBefore reads the items the writes will touch (or a read reads), as stored before the
// call: one GetItem for a single item, BatchGetItem for several.
func (m *Meter) readBefore(ctx context.Context, ws []*write) error {
	if len(ws) == 1 {
		var err error
		ws[0].before, err = m.get(ctx, ws[0].table, ws[0].key)
		return err
	}
	for start := 0; start < len(ws); start += 100 {
		chunk := ws[start:min(start+100, len(ws))]
		req := map[string]types.KeysAndAttributes{}
		for _, w := range chunk {
			ka := req[w.table]
			ka.Keys, ka.ConsistentRead = append(ka.Keys, w.key), aws.Bool(true)
			req[w.table] = ka
		}
		for len(req) > 0 {
			out, err := m.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return fmt.Errorf("read items before a write: %w", err)
			}
			for table, items := range out.Responses {
				for _, it := range items {
					for _, w := range chunk {
						if w.table == table && sameValues(w.key, it, keyNames(w.key)) {
							w.before = it
						}
					}
				}
			}
			req = out.UnprocessedKeys
		}
	}
	return nil
}

// write is one item a write call touches.
type write struct {
	table  string
	key    item
	txn    bool // part of a TransactWriteItems
	check  bool // a ConditionCheck: reads the item, changes nothing
	put    item // the whole new item, for a put: what is stored after it succeeds
	before item
}

// dynamoDB prepares the measurement of one DynamoDB call: it reads the items a write will
// touch before the call, and returns the function that completes the measurement after it.
func (m *Meter) dynamoDB(ctx context.Context, op string, params any) func(any, error) []measured {
	var writes []*write
	var fail error
	addWrite := func(table string, keyOrItem item, isItem, txn, check bool) {
		ti, err := m.table(ctx, table)
		if err != nil {
			fail = errors.Join(fail, err)
			return
		}
		w := &write{table: table, key: keyOrItem, txn: txn, check: check}
		if isItem {
			w.key, w.put = ti.keyOf(keyOrItem), keyOrItem
		}
		writes = append(writes, w)
	}
	defer func() {
		if len(writes) > 0 {
			fail = errors.Join(fail, m.readBefore(ctx, writes))
		}
	}()
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		addWrite(aws.ToString(in.TableName), in.Item, true, false, false)
	case *dynamodb.UpdateItemInput:
		addWrite(aws.ToString(in.TableName), in.Key, false, false, false)
	case *dynamodb.DeleteItemInput:
		addWrite(aws.ToString(in.TableName), in.Key, false, false, false)
	case *dynamodb.BatchWriteItemInput:
		for table, reqs := range in.RequestItems {
			for _, r := range reqs {
				switch {
				case r.PutRequest != nil:
					addWrite(table, r.PutRequest.Item, true, false, false)
				case r.DeleteRequest != nil:
					addWrite(table, r.DeleteRequest.Key, false, false, false)
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, ti := range in.TransactItems {
			switch {
			case ti.Put != nil:
				addWrite(aws.ToString(ti.Put.TableName), ti.Put.Item, true, true, false)
			case ti.Update != nil:
				addWrite(aws.ToString(ti.Update.TableName), ti.Update.Key, false, true, false)
			case ti.Delete != nil:
				addWrite(aws.ToString(ti.Delete.TableName), ti.Delete.Key, false, true, false)
			case ti.ConditionCheck != nil:
				addWrite(aws.ToString(ti.ConditionCheck.TableName), ti.ConditionCheck.Key, false, true, true)
			}
		}
	case *dynamodb.GetItemInput:
		return func(_ any, err error) []measured {
			return m.readItems(ctx, aws.ToString(in.TableName), []item{in.Key}, aws.ToBool(in.ConsistentRead), 1, err)
		}
	case *dynamodb.BatchGetItemInput:
		return func(result any, err error) []measured {
			var unprocessed map[string]types.KeysAndAttributes
			if out, ok := result.(*dynamodb.BatchGetItemOutput); ok {
				unprocessed = out.UnprocessedKeys
			}
			var ms []measured
			for table, ka := range in.RequestItems {
				keys := withoutKeys(ka.Keys, unprocessed[table].Keys)
				ms = append(ms, m.readItems(ctx, table, keys, aws.ToBool(ka.ConsistentRead), 1, err)...)
			}
			return ms
		}
	case *dynamodb.TransactGetItemsInput:
		return func(_ any, err error) []measured {
			var ms []measured
			for _, g := range in.TransactItems {
				if g.Get != nil {
					ms = append(ms, m.readItems(ctx, aws.ToString(g.Get.TableName), []item{g.Get.Key}, true, 2, err)...)
				}
			}
			return ms
		}
	case *dynamodb.QueryInput:
		return func(result any, err error) []measured { return []measured{m.query(ctx, in, result, err)} }
	default:
		return func(any, error) []measured { return []measured{{t: Tally{Requests: 1}}} }
	}

	return func(result any, err error) []measured {
		var unprocessed map[string][]types.WriteRequest
		if out, ok := result.(*dynamodb.BatchWriteItemOutput); ok {
			unprocessed = out.UnprocessedItems
		}
		ms := []measured{{resource: firstTable(writes), t: Tally{Requests: 1}, err: fail}}
		if fail != nil {
			return ms
		}
		for _, w := range writes {
			if isUnprocessed(w, unprocessed) {
				continue
			}
			x, err := m.measureWrite(ctx, w, err)
			if err != nil {
				ms[0].err = errors.Join(ms[0].err, err)
				continue
			}
			ms = append(ms, measured{resource: w.table, t: x})
		}
		return ms
	}
}

// measureWrite bills one written item once the call returned.
func (m *Meter) measureWrite(ctx context.Context, w *write, callErr error) (Tally, error) {
	var ccf *types.ConditionalCheckFailedException
	var tce *types.TransactionCanceledException
	after := w.before
	switch {
	case callErr == nil && w.put != nil:
		after = w.put
	case callErr == nil && !w.check:
		var err error
		if after, err = m.get(ctx, w.table, w.key); err != nil {
			return Tally{}, err
		}
	case callErr == nil, errors.As(callErr, &ccf), errors.As(callErr, &tce):
		// Nothing changed; a failed condition (or a cancelled transaction) is still billed,
		// for the item as stored.
	default:
		return Tally{}, nil // throttled, invalid, unreachable: nothing consumed
	}
	factor := 1.0
	if w.txn {
		factor = 2
	}
	t := Tally{WriteUnits: factor * writeUnits(max(ItemSize(w.before), ItemSize(after)))}
	ti, err := m.table(ctx, w.table)
	if err != nil {
		return Tally{}, err
	}
	for _, ix := range ti.indexes {
		t.IndexWriteUnits += factor * indexWriteUnits(ti, ix, w.before, after)
	}
	return t, nil
}

// indexWriteUnits bills the change of an item's entry in one global secondary index.
func indexWriteUnits(ti *tableInfo, ix indexInfo, before, after item) float64 {
	b, a := indexEntry(ti, ix, before), indexEntry(ti, ix, after)
	switch {
	case b == nil && a == nil:
		return 0
	case b == nil:
		return writeUnits(ItemSize(a))
	case a == nil:
		return writeUnits(ItemSize(b))
	case !sameValues(b, a, ix.keys):
		return writeUnits(ItemSize(b)) + writeUnits(ItemSize(a))
	case sameValues(b, a, nil):
		return 0
	default:
		return writeUnits(max(ItemSize(b), ItemSize(a)))
	}
}

// indexEntry is the item as the index stores it, nil when the item is not in the index
// (absent, or without one of the index's key attributes: a sparse index).
func indexEntry(ti *tableInfo, ix indexInfo, it item) item {
	if it == nil {
		return nil
	}
	for _, k := range ix.keys {
		if _, ok := it[k]; !ok {
			return nil
		}
	}
	if ix.projection == types.ProjectionTypeAll {
		return it
	}
	e := item{}
	for _, names := range [][]string{ti.keys, ix.keys, ix.include} {
		for _, n := range names {
			if v, ok := it[n]; ok {
				e[n] = v
			}
		}
	}
	return e
}

// sameValues compares a and b on the named attributes (all of both when names is nil).
func sameValues(a, b item, names []string) bool {
	if names == nil {
		if len(a) != len(b) {
			return false
		}
		for n := range a {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if !equalValues(a[n], b[n]) {
			return false
		}
	}
	return true
}

// equalValues compares two attribute values (nil for an absent attribute).
func equalValues(a, b types.AttributeValue) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberB:
		b, ok := b.(*types.AttributeValueMemberB)
		return ok && string(a.Value) == string(b.Value)
	case *types.AttributeValueMemberBOOL:
		b, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	case *types.AttributeValueMemberL:
		b, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(a.Value) != len(b.Value) {
			return false
		}
		for i := range a.Value {
			if !equalValues(a.Value[i], b.Value[i]) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		b, ok := b.(*types.AttributeValueMemberM)
		return ok && sameValues(a.Value, b.Value, nil)
	}
	// Sets: compared by size and content as rendered; order does not matter to DynamoDB
	// and an index entry's set changing at all is what counts here.
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// readItems bills a GetItem-style read of keys: each item rounded up on its own.
func (m *Meter) readItems(ctx context.Context, table string, keys []item, consistent bool, factor float64, callErr error) []measured {
	ms := measured{resource: table, t: Tally{Requests: 1}}
	if callErr != nil {
		return []measured{ms}
	}
	ws := make([]*write, len(keys))
	for i, k := range keys {
		ws[i] = &write{table: table, key: k}
	}
	if err := m.readBefore(ctx, ws); err != nil {
		ms.err = err
		return []measured{ms}
	}
	for _, w := range ws {
		ms.t.ReadUnits += factor * readUnits(ItemSize(w.before), consistent)
	}
	return []measured{ms}
}

// query bills a Query by the items it evaluated: the same Query, without projection and
// filter, returns exactly those (Limit counts items before the filter).
func (m *Meter) query(ctx context.Context, in *dynamodb.QueryInput, _ any, callErr error) measured {
	table := aws.ToString(in.TableName)
	ms := measured{resource: table, t: Tally{Requests: 1}}
	if callErr != nil {
		return ms
	}
	shadow := &dynamodb.QueryInput{
		TableName:                 in.TableName,
		IndexName:                 in.IndexName,
		KeyConditionExpression:    in.KeyConditionExpression,
		ExclusiveStartKey:         in.ExclusiveStartKey,
		Limit:                     in.Limit,
		ScanIndexForward:          in.ScanIndexForward,
		ConsistentRead:            in.ConsistentRead,
		ExpressionAttributeNames:  usedNames(in.ExpressionAttributeNames, aws.ToString(in.KeyConditionExpression)),
		ExpressionAttributeValues: usedValues(in.ExpressionAttributeValues, aws.ToString(in.KeyConditionExpression)),
	}
	out, err := m.db.Query(ctx, shadow)
	if err != nil {
		ms.err = fmt.Errorf("re-read query of %s: %w", table, err)
		return ms
	}
	size := 0
	for _, it := range out.Items {
		size += ItemSize(it)
	}
	ms.t.ReadUnits = readUnits(size, aws.ToBool(in.ConsistentRead) && in.IndexName == nil)
	return ms
}

var (
	namePlaceholder  = regexp.MustCompile(`#[A-Za-z0-9_]+`)
	valuePlaceholder = regexp.MustCompile(`:[A-Za-z0-9_]+`)
)

// usedNames keeps the names the expression uses: DynamoDB refuses unused ones.
func usedNames(names map[string]string, expr string) map[string]string {
	out := map[string]string{}
	for _, p := range namePlaceholder.FindAllString(expr, -1) {
		if v, ok := names[p]; ok {
			out[p] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// usedValues keeps the values the expression uses.
func usedValues(values map[string]types.AttributeValue, expr string) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for _, p := range valuePlaceholder.FindAllString(expr, -1) {
		if v, ok := values[p]; ok {
			out[p] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func firstTable(ws []*write) string {
	if len(ws) == 0 {
		return ""
	}
	return ws[0].table
}

// isUnprocessed reports whether BatchWriteItem handed w back unwritten.
func isUnprocessed(w *write, unprocessed map[string][]types.WriteRequest) bool {
	for _, r := range unprocessed[w.table] {
		var k item
		switch {
		case r.PutRequest != nil:
			k = r.PutRequest.Item
		case r.DeleteRequest != nil:
			k = r.DeleteRequest.Key
		}
		if sameValues(w.key, k, keyNames(w.key)) {
			return true
		}
	}
	return false
}

func withoutKeys(keys, drop []item) []item {
	if len(drop) == 0 {
		return keys
	}
	var out []item
	for _, k := range keys {
		skip := false
		for _, d := range drop {
			if sameValues(k, d, keyNames(k)) {
				skip = true
				break
			}
		}
		if !skip {
			out = append(out, k)
		}
	}
	return out
}

func keyNames(k item) []string {
	names := make([]string, 0, len(k))
	for n := range k {
		names = append(names, n)
	}
	return names
}

// String renders a key for error messages.
func (k Key) String() string {
	return strings.Join([]string{k.Source, k.Service, k.Operation, k.Resource}, " ")
}
